"""Write files under a temporary name and rename them into place only when complete.

A run killed part-way therefore never leaves a truncated file under the final name: only a
hidden ``.NAME.partial-PID`` file, which the next run ignores.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from enhscan.errors import EnhscanError


def partial_path(final: Path, keep_suffix: bool = False) -> Path:
    """The temporary name a file is written under before it becomes ``final``
    (``.NAME.partial-PID``; ``.STEM.partial-PID.SUFFIX`` with ``keep_suffix``, for writers
    that insist on an extension)."""
    if keep_suffix:
        return final.with_name(f".{final.stem}.partial-{os.getpid()}{final.suffix}")
    return final.with_name(f".{final.name}.partial-{os.getpid()}")


@contextmanager
def atomic_output(final: str | os.PathLike, keep_suffix: bool = False) -> Iterator[Path]:
    """Yield a temporary path to write; rename it to ``final`` if the block succeeds.

    On any exception the temporary file is removed and ``final`` is left as it was.
    """
    final = Path(final)
    tmp = partial_path(final, keep_suffix)
    try:
        yield tmp
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def check_output_folder(folder: str | os.PathLike, option: str = "--out") -> None:
    """Refuse, before any work is done, an output folder that cannot be made or written to:
    one under a file, or under a folder this user may not write to."""
    folder = Path(folder)
    existing = folder
    while not existing.exists() and existing != existing.parent:  # nearest existing ancestor
        existing = existing.parent
    if not existing.is_dir():
        raise EnhscanError(
            f"cannot write into {folder}: {existing} is a file, not a folder; choose another "
            f"{option}"
        )
    if not os.access(existing, os.W_OK):
        raise EnhscanError(f"output folder {existing} is not writable; choose another {option}")


def make_output_folder(folder: str | os.PathLike, option: str = "--out") -> None:
    """Create an output folder (with its parents) once the inputs have been checked."""
    check_output_folder(folder, option)
    try:
        Path(folder).mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EnhscanError(
            f"cannot create output folder {folder}: {err.strerror}; choose another {option}"
        ) from None


def write_json(path: str | os.PathLike, data: Any) -> None:
    """Write ``data`` as indented JSON, atomically."""
    with atomic_output(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")


def check_room(folder: str | os.PathLike, largest: int, total: int, what: str) -> None:
    """Refuse to start writing files of ``total`` bytes (the largest ``largest``) into
    ``folder`` where the disk, or the process's file-size limit, cannot take them: writers
    that fail half-way (pyBigWig aborts the process) are never started."""
    free = shutil.disk_usage(folder).free
    if total > free:
        raise EnhscanError(
            f"{what} needs up to {total / 1e6:,.1f} MB but {folder} has {free / 1e6:,.1f} MB "
            "free; make room or give another --out"
        )
    limit, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
    if limit != resource.RLIM_INFINITY and largest > limit:
        raise EnhscanError(
            f"{what} needs files of up to {largest / 1e6:,.1f} MB but this process may write "
            f"files of {limit / 1e6:,.3f} MB at most (ulimit -f); raise the limit"
        )
