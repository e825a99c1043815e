#!/usr/bin/env python3
"""Two source trees of enhscan side by side: scan speed and scan outputs, for a change that
must keep both (a refactor).

Each round runs ``enhscan genome`` from the old tree and then from the new one (each put first
on PYTHONPATH, in a fresh process) on the same stretch of real GRCh37 chr20 with the default
model, and reads the scan loop's windows/s from each run record. It prints one row per round
and the median of the new/old ratio, and checks that the two trees wrote byte-identical
``scores.bw`` and ``calls.narrowPeak``.

    git worktree add /tmp/old <commit>        # the tree before the change
    python benchmarks/ab_scan.py /tmp/old . [--windows 3000] [--rounds 5] [--option --rc]
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
from pathlib import Path

import click
import numpy as np
from common import CHR20, genome_command, write_region

OUTPUT_FILES = ("scores.bw", "calls.narrowPeak")


def scan(tree: Path, fasta: Path, out: Path, options: tuple[str, ...]) -> float:
    """Scan ``fasta`` with the enhscan of ``tree``; the scan loop's windows/s."""
    env = {**os.environ, "PYTHONPATH": str(tree.resolve())}
    command = genome_command(fasta, out, "--force", *options)
    subprocess.run(command, check=True, env=env, cwd=tree)
    return json.loads((out / "run.json").read_text())["scan_windows_per_second"]


@click.command()
@click.argument("old", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--windows", type=int, default=3000, show_default=True)
@click.option("--rounds", type=int, default=5, show_default=True)
@click.option("--option", "options", multiple=True, help="An option for both scans (repeat).")
def main(old: Path, new: Path, windows: int, rounds: int, options: tuple[str, ...]) -> None:
    if not CHR20.exists():
        raise SystemExit(f"needs {CHR20} (the shared data folder next to the repository)")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        fasta = write_region(tmp, windows, 200, 1000)
        print(f"# {windows:,} windows of chr20, options {' '.join(options) or '(none)'}\n")
        print("| round | old win/s | new win/s | new / old |")
        print("|---|---|---|---|")
        ratios = []
        for r in range(rounds):
            before = scan(old, fasta, tmp / "old", options)
            after = scan(new, fasta, tmp / "new", options)
            ratios.append(after / before)
            print(f"| {r + 1} | {before:.1f} | {after:.1f} | {ratios[-1]:.3f} |", flush=True)
        same = all(
            (tmp / "old" / name).read_bytes() == (tmp / "new" / name).read_bytes()
            for name in OUTPUT_FILES
        )
        print(
            f"\nmedian new / old: {np.median(ratios):.3f} (range {min(ratios):.3f}-"
            f"{max(ratios):.3f}); {' and '.join(OUTPUT_FILES)} "
            + ("byte-identical" if same else "DIFFER")
        )


if __name__ == "__main__":
    main()
