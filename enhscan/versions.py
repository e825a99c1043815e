"""Versions of enhscan and the packages it runs on, for run records and model provenance."""

from __future__ import annotations

import platform

__version__ = "0.1.0"

CORE_PACKAGES = ("torch", "transformers", "accelerate", "tokenizers", "numpy")


def package_versions(*extra: str) -> dict[str, str]:
    """``{"enhscan": ..., "python": ..., package: version}`` for the core and ``extra`` packages.

    Packages that are not installed are left out.
    """
    from importlib.metadata import PackageNotFoundError, version

    found = {"enhscan": __version__, "python": platform.python_version()}
    for package in (*CORE_PACKAGES, *extra):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            pass
    return found
