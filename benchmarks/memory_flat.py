#!/usr/bin/env python3
"""Peak memory of `enhscan genome` on a small and a large genome: it must not grow with size.

Runs two scans in fresh processes with the same model and settings, one over hg38 chr2:0-2.3M
(2.3 Mb) and one over all of GRCh37 chr20 (63 Mb), both from ../shared/data, and prints their
peak resident memory side by side with the ratio.

    python benchmarks/memory_flat.py [--model DIR] [--stride 1000]

Without --model a tiny random-weight DNABERT-2 model is written to a temporary folder (memory
does not depend on what the weights are).
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "genomes"
GENOMES = {
    "hg38 chr2 0-2.3M (2.3 Mb)": SHARED / "hg38_chr2_0-2333275.fa.gz",
    "GRCh37 chr20 (63 Mb)": SHARED / "grch37_chr20.fa.gz",
}


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
    with tempfile.TemporaryDirectory() as tmp:
        if model is None:
            model = f"{tmp}/model"
            subprocess.run(
                [
                    sys.executable,
                    str(Path(__file__).parents[1] / "tools" / "make_random_model.py"),
                    model,
                ],
                check=True,
                stdout=subprocess.DEVNULL,
            )
        rows = []
        for label, fasta in GENOMES.items():
            if not fasta.exists():
                raise SystemExit(f"{fasta} not found: this benchmark needs ../shared/data")
            rss, wall = peak_rss_mb(
                [
                    sys.executable,
                    "-m",
                    "enhscan",
                    "-q",
                    "genome",
                    str(fasta),
                    "--model",
                    model,
                    "--out",
                    f"{tmp}/{fasta.stem}",
                    "--stride",
                    str(stride),
                    "--device",
                    "cpu",
                ]
            )
            rows.append((label, rss, wall))
        print(f"{'genome':32} {'peak RSS MB':>12} {'wall s':>8}")
        for label, rss, wall in rows:
            print(f"{label:32} {rss:12.0f} {wall:8.1f}")
        print(f"ratio large/small peak RSS: {rows[1][1] / rows[0][1]:.2f}")


if __name__ == "__main__":
    main()
