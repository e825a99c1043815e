#!/usr/bin/env python3
"""Throughput of `enhscan genome` with 1 process against several, side by side.

Cuts a stretch of real GRCh37 chr20 (../shared/data) holding --windows windows at stride
200 and scans it with the shipped default model in fresh runs, once per process count, through
`enhscan genome --processes N` (accelerate launch). Prints windows/s of the scan itself (from
each run record), the speed-up over one process, the scaling efficiency (speed-up / N) and
whether the outputs are byte-identical to the one-process run.

    python benchmarks/processes_scaling.py [--processes 1,2] [--device cpu] [--windows 4000]

On a CPU the processes share the cores (N processes get cores/N threads each), so the
question there is only whether sharding costs anything; on a GPU node each process gets a GPU
and the efficiency should be 0.9 or better.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from common import CHR20, genome_command, write_region


@click.command()
@click.option("--processes", default="1,2", show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--windows", type=int, default=4000, show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False), default=None)
def main(processes: str, device: str, windows: int, model: str | None) -> None:
    if not CHR20.exists():
        sys.exit(f"needs {CHR20} (the shared data folder next to the repository)")
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        fasta = write_region(tmp, windows, 200, 1000)
        for n in [int(p) for p in processes.split(",")]:
            out = tmp / f"p{n}"
            command = genome_command(
                fasta, out, "--device", device, "--processes", str(n), "--shard-windows", "500"
            )
            if model:
                command += ["--model", model]
            began = time.perf_counter()
            subprocess.run(command, check=True)
            wall = time.perf_counter() - began
            record = json.loads((out / "run.json").read_text())
            same = (
                all(
                    (out / f).read_bytes() == (tmp / "p1" / f).read_bytes()
                    for f in ("scores.bw", "calls.narrowPeak")
                )
                if (tmp / "p1").exists()
                else None
            )
            rows.append((n, record["windows"]["scored"], wall, record["scan_seconds"], same))
    print(f"date: {time.strftime('%Y-%m-%d')}  {os.cpu_count()} CPU threads, device {device}")
    print(
        f"{'processes':>9} {'windows':>8} {'wall s':>7} {'scan s':>7} {'win/s':>8} "
        f"{'speed-up':>8} {'efficiency':>10} {'same files':>10}"
    )
    base = rows[0][1] / rows[0][3]
    for n, scored, wall, scan, same in rows:
        rate = scored / scan
        print(
            f"{n:9} {scored:8,} {wall:7.1f} {scan:7.1f} {rate:8.1f} {rate / base:8.2f} "
            f"{rate / base / n:10.2f} {str(same):>10}"
        )


if __name__ == "__main__":
    main()
