#!/usr/bin/env python3
"""Do the default calls mean something? Scan real genome pieces with default settings and ask
how enriched known enhancers are in the called bases.

    python benchmarks/calls_enrichment.py [--model DIR] [--region hg38|chrX|both]
                                          [--chrx-stride 200] [--fdr RATE | --call-top F]
                                          [--work DIR]

* ``hg38``: hg38 chr2:0-2,333,275 (``../shared/data``), stride 200, against the positive
  intervals of the Genomic Benchmarks ``human_enhancers_ensembl`` and ``human_enhancers_cohn``
  sets (train and test) that lie in it. A few minutes on 2 CPU cores.
* ``chrX``: GRCh37 chrX:0-70M, held out from the default model's training, against the same
  sets' positives lifted to GRCh37. About an hour at stride 200 on 2 CPU cores; the scan is
  resumable (run the same command again after an interruption).

For each: the share of scored bases called, the fold enrichment of enhancer bases in called
bases over their share of scored bases, precision and recall of the calls by overlap, the
window-level ROC-AUC of the track, and whether the -log10 p track means what it says: the
share of scored windows at or above 1, 2 and 3 (for windows like the null's random ones:
10%, 1% and 0.1%; enhancers in the region push them up). Each scan runs as ``enhscan genome``
in a fresh process with default settings (FDR 0.05 against the model's background null), then
``enhscan evaluate``.
"""

from __future__ import annotations

import csv
import gzip
import json
import subprocess
import sys
import time
from pathlib import Path

import click

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import ROOT, genome_command  # noqa: E402

SHARED = ROOT.parent / "shared" / "data"
HG38 = SHARED / "genomes" / "hg38_chr2_0-2333275.fa.gz"
CHRX = SHARED / "genomes" / "grch37_chrX_0-70M.fa.gz"
GB_HG38 = SHARED / "labels" / "genomic_benchmarks_hg38"
GB_GRCH37 = SHARED / "labels" / "genomic_benchmarks_grch37_chr20_chrX"
SETS = ("human_enhancers_ensembl", "human_enhancers_cohn")
HG38_END = 2_333_275
MIN_LENGTH = 50  # the Ensembl set has a few intervals of 2 bp


def hg38_positives(path: Path) -> int:
    """BED of the benchmark positives inside hg38 chr2:0-2,333,275; how many."""
    rows = set()
    for name in SETS:
        for split in ("train", "test"):
            with gzip.open(GB_HG38 / name / split / "positive.csv.gz", "rt") as handle:
                for row in csv.DictReader(handle):
                    start, end = int(row["start"]), int(row["end"])
                    if row["region"] == "chr2" and end <= HG38_END and end - start >= MIN_LENGTH:
                        rows.add((start, end))
    path.write_text("".join(f"chr2\t{s}\t{e}\n" for s, e in sorted(rows)))
    return len(rows)


def chrx_positives(path: Path) -> int:
    """BED of the lifted benchmark positives on GRCh37 chrX:0-70M; how many."""
    rows = set()
    for name in SETS:
        table = next(GB_GRCH37.glob(f"{name}.*.csv.gz"))
        with gzip.open(table, "rt") as handle:
            for row in csv.DictReader(handle):
                start, end = int(row["grch37_start"]), int(row["grch37_end"])
                if (
                    row["label"] in ("1", "positive")
                    and row["grch37_chrom"] == "chrX"
                    and end - start >= MIN_LENGTH
                ):
                    rows.add((start, end))
    path.write_text("".join(f"chrX\t{s}\t{e}\n" for s, e in sorted(rows)))
    return len(rows)


def scan_and_evaluate(
    fasta: Path, positives: Path, out: Path, model: str | None, stride: int, rule: list[str]
):
    options = ["--stride", str(stride), "--device", "cpu", *rule]
    options += ["--model", model] if model else []
    resume = ["--resume"] if (out / ".enhscan-shards").exists() else ["--force"]
    began = time.time()
    subprocess.run(genome_command(fasta, out, *options, *resume), check=True)
    seconds = time.time() - began
    subprocess.run(
        [
            sys.executable,
            "-m",
            "enhscan",
            "-q",
            "evaluate",
            str(out),
            "--force",
            "--positives",
            str(positives),
        ],
        check=True,
    )
    record = json.loads((out / "run.json").read_text())
    report = json.loads((out / "evaluation" / "evaluation.json").read_text())
    return record, report, seconds


def track_shares(out: Path) -> list[float]:
    """Shares of the scanned windows whose -log10 p is at least 1, 2 and 3."""
    import numpy as np
    import pyBigWig

    with pyBigWig.open(str(out / "scores.bw")) as bw:
        values = np.concatenate(
            [np.array([v for *_, v in bw.intervals(c) or []]) for c in bw.chroms()]
        )
    return [float((values >= x).mean()) for x in (1, 2, 3)]


def row(name: str, n_pos: int, record: dict, report: dict, seconds: float, out: Path) -> str:
    calls, window = report["calls"], report["window_level"]
    calling = record["calling"]
    fold = calls["fold_enrichment"]
    return (
        f"| {name} | {record['windows']['scored']:,} | {n_pos} | {calling['described']} "
        f"({calling['null']['source']} null) | {calls['calls']} | "
        f"{calls['called_fraction']:.2%} | {'n/a' if fold is None else f'{fold:.2f}x'} | "
        f"{_num(calls['precision'])} | {_num(calls['recall'])} | {window['roc_auc']:.3f} | "
        + " / ".join(f"{share:.2%}" for share in track_shares(out))
        + f" | {seconds / 60:.1f} min |"
    )


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", default=None, help="Model folder  [default: the shipped model]")
@click.option("--region", type=click.Choice(["hg38", "chrX", "both"]), default="hg38")
@click.option("--chrx-stride", type=int, default=200, show_default=True)
@click.option(
    "--fdr", type=float, default=None, help="Call at this FDR  [default: enhscan's, 0.05]"
)
@click.option("--call-top", type=float, default=None, help="Call this top fraction instead.")
@click.option(
    "--work",
    type=click.Path(file_okay=False, path_type=Path),
    default=ROOT / "build" / "calls_enrichment",
    show_default=True,
)
def main(
    model: str | None,
    region: str,
    chrx_stride: int,
    fdr: float | None,
    call_top: float | None,
    work: Path,
) -> None:
    work.mkdir(parents=True, exist_ok=True)
    rule = ["--fdr", str(fdr)] if fdr is not None else []
    rule += ["--call-top", str(call_top)] if call_top is not None else []
    lines = [
        "| region | windows scored | known enhancers | rule | calls | bases called | "
        "fold enrichment | precision | recall | window ROC-AUC | track >= 1 / 2 / 3 | scan |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    if region in ("hg38", "both"):
        bed = work / "hg38_chr2_positives.bed"
        n = hg38_positives(bed)
        record, report, seconds = scan_and_evaluate(HG38, bed, work / "hg38", model, 200, rule)
        lines.append(
            row("hg38 chr2:0-2.33M, stride 200", n, record, report, seconds, work / "hg38")
        )
    if region in ("chrX", "both"):
        bed = work / "chrX_positives.bed"
        n = chrx_positives(bed)
        record, report, seconds = scan_and_evaluate(
            CHRX, bed, work / "chrX", model, chrx_stride, rule
        )
        name = f"GRCh37 chrX:0-70M, stride {chrx_stride}"
        lines.append(row(name, n, record, report, seconds, work / "chrX"))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
