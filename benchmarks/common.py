"""Shared by the benchmark scripts: where the real data is, cutting a test region, and the
`enhscan genome` command line."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# GRCh37 chr20 (sequence "20"); on a machine without the shared data (a lent GPU), a cut of it
# that benchmarks/gpu_prepare.sh wrote, named by ENHSCAN_CHR20, starting at ENHSCAN_CHR20_START.
CHR20 = Path(
    os.environ.get(
        "ENHSCAN_CHR20", ROOT.parent / "shared" / "data" / "genomes" / "grch37_chr20.fa.gz"
    )
)
# The chr20 q arm: real sequence, no N for megabases.
REGION_START = int(os.environ.get("ENHSCAN_CHR20_START", 40_000_000))
FP32_TOLERANCE = 1e-4  # "the same scores" in fp32 (issue 5)


def region_sequence(n_windows: int, stride: int, window: int) -> str:
    """Real chr20 sequence from REGION_START holding exactly ``n_windows`` windows."""
    from enhscan.io.fasta import open_genome

    length = (n_windows - 1) * stride + window
    with open_genome(CHR20) as genome:
        return genome.fetch("20", REGION_START, REGION_START + length)


def write_region(tmp: Path, n_windows: int, stride: int, window: int) -> Path:
    """A FASTA of real chr20 sequence holding exactly ``n_windows`` windows."""
    from enhscan.io.fasta import open_genome

    seq = region_sequence(n_windows, stride, window)
    path = tmp / f"chr20_{n_windows}.fa"
    body = "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60))
    path.write_text(f">chr20\n{body}\n")
    with open_genome(path):  # build the .fai once, outside the timings
        pass
    return path


def genome_command(fasta: str | Path, out: str | Path, *options: str) -> list[str]:
    """``enhscan -q genome FASTA --out OUT OPTIONS...`` in this Python, as a fresh process."""
    return [
        sys.executable,
        "-m",
        "enhscan",
        "-q",
        "genome",
        str(fasta),
        "--out",
        str(out),
        *options,
    ]
