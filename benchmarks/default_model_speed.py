#!/usr/bin/env python3
"""End-to-end speed of `enhscan genome` with the shipped default model on the CPU.

Runs the scan in fresh processes on real sequence (the shipped example, hg38 chr2:0-600k, and
hg38 chr2:0-2.3M from ../shared/data when present), in fp32 (the CPU default) and bf16, and
prints windows per second from each run record, side by side.

    python benchmarks/default_model_speed.py [--model DIR] [--stride 200]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import click

ROOT = Path(__file__).resolve().parents[1]
GENOMES = {
    "example hg38 chr2:0-600k": ROOT / "examples" / "hg38_chr2_0-600k.fa.gz",
    "hg38 chr2:0-2.3M": ROOT.parent / "shared" / "data" / "genomes" / "hg38_chr2_0-2333275.fa.gz",
}


@click.command()
@click.option(
    "--model",
    type=click.Path(exists=True, file_okay=False),
    default=None,
    help="Model folder  [default: the shipped model]",
)
@click.option("--stride", type=int, default=200, show_default=True)
@click.option("--dtypes", default="fp32,bf16", show_default=True)
def main(model: str | None, stride: int, dtypes: str) -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for label, fasta in GENOMES.items():
            if not fasta.exists():
                continue
            for dtype in dtypes.split(","):
                out = Path(tmp) / f"{fasta.stem}_{dtype}"
                command = [
                    sys.executable,
                    "-m",
                    "enhscan",
                    "-q",
                    "genome",
                    str(fasta),
                    "--out",
                    str(out),
                    "--stride",
                    str(stride),
                    "--device",
                    "cpu",
                    "--dtype",
                    dtype,
                ]
                if model:
                    command += ["--model", model]
                subprocess.run(command, check=True)
                record = json.loads((out / "run.json").read_text())
                rows.append(
                    (
                        label,
                        dtype,
                        record["windows"]["scored"],
                        record["wall_seconds"],
                        record["windows_per_second"],
                    )
                )
    print(f"CPU threads: {os.cpu_count()}")
    print(f"{'genome':26} {'dtype':5} {'windows':>8} {'wall s':>7} {'windows/s':>10}")
    for label, dtype, n, wall, rate in rows:
        print(f"{label:26} {dtype:5} {n:8,} {wall:7.1f} {rate:10.1f}")


if __name__ == "__main__":
    main()
