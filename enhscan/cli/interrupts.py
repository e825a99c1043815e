"""Interrupted runs (Ctrl-C, or SIGTERM from a cluster scheduler at the end of a job's time):
each subcommand may leave a hint in ``ctx.meta[ON_INTERRUPT]`` that says what was kept and
how to continue; :class:`enhscan.cli.EnhscanGroup` prints it."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

#: ``ctx.meta`` key of a subcommand's resume hint: a callable giving the line to print when the
#: run is interrupted (what was kept, and the command that continues it).
ON_INTERRUPT = "enhscan.on_interrupt"


class Terminated(KeyboardInterrupt):
    """SIGTERM arrived: handled everywhere as Ctrl-C is, told apart only in the message."""


def raise_terminated(signum, frame) -> None:
    """SIGTERM handler: stop the run the way Ctrl-C does, by an exception."""
    raise Terminated


def resume_command() -> str:
    """This process's command line with ``--resume`` added (if it was not there)."""
    args = sys.argv[1:]
    if "--resume" not in args:
        args = [*args, "--resume"]
    return shlex.join(["enhscan", *args])


def training_hint(out: str | Path) -> str:
    """What an interrupted training kept (its last checkpoint), and how to continue it."""
    states = list(Path(out).rglob("checkpoint/state.json")) if Path(out).is_dir() else []
    if not states:
        return "no checkpoint was written yet; run the same command again to start over"
    states.sort(key=lambda p: p.stat().st_mtime, reverse=True)  # the run that was going on
    try:
        state = json.loads(states[0].read_text())
        done = f" after {state['state']['round']} rounds ({state['step']} steps)"
    except (OSError, KeyError, TypeError, ValueError):
        done = ""
    return f"the checkpoint{done} is kept in {states[0].parent}; continue with: {resume_command()}"
