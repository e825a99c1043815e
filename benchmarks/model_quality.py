#!/usr/bin/env python3
"""Model quality on the held-out GRCh37 chrX: the scorecard of issue 17.

Every model given, and a logistic regression on GC and CpG content, on the same windows of
three tests (1 kb windows, models scored on both strands and averaged; a multi-task model read
through its ``any`` task, a classifier through its positive label):

1. **enhancers / own background**: the Genomic Benchmarks ``human_enhancers_cohn`` and
   ``human_enhancers_ensembl`` intervals on chrX (lifted to GRCh37, in ../shared/data), each
   window centred on its interval, positives against the sets' own negatives; one window per
   start (the sets share intervals), none with N, none labelled both ways.
2. **enhancers / GC-matched**: the same positive windows against as many random chrX windows
   drawn by enhscan's own GC-matched sampler (``sample_background``, 20 GC bins), clear of every
   labelled interval. Composition scores about 0.5 here by construction: this is what a model
   reads beyond GC.
3. **open / closed**: REMO elements of chrX (element-centred windows, shifted up to 200 bp)
   against random chrX windows with no element in their centre 200 bp (the multi-task
   pretraining task, held out).
4. **hg38 scan**: the same two Genomic Benchmarks sets' intervals (positives and their own
   negatives, train and test splits, at least 50 bp) inside hg38 chr2:0-2,333,275, a piece of
   the genome no enhscan model trains on: the piece is scanned with ``enhscan genome
   --regions`` (both strands, default stride) and each interval scored by the mean track value
   over it. The regression scores the 1 kb window centred on each interval.

The regression is fitted on chr20 windows of the same kind: the chr20 enhancer labels for
tests 1 and 2, REMO windows of chr20 for test 3. Every window comes from a fixed seed, so
reruns give the same numbers.

A second table asks whether the first model's lead (or lag) on each other row is more than
the test sets' own noise: the ROC-AUC difference, first model minus that row, with a 95%
stratified paired-bootstrap interval (``enhscan.metrics.paired_roc_auc_difference``, 2,000
resamples of the same windows).

    python benchmarks/model_quality.py [NAME=MODEL_DIR ...] [--json scorecard.json]
        [--remo-windows 10000] [--batch-size 64]

MODEL_DIR ``default`` is the shipped default model; without models it scores that one.
"""

from __future__ import annotations

import csv
import gzip
import json
import tempfile
from pathlib import Path

import click
import numpy as np
from common import ROOT

DATA = ROOT.parent / "shared" / "data"
GENOMES = {
    "20": DATA / "genomes" / "grch37_chr20.fa.gz",
    "X": DATA / "genomes" / "grch37_chrX_0-70M.fa.gz",
}
GB = DATA / "labels" / "genomic_benchmarks_grch37_chr20_chrX"
GB_SETS = ("human_enhancers_cohn", "human_enhancers_ensembl")
REMO = DATA / "labels" / "remo_v1" / "remo_v1.grch37_chr20_chr22_chrX.bed.gz"
WINDOW = 1000
TESTS = ("enhancers", "gc_matched", "open_closed")
HG38 = DATA / "genomes" / "hg38_chr2_0-2333275.fa.gz"
GB_HG38 = DATA / "labels" / "genomic_benchmarks_hg38"
HG38_END = 2_333_275
MIN_LENGTH = 50  # the Ensembl set has a few intervals of 2 bp


