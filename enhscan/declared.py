"""Settings declared once: each field of a settings dataclass says its command-line option,
whether a resumed run must keep it, and how a report shows it. The shard manifest's identity,
the run record's parameters, the dry run's report and the resume-refusal message are all
derived from these declarations, so adding an option is one field and one CLI option.

    stride: int = setting(200, "--stride", keep=True)
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch


def setting(
    default: Any,
    option: str | None,
    *,
    keep: bool = False,
    shown: str | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A dataclass field with its declaration.

    Args:
        default: the field's default.
        option: the command-line option that sets it (None: none does).
        keep: a resumed scan must keep it (it changes scores, or the cut into shards).
        shown: how a one-line report names it: a flag's name when true (``int8``), a label
            put before the value (``batch``), or a template for the value (``{} kernels``);
            None: left out of such reports.
    """
    metadata = {"option": option, "keep": keep, "shown": shown}
    if default_factory is not dataclasses.MISSING:
        return dataclasses.field(default_factory=default_factory, metadata=metadata)
    return dataclasses.field(default=default, metadata=metadata)


def declared_fields(settings: Any) -> list[dataclasses.Field]:
    """The declared fields of a settings dataclass (class or instance), in order."""
    return [f for f in dataclasses.fields(settings) if "option" in f.metadata]


def plain(value: Any) -> Any:
    """A value as JSON holds it: torch dtypes and devices as their names, tuples as lists."""
    if isinstance(value, torch.dtype):
        return str(value).removeprefix("torch.")
    if isinstance(value, torch.device):
        return str(value)
    if isinstance(value, tuple):
        return list(value)
    return value


def values(*settings: Any, kept_only: bool = False) -> dict[str, Any]:
    """Every declared field of ``settings`` (dataclass instances) by name, JSON-ready; with
    ``kept_only``, only those a resumed scan must keep."""
    return {
        f.name: plain(getattr(s, f.name))
        for s in settings
        for f in declared_fields(s)
        if f.metadata["keep"] or not kept_only
    }


def kept_values(*settings: Any) -> dict[str, Any]:
    """The declared fields a resumed scan must keep, by name, JSON-ready."""
    return values(*settings, kept_only=True)


def option_names(*classes: Any) -> dict[str, str]:
    """The option of each declared field, by field name (fields without one are left out)."""
    return {
        f.name: f.metadata["option"]
        for c in classes
        for f in declared_fields(c)
        if f.metadata["option"]
    }


def shown(settings: Any) -> list[str]:
    """The short phrases a one-line report gives ``settings``: ``batch 32``, ``int8``."""
    out = []
    for f in declared_fields(settings):
        label, value = f.metadata["shown"], getattr(settings, f.name)
        if label is None or value is None or value is False:
            continue
        if value is True:
            out.append(label)
        elif "{}" in label:
            out.append(label.format(plain(value)))
        else:
            out.append(f"{label} {plain(value)}".strip())
    return out
