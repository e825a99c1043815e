#!/usr/bin/env python3
"""Assemblies of many small scaffolds against one chromosome of the same sequence: scan speed,
peak memory, and the browser files with tens of thousands of sequences (issue 21).

For each case ``N:LENGTH`` it cuts N scaffolds of LENGTH bases from real GRCh37 chr20 (its N
runs removed) and writes them as one FASTA, and the same bases as one chromosome as another.
It scans both with ``enhscan genome`` (fresh processes, the same model and options) and
prints windows/s in the scan loop and end to end (outputs included), the scaffolds / one
chromosome ratio, and each scan's peak resident memory. It then checks the scaffold scan's
bigWig header lists every scaffold and that the IGV session and track hub were written.
With ``--baseline TREE`` the scaffold FASTA is also scanned by the enhscan of another source
tree (a worktree of an older commit), for a before / after row.

    python benchmarks/scaffolds_speed.py [--case 5000:1200] [--case 50000:1000]
        [--stride 1000] [--model DIR] [--baseline /tmp/old]
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from pathlib import Path

import click
from common import CHR20, genome_command


def real_bases(total: int) -> str:
    """``total`` bases of chr20 with its N runs taken out."""
    from enhscan.io.fasta import open_genome

    with open_genome(CHR20) as genome:
        seq = genome.fetch("20", 0, genome.lengths["20"]).replace("N", "")
    if len(seq) < total:
        raise SystemExit(f"chr20 has {len(seq):,} real bases, fewer than {total:,}")
    return seq[:total]


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    with open(path, "w") as out:
        for name, seq in records:
            out.write(f">{name}\n")
            out.writelines(seq[i : i + 60] + "\n" for i in range(0, len(seq), 60))
    return path


def scan(fasta: Path, out: Path, options: list[str], tree: Path | None = None) -> dict:
    """One scan in a fresh process: windows, windows/s (loop and end to end), peak RSS."""
    env = dict(os.environ)
    if tree is not None:
        env["PYTHONPATH"] = str(tree.resolve())
    began = time.time()
    proc = subprocess.Popen(genome_command(fasta, out, "--force", *options), env=env)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.time() - began
    if status != 0:
        raise SystemExit(f"the scan of {fasta} failed")
    record = json.loads((out / "run.json").read_text())
    windows = record["windows"]["scored"]
    return {
        "windows": windows,
        "loop": record["scan_windows_per_second"],
        "end_to_end": windows / wall,
        "rss_mb": usage.ru_maxrss / 1024,
    }


def check_browser_files(out: Path, names: list[str]) -> str:
    """The bigWig header holds every scaffold, in order; the session and hub exist."""
    import pyBigWig

    with pyBigWig.open(str(out / "scores.bw")) as bw:
        ok = list(bw.chroms()) == names
    written = all((out / f).exists() for f in ("igv_session.xml", "hub.txt", "trackDb.txt"))
    return "ok" if ok and written else "WRONG"


@click.command()
@click.option(
    "--case",
    "cases",
    multiple=True,
    default=("5000:1200", "50000:1000"),
    show_default=True,
    help="N:LENGTH, N scaffolds of LENGTH bases (repeat).",
)
@click.option("--stride", type=int, default=1000, show_default=True)
@click.option("--model", type=click.Path(exists=True, file_okay=False), default=None)
@click.option(
    "--baseline",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    default=None,
    help="Another source tree to scan the scaffolds with, for before/after.",
)
def main(cases: tuple[str, ...], stride: int, model: str | None, baseline: Path | None) -> None:
    if not CHR20.exists():
        raise SystemExit(f"needs {CHR20} (the shared data folder next to the repository)")
    options = ["--stride", str(stride), "--device", "cpu"] + (["--model", model] if model else [])
    print(
        "| scaffolds | bases each | tree | scaffold windows | win/s loop | win/s end to end "
        "| one-chromosome win/s loop | end to end | ratio loop | ratio end to end "
        "| peak RSS MB (scaffolds / one) | browser files |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for case in cases:
            n, length = (int(v) for v in case.split(":"))
            seq = real_bases(n * length)
            names = [f"scaffold_{k}" for k in range(n)]
            pieces = [(names[k], seq[k * length : (k + 1) * length]) for k in range(n)]
            many = write_fasta(tmp / f"many_{n}.fa", pieces)
            one = write_fasta(tmp / f"one_{n}.fa", [("chrOne", seq)])
            whole = scan(one, tmp / "one", options)
            trees = [("this", None)] + ([("baseline", baseline)] if baseline else [])
            for label, tree in trees:
                got = scan(many, tmp / f"many_{label}", options, tree)
                checked = check_browser_files(tmp / f"many_{label}", names)
                print(
                    f"| {n:,} | {length:,} | {label} | {got['windows']:,} | {got['loop']:.1f} "
                    f"| {got['end_to_end']:.1f} | {whole['loop']:.1f} | {whole['end_to_end']:.1f} "
                    f"| {got['loop'] / whole['loop']:.2f} "
                    f"| {got['end_to_end'] / whole['end_to_end']:.2f} "
                    f"| {got['rss_mb']:.0f} / {whole['rss_mb']:.0f} | {checked} |",
                    flush=True,
                )


if __name__ == "__main__":
    main()
