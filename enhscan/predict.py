"""Scoring given sequences or regions (``enhscan predict``): a FASTA, a BED on a reference
genome, or a table with a ``sequence`` column, to one TSV row per input.

Regions from a BED are scored as the model's window (normally 1 kb) centred on the summit
(narrowPeak column 10) or on the centre, shifted inside the chromosome at its ends, as
``enhscan train`` cuts its examples; ``as_is`` scores each region exactly as given.
Coordinates are 0-based and half-open.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.intervals import centred_start
from enhscan.io.atomic import atomic_output, check_output_folder, make_output_folder
from enhscan.model.folder import Classifier
from enhscan.sequence import count_non_acgt

log = logging.getLogger(__name__)

#: Input kinds by file-name suffix (after .gz / .bgz).
KINDS = {
    ".bed": "bed",
    ".narrowpeak": "bed",
    ".broadpeak": "bed",
    ".fa": "fasta",
    ".fasta": "fasta",
    ".fna": "fasta",
    ".fas": "fasta",
    ".csv": "table",
    ".tsv": "table",
    ".txt": "table",
}
COLUMNS = ("id", "chrom", "start", "end", "length", "non_acgt", "probability", "label")
#: The longest input, in model windows: attention memory grows with the square of the length,
#: and a model trained on 1 kb windows says little about a whole chromosome.
MAX_WINDOWS_PER_INPUT = 10


@dataclass(frozen=True)
class Query:
    """One sequence to score.

    Attributes:
        name: the FASTA record, the BED name column (else ``chrom:start-end``), or the
            table's id / name (else ``lineN``).
        seq: upper-case DNA.
        chrom, start, end: where ``seq`` lies on the genome (BED input only; else None).
    """

    name: str
    seq: str
    chrom: str | None = None
    start: int | None = None
    end: int | None = None


def input_kind(path: str | os.PathLike) -> str:
    """``bed``, ``fasta`` or ``table``, from the file name."""
    name = Path(path).name.lower()
    for compressed in (".gz", ".bgz"):
        name = name.removesuffix(compressed)
    kind = KINDS.get(Path(name).suffix)
    if kind is None:
        raise EnhscanError(
            f"cannot tell what {path} holds from its name; use .bed/.narrowPeak (with "
            "--genome), .fa/.fasta, or .csv/.tsv with a 'sequence' column"
        )
    return kind


def _open_table(tmp: Path, final: Path):
    """The output table for writing: gzip-compressed when its name ends in .gz."""
    if final.name.endswith(".gz"):
        import gzip

        return gzip.open(tmp, "wt")
    return open(tmp, "w")


def _warn_unlike_training(queries: list[Query], window: int) -> None:
    """Say once how many inputs are unlike what the model learned from: much shorter than its
    window, or largely bases other than A/C/G/T (a genome scan skips such windows; here they
    are scored, and their scores mean little)."""
    short = sum(len(q.seq) < window // 2 for q in queries)
    unknown = sum(count_non_acgt(q.seq) > 0.1 * len(q.seq) for q in queries)
    if short or unknown:
        log.warning(
            "%d of %d inputs are shorter than half the model's %d bp window and %d are more "
            "than 10%% N or other non-ACGT bases (the length and non_acgt columns): the model "
            "learned from whole windows of real sequence, so read their scores with care",
            short, len(queries), window, unknown,
        )  # fmt: skip


def read_queries(
    path: str | os.PathLike,
    genome_path: str | os.PathLike | None = None,
    window: int = 1000,
    as_is: bool = False,
) -> list[Query]:
    """The sequences ``path`` asks to score, in file order.

    Args:
        path: FASTA, BED / narrowPeak, or CSV / TSV (each plain or gzip).
        genome_path: the reference a BED's coordinates refer to (required for a BED).
        window: width of the window cut around each BED region's summit.
        as_is: score BED regions exactly as given instead.
    """
    kind = input_kind(path)
    if kind == "fasta":
        from enhscan.io.sequences import read_fasta_records

        return [Query(r.name, r.seq) for r in read_fasta_records(path)]
    if kind == "table":
        from enhscan.io.sequences import read_sequence_table

        return [Query(r.name, r.seq) for r in read_sequence_table(path)]
    if genome_path is None:
        raise EnhscanError(f"{path} is a BED: give the genome it refers to with --genome REF.fa")
    from enhscan.io.fasta import open_genome
    from enhscan.io.peaks import read_peaks

    with open_genome(genome_path) as genome:
        peaks = read_peaks(path, genome.lengths, genome_name=Path(genome_path).name)
        queries = []
        for peak in peaks:
            length = genome.lengths[peak.chrom]
            if as_is:
                start, end = peak.start, peak.end
            elif length < window:
                raise EnhscanError(
                    f"{peak.where}: {peak.chrom} ({length:,} bp) is shorter than one "
                    f"{window:,} bp window; use --as-is to score the region as given"
                )
            else:
                start = centred_start(peak.summit, window, length)
                end = start + window
            name = peak.name or f"{peak.chrom}:{peak.start}-{peak.end}"
            queries.append(
                Query(name, genome.fetch(peak.chrom, start, end), peak.chrom, start, end)
            )
    return queries


def predict(
    input_path: str | os.PathLike,
    model: str | os.PathLike | Classifier,
    out_path: str | os.PathLike,
    *,
    genome_path: str | os.PathLike | None = None,
    as_is: bool = False,
    threshold: float | None = None,
    rc: str | None = None,
    device: str = "auto",
    dtype: str = "auto",
    batch_size: int | None = None,
    quantize: bool = False,
    kernels: str = "auto",
    task: str | None = None,
    force: bool = False,
) -> dict:
    """Score every sequence of ``input_path`` and write a TSV to ``out_path``.

    Columns: id, chrom, start, end (``.`` unless the input is a BED), length, non_acgt (bases
    other than A, C, G, T, which reach the model as unknown tokens), probability (of the
    enhancer class) and label (the model's label at ``threshold``, default the model's). For a
    multi-task model, probability is that of ``task`` (default ``any``) and label is the task's
    name or ``not_<task>``, at ``threshold`` (default 0.5); with ``task="all"`` the last two
    columns give way to one probability per task, ``p_<task>``.

    Returns:
        A summary: inputs, how many are at or above the threshold, the threshold, the model.
    """
    from enhscan.backend import ComputeOptions
    from enhscan.scan.run import load_scorer

    out_path = Path(out_path)
    if out_path.is_dir():
        raise EnhscanError(f"--out {out_path} is a folder; give a file name such as scores.tsv")
    if out_path.exists() and not force:
        raise EnhscanError(f"{out_path} exists; use --force to overwrite it")
    check_output_folder(out_path.parent)
    if threshold is not None and not 0 <= threshold <= 1:
        raise EnhscanError(f"threshold must be in [0, 1], got {threshold}")
    compute = ComputeOptions(
        device=device, dtype=dtype, batch_size=batch_size, quantize=quantize, kernels=kernels
    )
    classifier, scorer = load_scorer(model, compute, task)
    meta = classifier.metadata
    queries = read_queries(input_path, genome_path, meta.window, as_is)
    longest = max(queries, key=lambda q: len(q.seq), default=None)
    if longest is not None and len(longest.seq) > MAX_WINDOWS_PER_INPUT * meta.window:
        raise EnhscanError(
            f"{longest.name} is {len(longest.seq):,} bp, more than {MAX_WINDOWS_PER_INPUT} model "
            f"windows ({MAX_WINDOWS_PER_INPUT * meta.window:,} bp): scan long sequences with "
            "`enhscan genome`, which slides windows along them"
        )
    _warn_unlike_training(queries, meta.window)
    make_output_folder(out_path.parent)
    probs = scorer.score([q.seq for q in queries], rc=rc)
    if scorer.outputs:  # --task all
        return _write_all_tasks(queries, probs, meta.labels, out_path, classifier.identity)
    cut = meta.threshold if threshold is None else threshold
    positive = meta.labels[meta.positive_index]
    negative = next((x for i, x in enumerate(meta.labels) if i != meta.positive_index), "other")
    if scorer.task is not None:  # a multi-task model: one task, yes or no
        positive, negative = scorer.task, f"not_{scorer.task}"
        cut = 0.5 if threshold is None else threshold
    with atomic_output(out_path) as tmp, _open_table(tmp, out_path) as out:
        out.write("\t".join(COLUMNS) + "\n")
        for q, p in zip(queries, probs.tolist(), strict=True):
            where = ("." if q.chrom is None else q.chrom, _dot(q.start), _dot(q.end))
            out.write(
                f"{q.name}\t{where[0]}\t{where[1]}\t{where[2]}\t{len(q.seq)}\t"
                f"{count_non_acgt(q.seq)}\t{p:.6g}\t{positive if p >= cut else negative}\n"
            )
    return {
        "inputs": len(queries),
        "at_or_above_threshold": int(np.sum(probs >= cut)),
        "threshold": cut,
        "model": classifier.identity,
    }


def _write_all_tasks(queries, probs: np.ndarray, tasks: list[str], out_path: Path, model: str):
    """The table of ``--task all``: the usual first columns, then one probability per task
    (``p_<task>``)."""
    with atomic_output(out_path) as tmp, _open_table(tmp, out_path) as out:
        out.write("\t".join([*COLUMNS[:6], *(f"p_{t}" for t in tasks)]) + "\n")
        for q, row in zip(queries, probs.tolist(), strict=True):
            where = ("." if q.chrom is None else q.chrom, _dot(q.start), _dot(q.end))
            values = "\t".join(f"{p:.6g}" for p in row)
            out.write(
                f"{q.name}\t{where[0]}\t{where[1]}\t{where[2]}\t{len(q.seq)}\t"
                f"{count_non_acgt(q.seq)}\t{values}\n"
            )
    return {"inputs": len(queries), "tasks": len(tasks), "model": model}


def _dot(value: int | None) -> str:
    return "." if value is None else str(value)
