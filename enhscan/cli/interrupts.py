"""Interrupted runs (Ctrl-C, or SIGTERM from a cluster scheduler at the end of a job's time):
each subcommand may leave a hint in ``ctx.meta[ON_INTERRUPT]`` that says what was kept and
how to continue; :class:`enhscan.cli.EnhscanGroup` prints it."""

from __future__ import annotations

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


def shards_hint(store) -> str:
    """What an interrupted scan of shards (a ``ShardStore``) kept, and how to continue it."""
    done = len(store.done()) if store.exists() else 0
    if not done:
        return "no shard was finished; run the same command again to start over"
    return f"{done} finished shards kept in {store.folder}; continue with: {resume_command()}"


def training_hint(out: str | Path) -> str:
    """What an interrupted training kept (its last checkpoint), and how to continue it."""
    from enhscan.training.runs import interrupted_work

    kept = interrupted_work(out)  # the newest checkpoint: the run that was going on
    if not kept:
        return "no checkpoint was written yet; run the same command again to start over"
    return f"{kept} kept; continue with: {resume_command()}"
