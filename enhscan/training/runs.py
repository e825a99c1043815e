"""Output folders of training runs: what an interrupted run left behind, and the check that
a new run never silently replaces a finished model or an interrupted run's work (a
checkpoint, or a hyperparameter search's finished trials).

Light on purpose (no torch): the command line reads it to say what an interrupted run kept.
"""

from __future__ import annotations

import json
from pathlib import Path

from enhscan.errors import EnhscanError

#: A checkpoint folder holds this file once complete; ``checkpoint.partial`` and
#: ``checkpoint.old`` (a swap cut short) count too.
_STATE_GLOB = "checkpoint*/state.json"
#: The hyperparameter search's study (``enhscan train --trials``): its finished trials.
_STUDY_GLOB = "optuna.db"


def _checkpoints(out_dir: str | Path) -> list[Path]:
    """The complete checkpoints under ``out_dir`` (their ``state.json``), newest first."""
    out_dir = Path(out_dir)
    if not out_dir.is_dir():
        return []
    states = list(out_dir.rglob(_STATE_GLOB))
    return sorted(states, key=lambda p: p.stat().st_mtime, reverse=True)


def interrupted_work(out_dir: str | Path, model_file: str | None = None) -> str | None:
    """What an interrupted run left under ``out_dir`` to continue with ``--resume`` (its last
    checkpoint, or a search's finished trials), in words; None if nothing. A finished run
    keeps its search's study but no checkpoint: with ``model_file`` present, a study alone
    is not counted."""
    states = _checkpoints(out_dir)
    if states:
        return f"the checkpoint{_rounds_done(states[0])} in {states[0].parent}"
    if model_file and (Path(out_dir) / model_file).exists():
        return None
    studies = list(Path(out_dir).rglob(_STUDY_GLOB)) if Path(out_dir).is_dir() else []
    if studies:
        return f"the search's finished trials in {studies[0]}"
    return None


def _rounds_done(state_file: Path) -> str:
    """' after N rounds (S steps)' from a checkpoint's ``state.json``, or '' if unreadable."""
    try:
        state = json.loads(state_file.read_text())
        return f" after {state['state']['round']} rounds ({state['step']} steps)"
    except (OSError, KeyError, TypeError, ValueError):
        return ""


def check_out_folder(out_dir: Path, resume: bool, force: bool, model_file: str) -> None:
    """Refuse an ``--out`` that is a file, or one whose work a run without ``--resume`` or
    ``--force`` would lose: a finished model (``model_file`` present) or an interrupted run's
    checkpoint.

    Raises:
        EnhscanError: with what to do.
    """
    if out_dir.exists() and not out_dir.is_dir():
        raise EnhscanError(f"--out {out_dir} is a file; give a folder for the model")
    if resume or force:
        return
    kept = interrupted_work(out_dir, model_file)  # a run stopped while finishing has both
    if kept:
        raise EnhscanError(
            f"{out_dir} holds an interrupted run ({kept}); continue it with --resume, or start "
            "again with --force"
        )
    if (out_dir / model_file).exists():
        raise EnhscanError(
            f"{out_dir} already holds a trained model; use --force to replace it, or choose "
            "another --out"
        )