def labelled_windows(chrom: str) -> tuple[list[str], np.ndarray, list[tuple[int, int]]]:
    """The Genomic Benchmarks enhancer sets' windows on ``chrom`` (``20`` or ``X``): DNA,
    labels (1 enhancer), and every labelled interval (for the sampler to avoid)."""
    from enhscan.intervals import centred_start
    from enhscan.io.fasta import open_genome
    from enhscan.sequence import count_non_acgt

    label_of: dict[int, set[int]] = {}  # window start -> labels (the two sets overlap)
    spans = []
    with open_genome(GENOMES[chrom]) as genome:
        length = genome.lengths[chrom]
        for name in GB_SETS:
            path = GB / f"{name}.hg38_lifted_to_GRCh37_chr20_chrX70M.csv.gz"
            with gzip.open(path, "rt") as handle:
                for row in csv.DictReader(handle):
                    if row["grch37_chrom"] != f"chr{chrom}":
                        continue
                    lo, hi = int(row["grch37_start"]), int(row["grch37_end"])
                    spans.append((lo, hi))
                    start = centred_start((lo + hi) // 2, WINDOW, length)
                    label_of.setdefault(start, set()).add(int(row["label"] == "positive"))
        # One window per start; a window labelled both ways is dropped.
        kept = sorted(start for start, labels in label_of.items() if len(labels) == 1)
        windows = [(genome.fetch(chrom, s, s + WINDOW), label_of[s].pop()) for s in kept]
    windows = [(seq, y) for seq, y in windows if count_non_acgt(seq) == 0]
    seqs = [seq for seq, _ in windows]
    return seqs, np.array([y for _, y in windows], dtype=np.int64), spans


def gc_matched(positives: list[str], avoid: list[tuple[int, int]], seed: int) -> list[str]:
    """As many random chrX windows as ``positives``, GC-matched to them, clear of ``avoid``."""
    from enhscan.io.fasta import open_genome
    from enhscan.sequence import gc_content
    from enhscan.training.background import sample_background

    with open_genome(GENOMES["X"]) as genome:
        drawn = sample_background(
            genome, len(positives), WINDOW, [gc_content(s) for s in positives],
            {"X": avoid}, seed=seed,
        )  # fmt: skip
    return [example.seq for example in drawn]


def open_closed(chrom: str, n: int, seed: int) -> tuple[list[str], np.ndarray]:
    """REMO element-centred windows of ``chrom`` (label 1) and random ones with no element in
    their centre bin (label 0), from ``n`` windows drawn half and half."""
    from enhscan.io.fasta import open_genome
    from enhscan.training.multitask import read_label_bed, with_any_task
    from enhscan.training.multitask_windows import draw_split

    with open_genome(GENOMES[chrom]) as genome:
        elements = with_any_task(read_label_bed(REMO, genome.lengths, column=6))
        split = draw_split(genome, elements, [chrom], n, WINDOW, seed=seed)
    keep = split.centred | ~split.targets[:, 0].astype(bool)  # column 0: the "any" task
    seqs = [s for s, k in zip(split.seqs, keep, strict=True) if k]
    return seqs, split.centred[keep].astype(np.int64)


def test_sets(remo_windows: int) -> dict:
    """The three tests' chrX windows and labels, and the chr20 windows the regression fits."""
    train_seqs, train_labels, _ = labelled_windows("20")
    seqs, labels, spans = labelled_windows("X")
    positives = [s for s, y in zip(seqs, labels, strict=True) if y]
    background = gc_matched(positives, spans, seed=0)
    remo_train = open_closed("20", remo_windows, seed=1)
    return {
        "enhancers": (seqs, labels, (train_seqs, train_labels)),
        "gc_matched": (
            positives + background,
            np.array([1] * len(positives) + [0] * len(background), dtype=np.int64),
            (train_seqs, train_labels),
        ),
        "open_closed": (*open_closed("X", remo_windows, seed=2), remo_train),
    }


def hg38_intervals() -> tuple[list[tuple[int, int]], np.ndarray]:
    """The enhancer sets' intervals on hg38 chr2:0-2,333,275: (start, end) each, sorted, and
    labels (1 enhancer); an interval labelled both ways is dropped."""
    label_of: dict[tuple[int, int], set[int]] = {}
    for name in GB_SETS:
        for split in ("train", "test"):
            for label, kind in ((1, "positive"), (0, "negative")):
                with gzip.open(GB_HG38 / name / split / f"{kind}.csv.gz", "rt") as handle:
                    for row in csv.DictReader(handle):
                        lo, hi = int(row["start"]), int(row["end"])
                        if row["region"] == "chr2" and hi <= HG38_END and hi - lo >= MIN_LENGTH:
                            label_of.setdefault((lo, hi), set()).add(label)
    kept = sorted(span for span, labels in label_of.items() if len(labels) == 1)
    return kept, np.array([label_of[span].pop() for span in kept], dtype=np.int64)


def hg38_windows(intervals: list[tuple[int, int]]) -> list[str]:
    """The 1 kb window centred on each interval (for the regression)."""
    from enhscan.intervals import centred_start
    from enhscan.io.fasta import open_genome

    with open_genome(HG38) as genome:
        length = genome.lengths["chr2"]
        starts = [centred_start((lo + hi) // 2, WINDOW, length) for lo, hi in intervals]
        return [genome.fetch("chr2", s, s + WINDOW) for s in starts]


def hg38_scan_scores(model_dir: str, intervals: list[tuple[int, int]], work: Path) -> np.ndarray:
    """Scan the intervals of hg38 chr2 with ``enhscan genome`` (both strands) and read each
    interval's mean track value: float64 [len(intervals)]."""
    import pyBigWig

    from enhscan.api import scan_genome

    bed = work / "intervals.bed"
    bed.write_text("".join(f"chr2\t{lo}\t{hi}\n" for lo, hi in intervals))
    out = work / "scan"
    model = None if model_dir == "default" else model_dir
    scan_genome(HG38, out, model, regions=str(bed), rc="mean", force=True, device="cpu")
    (track,) = [p for p in out.glob("*.bw")]
    with pyBigWig.open(str(track)) as bw:
        means = [bw.stats("chr2", lo, hi, type="mean")[0] for lo, hi in intervals]
    return np.array([np.nan if m is None else m for m in means], dtype=np.float64)


def model_scores(model_dir: str, seqs: list[str], batch_size: int) -> np.ndarray:
    from enhscan.api import load_model
    from enhscan.backend import ComputeOptions
    from enhscan.engine import WindowScorer

    classifier = load_model(None if model_dir == "default" else model_dir)
    scorer = WindowScorer(classifier, ComputeOptions(batch_size=batch_size, device="cpu"))
    return scorer.score(seqs, rc="mean")


def metrics(labels: np.ndarray, scores: np.ndarray) -> dict:
    from enhscan.metrics import binary_metrics

    m = binary_metrics(labels, scores)
    return {"roc_auc": round(m.roc_auc, 4), "pr_auc": round(m.pr_auc, 4), "n": int(len(labels)),
            "positives": int(labels.sum())}  # fmt: skip


def differences(labels: dict, scores: dict[str, dict[str, np.ndarray]]) -> dict:
    """The first model's ROC-AUC minus each other model's, per test, with bootstrap intervals."""
    from enhscan.metrics import paired_roc_auc_difference

    first, *others = scores
    return {
        name: {
            test: paired_roc_auc_difference(y, scores[first][test], scores[name][test]).to_dict()
            for test, y in labels.items()
        }
        for name in others
    }


@click.command()
@click.argument("models", nargs=-1)
@click.option("--json", "json_out", type=click.Path(dir_okay=False), default=None)
@click.option("--remo-windows", type=int, default=10_000, show_default=True)
@click.option("--batch-size", type=int, default=64, show_default=True)
def main(models: tuple[str, ...], json_out: str | None, remo_windows: int, batch_size: int):
    from enhscan.training.baselines import GcCpgBaseline

    if not GB.exists() or not REMO.exists():
        raise SystemExit(f"needs the shared data in {DATA}")
    named = [m.split("=", 1) if "=" in m else (Path(m).name, m) for m in models]
    named = named or [("shipped default model", "default")]
    sets = test_sets(remo_windows)
    intervals, hg38_labels = hg38_intervals()
    card: dict = {"windows": {t: len(sets[t][1]) for t in TESTS}}
    card["windows"]["hg38_scan"] = len(intervals)
    labels = {t: sets[t][1] for t in TESTS} | {"hg38_scan": hg38_labels}
    scores: dict[str, dict[str, np.ndarray]] = {}
    with tempfile.TemporaryDirectory() as work:
        for name, path in named:
            scores[name] = {t: model_scores(path, sets[t][0], batch_size) for t in TESTS}
            scan = hg38_scan_scores(path, intervals, Path(work))
            scores[name]["hg38_scan"] = np.nan_to_num(scan, nan=-1.0)
    regression = "GC/CpG logistic regression (fitted on chr20)"
    scores[regression] = {
        t: GcCpgBaseline().fit(*sets[t][2]).score(sets[t][0]).astype(np.float64) for t in TESTS
    }
    fitted = GcCpgBaseline().fit(*sets["enhancers"][2])
    scores[regression]["hg38_scan"] = fitted.score(hg38_windows(intervals)).astype(np.float64)
    rows = {name: {t: metrics(labels[t], s[t]) for t in labels} for name, s in scores.items()}
    card["models"] = rows
    card["differences"] = differences(labels, scores)
    print(
        "| model | enhancers PR-AUC | enhancers ROC-AUC | vs GC-matched ROC-AUC "
        "| open vs closed ROC-AUC | hg38 chr2 scan ROC-AUC |"
    )
    print("|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['enhancers']['pr_auc']:.3f} | {r['enhancers']['roc_auc']:.3f} "
            f"| {r['gc_matched']['roc_auc']:.3f} | {r['open_closed']['roc_auc']:.3f} "
            f"| {r['hg38_scan']['roc_auc']:.3f} |"
        )
    print("\nwindows: " + ", ".join(f"{t} {n:,}" for t, n in card["windows"].items()))
    first = next(iter(scores))
    print(f"\nROC-AUC of {first} minus each row [95% paired-bootstrap interval]:\n")
    print("| against | enhancers | vs GC-matched | open vs closed | hg38 chr2 scan |")
    print("|---|---|---|---|---|")
    for name, d in card["differences"].items():
        cells = " | ".join(
            f"{d[t]['difference']:+.3f} [{d[t]['low']:+.3f}, {d[t]['high']:+.3f}]"
            for t in (*TESTS, "hg38_scan")
        )
        print(f"| {name} | {cells} |")
    if json_out:
        Path(json_out).write_text(json.dumps(card, indent=2) + "\n")


if __name__ == "__main__":
    main()
