#!/usr/bin/env python3
"""Peak memory of `enhscan genome` on a small and a large genome: it must not grow with size.

Runs two scans in fresh processes with the same model and settings, one over 10 Mb of GRCh37
chr20 (20:10,000,000-20,000,000, through --regions) and one over all of chr20 (63 Mb), from
../shared/data, and prints their peak resident memory side by side with the ratio.

    python benchmarks/memory_flat.py [--model DIR] [--stride 1000]

Without --model the shipped default model is used. Stride 1000 keeps the run to minutes on
two cores; memory does not depend on the stride beyond a few bytes per window.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
import time
from pathlib import Path

import click
from common import CHR20, genome_command

SCANS = {"GRCh37 chr20:10-20M (10 Mb)": "20\t10000000\t20000000\n", "GRCh37 chr20 (63 Mb)": None}


def peak_rss_mb(args: list[str]) -> tuple[float, float]:
    """Run a command; return (peak RSS in MB, wall seconds)."""
    start = time.time()
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    if status != 0:
        raise SystemExit(f"command failed: {' '.join(args)}")
    return usage.ru_maxrss / 1024, time.time() - start


@click.command()
@click.option("--model", type=click.Path(exists=True, file_okay=False), default=None)
@click.option("--stride", type=int, default=1000, show_default=True)
def main(model: str | None, stride: int) -> None:
    if not CHR20.exists():
        raise SystemExit(f"{CHR20} not found: this benchmark needs ../shared/data")
    with tempfile.TemporaryDirectory() as tmp:
        rows = []
        for i, (label, region) in enumerate(SCANS.items()):
            command = genome_command(
                CHR20, f"{tmp}/scan{i}", "--stride", str(stride), "--device", "cpu"
            )
            if model:
                command += ["--model", model]
            if region:
                Path(tmp, "region.bed").write_text(region)
                command += ["--regions", f"{tmp}/region.bed"]
            rss, wall = peak_rss_mb(command)
            rows.append((label, rss, wall))
        print(f"{'genome':32} {'peak RSS MB':>12} {'wall s':>8}")
        for label, rss, wall in rows:
            print(f"{label:32} {rss:12.0f} {wall:8.1f}")
        print(f"ratio large/small peak RSS: {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
