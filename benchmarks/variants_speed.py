#!/usr/bin/env python3
"""`enhscan variants` against the naive variant loop, side by side, on the same alleles.

Draws seeded variants on a stretch of real GRCh37 chr20 (from ../shared/data): 80% SNVs, 10%
insertions and 10% deletions of 1-10 bases, a tenth of the sites multi-allelic. Then:

- enhscan: `enhscan variants` in a fresh process (the default model, this device);
- naive: the loop people write: for each allele, cut the reference and the alternate window
  (the same windows, from enhscan.alleles), tokenize each with padding to 512 tokens and run
  the model on each alone (two forward passes per allele, nothing shared, no batching by
  length), through transformers' Auto classes; for a model that reads bases (the hybrid
  default), each window's base codes through the network (``naive_scan.base_model``).

It prints alleles/s of both and their ratio (end to end, process start to exit, for enhscan;
the loop alone for the naive side, which flatters it), and checks that the two agree on
delta within 1e-4.

    python benchmarks/variants_speed.py [--variants 1000] [--device cpu|cuda]
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
import numpy as np
from common import CHR20, ROOT, region_sequence

STRETCH = 2_000_000


def draw_vcf(seq: str, n: int, path: Path, seed: int = 0) -> None:
    """``n`` sites on ``seq`` (named chr20, 1-based VCF positions), sorted."""
    rng = np.random.default_rng(seed)
    positions = np.sort(rng.choice(np.arange(2000, len(seq) - 2000), n, replace=False))
    lines = ["##fileformat=VCFv4.2", f"##contig=<ID=chr20,length={len(seq)}>",
             "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO"]  # fmt: skip
    for i, pos in enumerate(positions.tolist()):
        kind, size = rng.random(), int(rng.integers(1, 11))
        ref = seq[pos]
        if kind < 0.8:
            alts = [b for b in "ACGT" if b != ref][: 2 if rng.random() < 0.1 else 1]
        elif kind < 0.9:
            alts = [ref + "".join(rng.choice(list("ACGT"), size))]
        else:
            ref = seq[pos : pos + size + 1]
            alts = [ref[0]]
        lines.append(f"chr20\t{pos + 1}\tv{i}\t{ref}\t{','.join(alts)}\t.\t.\t.")
    path.write_text("\n".join(lines) + "\n")


def naive(fasta: Path, vcf: Path, device: str) -> tuple[dict[tuple, float], float]:
    """The naive loop's delta per (pos, alt), and its seconds."""
    import pysam
    import torch
    from naive_scan import base_model, token_model

    from enhscan.alleles import Allele, allele_windows, flank_span
    from enhscan.model import default_model_path

    folder = str(default_model_path())
    if (Path(folder) / "tokenizer.json").exists():
        tokenize, model = token_model(folder, 512, device)
    else:  # a model that reads bases (the hybrid default)
        tokenize, model = base_model(folder, device)
    seq = "".join(line.strip() for line in open(fasta) if not line.startswith(">")).upper()

    def probability(window: str) -> float:
        with torch.inference_mode():
            return float(torch.softmax(model(**tokenize([window])).logits, -1)[0, 1])

    deltas = {}
    began = time.perf_counter()
    for rec in pysam.VariantFile(str(vcf)):
        for alt in rec.alts:
            allele = Allele("chr20", rec.start, rec.ref, alt)
            lo, hi = flank_span(allele, 1000, len(seq))
            ref_window, alt_window = allele_windows(allele, seq[lo:hi], lo, 1000, len(seq))
            deltas[(rec.pos, alt)] = probability(alt_window) - probability(ref_window)
    return deltas, time.perf_counter() - began


@click.command()
@click.option("--variants", "n", type=int, default=1000, show_default=True)
@click.option("--device", default="cpu", show_default=True)
def main(n: int, device: str) -> None:
    if not CHR20.exists():
        sys.exit(f"needs {CHR20} (the shared data folder next to the repository)")
    import torch

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        seq = region_sequence(STRETCH // 200, 200, 1000)[:STRETCH].upper()
        fasta = tmp / "chr20.fa"
        fasta.write_text(">chr20\n" + "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60)))
        vcf = tmp / "v.vcf"
        draw_vcf(seq, n, vcf)
        command = [sys.executable, "-m", "enhscan", "-q", "variants", str(vcf), "-g", str(fasta),
                   "-o", str(tmp / "s.vcf.gz"), "--tsv", "--device", device]  # fmt: skip
        began = time.perf_counter()
        subprocess.run(command, check=True, cwd=ROOT)
        wall = time.perf_counter() - began
        record = json.loads((tmp / "s.json").read_text())
        rows = [r.split("\t") for r in (tmp / "s.tsv").read_text().splitlines()[1:]]
        ours = {(int(r[1]), r[4]): float(r[8]) for r in rows if r[5] == "scored"}
        theirs, naive_seconds = naive(fasta, vcf, device)
    alleles = record["alleles_scored"]
    diff = max(abs(ours[k] - theirs[k]) for k in ours)
    print(f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, {device}")
    print(f"# {n:,} sites, {alleles:,} alleles on {STRETCH / 1e6:.0f} Mb of chr20\n")
    print("| | alleles/s | seconds |\n|---|---|---|")
    print(f"| enhscan variants (end to end) | {alleles / wall:.1f} | {wall:.1f} |")
    print(f"| naive loop (loop only) | {alleles / naive_seconds:.1f} | {naive_seconds:.1f} |")
    print(f"\nenhscan / naive: {naive_seconds / wall:.2f}x; windows scored by enhscan "
          f"{record['windows_scored']:,} for {2 * alleles:,} naive forward passes; largest delta "
          f"difference {diff:.1e} ({'within' if diff <= 1e-4 else 'OUTSIDE'} 1e-4)")  # fmt: skip


if __name__ == "__main__":
    main()
