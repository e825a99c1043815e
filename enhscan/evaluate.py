"""Scoring a scan against known enhancers: `enhscan evaluate`.

Two views of the same scan:

* **Region level** (with known negatives): every truth region gets the track value at its
  centre (the probability of the window centred nearest to it, as in training), or the
  maximum or mean over it; PR-AUC and ROC-AUC of those scores against the labels.
* **Window level**: every scored track bin is a window; it is positive when it overlaps a
  known enhancer, negative otherwise (or, with known negatives, only bins overlapping a
  negative count as negatives).

Calls are checked by overlap: precision is the share of calls that overlap a known enhancer,
recall the share of known enhancers overlapped by a call; and by bases: the fold enrichment
is the share of called bases inside known enhancers over the share of all scored bases inside
them (1 for calls placed at random). Truth regions on sequences the
genome lacks, past a chromosome end, or where the scan has no value are counted and listed,
never silently dropped. Coordinates are 0-based, half-open.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.intervals import merge, overlap_bp, overlap_intervals, overlaps_any, touches
from enhscan.io.atomic import check_output_folder, make_output_folder
from enhscan.io.bed import iter_bed, read_calls
from enhscan.io.bigwig import open_bigwig
from enhscan.naming import match_chrom
from enhscan.scan.outputs import OUTPUTS

REGION_SCORES = ("centre", "max", "mean")
REPORT_NAME = "evaluation.json"


@dataclass
class TruthSet:
    """Truth regions matched to the scanned genome.

    Attributes:
        regions: ``(chrom, start, end, label)`` with the genome's chromosome names.
        outside: counts of regions left out, by reason: ``unknown_chromosome`` (with the
            names in ``unknown_names``), ``past_chromosome_end``, ``duplicates`` (the same
            region listed again) and ``conflicting_labels`` (listed as both classes).
    """

    regions: list[tuple[str, int, int, int]] = field(default_factory=list)
    outside: dict[str, int] = field(default_factory=dict)
    unknown_names: dict[str, int] = field(default_factory=dict)


def read_truth(positives: str, negatives: str | None, sizes: dict[str, int]) -> TruthSet:
    """Read known enhancers (label 1) and optional known negatives (label 0) BED files."""
    truth = TruthSet(outside={"unknown_chromosome": 0, "past_chromosome_end": 0})
    for path, label in ((positives, 1), (negatives, 0)):
        if path is None:
            continue
        for record in iter_bed(path):
            chrom = match_chrom(record.chrom, sizes)
            if chrom is None:
                truth.outside["unknown_chromosome"] += 1
                truth.unknown_names[record.chrom] = truth.unknown_names.get(record.chrom, 0) + 1
            elif record.end > sizes[chrom]:
                truth.outside["past_chromosome_end"] += 1
            else:
                truth.regions.append((chrom, record.start, record.end, label))
    # A region listed twice (benchmark sets have such repeats) is one region; one listed as
    # both enhancer and background is contradictory and left out.
    labels_of: dict[tuple[str, int, int], set[int]] = {}
    for chrom, start, end, label in truth.regions:
        labels_of.setdefault((chrom, start, end), set()).add(label)
    unique = [(*key, next(iter(labels))) for key, labels in labels_of.items() if len(labels) == 1]
    truth.outside["duplicates"] = len(truth.regions) - len(labels_of)
    truth.outside["conflicting_labels"] = len(labels_of) - len(unique)
    truth.regions = unique
    if not any(r[3] == 1 for r in truth.regions):
        if truth.outside["conflicting_labels"]:
            raise EnhscanError(
                f"every known enhancer of {positives} on the scan is also in {negatives} (an "
                "interval labelled both ways is left out); give --negatives of other regions"
            )
        names = ", ".join(sorted(truth.unknown_names)[:5])
        raise EnhscanError(
            f"no known enhancer of {positives} lies on the scanned genome"
            + (f" (its chromosomes {names} are not in the scan)" if names else "")
            + "; check both are the same assembly"
        )
    return truth


def evaluate_scan(
    tracks_dir: str | os.PathLike,
    positives: str,
    negatives: str | None = None,
    *,
    region_score: str = "centre",
    out_dir: str | os.PathLike | None = None,
    force: bool = False,
) -> dict:
    """Evaluate an `enhscan genome` output folder against known regions; write a report.

    Args:
        tracks_dir: folder with ``scores.bw`` (and ``calls.narrowPeak``).
        positives: BED of known enhancers.
        negatives: BED of known non-enhancers (enables the region-level view).
        region_score: how a region is scored from the track: ``centre``, ``max`` or ``mean``.
        out_dir: where to write ``evaluation.json``, ``pr_curve.png`` and
            ``score_distributions.png``; default ``tracks_dir/evaluation``.
        force: replace the report a previous evaluation left in ``out_dir``.

    Returns:
        The report (also written as JSON).
    """
    from enhscan.metrics import binary_metrics
    from enhscan.plots import plot_pr_roc, plot_precision_by_calls, plot_score_distributions

    if region_score not in REGION_SCORES:
        raise ValueError(f"region_score must be one of {REGION_SCORES}")
    tracks_dir = Path(tracks_dir)
    bigwig = tracks_dir / OUTPUTS["bigwig"]
    if not bigwig.exists():
        raise EnhscanError(
            f"{tracks_dir} has no {OUTPUTS['bigwig']}; give the --out folder of "
            "an `enhscan genome` run"
        )
    out_dir = Path(out_dir) if out_dir else tracks_dir / "evaluation"
    if (out_dir / REPORT_NAME).exists() and not force:
        raise EnhscanError(
            f"{out_dir} already holds an evaluation; use --force to replace it, or give "
            "another --out"
        )
    check_output_folder(out_dir)
    with open_bigwig(bigwig) as bw:
        sizes = dict(bw.chroms())
        truth = read_truth(positives, negatives, sizes)
        report: dict = {
            "tracks": str(tracks_dir.resolve()),
            "positives": positives,
            "negatives": negatives,
            "truth_left_out": truth.outside,
            "truth_unknown_chromosomes": truth.unknown_names,
        }
        curves: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        distributions: dict[str, np.ndarray] = {}

        if negatives:
            labels, scores, unscored = _region_scores(bw, truth.regions, region_score)
            report["truth_unscored"] = unscored
            report["region_level"] = _metrics_or_none(binary_metrics, labels, scores)
            report["region_level_scoring"] = region_score
            if report["region_level"]:
                curves[f"regions ({region_score})"] = (labels, scores)
                distributions = {"enhancer": scores[labels == 1], "background": scores[labels == 0]}

        merged = _by_chrom_and_label(truth.regions)
        labels, scores = _window_labels(bw, merged, sizes, with_negatives=bool(negatives))
        report["window_level"] = _metrics_or_none(binary_metrics, labels, scores)
        if report["window_level"]:
            curves["windows"] = (labels, scores)
            if not distributions:
                distributions = {
                    "overlapping enhancers": scores[labels == 1],
                    "other windows": scores[labels == 0],
                }
        report["calls"], ranked_hits = _call_overlap(tracks_dir, bw, truth.regions, merged)

    make_output_folder(out_dir)
    if curves:
        plots = plot_pr_roc(curves, out_dir, title="scan vs known regions")
        report["plots"] = {k: str(v) for k, v in plots.items()}
    if distributions and all(len(v) for v in distributions.values()):
        threshold, kind = _run_threshold(tracks_dir)
        top = max(float(v.max()) for v in distributions.values())
        path = plot_score_distributions(
            distributions,
            out_dir / "score_distributions.png",
            threshold=threshold,
            title="track scores",
            limits=(0.0, 1.0) if kind == "probability" else (0.0, max(1.0, top)),
            xlabel="Probability of enhancer" if kind == "probability" else "Track: -log10 p",
        )
        report.setdefault("plots", {})["distributions"] = str(path)
    if report["calls"] and len(ranked_hits):
        calls = report["calls"]
        base_rate = (
            calls["enhancer_bases"] / calls["scored_bases"] if calls["scored_bases"] else None
        )
        path = plot_precision_by_calls(
            ranked_hits, out_dir / "precision_by_calls.png", base_rate, f"calls ({calls['rule']})"
        )
        report.setdefault("plots", {})["precision_by_calls"] = str(path)
    from enhscan.io.atomic import write_json

    write_json(out_dir / REPORT_NAME, report)
    return report


def _metrics_or_none(metric_fn, labels: np.ndarray, scores: np.ndarray) -> dict | None:
    if len(labels) == 0 or labels.min() == labels.max():
        return None  # both classes are needed; the report says so by its absence
    return metric_fn(labels, scores).to_dict()


def _region_scores(bw, regions, how: str) -> tuple[np.ndarray, np.ndarray, dict]:
    labels, scores = [], []
    unscored = {"enhancer": 0, "background": 0}
    for chrom, start, end, label in regions:
        if how == "centre":
            centre = (start + end) // 2
            value = bw.values(chrom, centre, centre + 1)[0]
        else:
            value = bw.stats(chrom, start, end, type=how, exact=True)[0]
        if value is None or np.isnan(value):
            unscored["enhancer" if label else "background"] += 1
            continue
        labels.append(label)
        scores.append(value)
    return np.array(labels, dtype=np.int64), np.array(scores, dtype=np.float64), unscored


def _by_chrom_and_label(regions) -> dict[tuple[str, int], list[tuple[int, int]]]:
    """Merged truth intervals per (chromosome, label), built once for all the views."""
    grouped: dict[tuple[str, int], list[tuple[int, int]]] = {}
    for chrom, start, end, label in regions:
        grouped.setdefault((chrom, label), []).append((start, end))
    return {key: merge(intervals) for key, intervals in grouped.items()}


def _window_labels(bw, truth: dict, sizes: dict[str, int], with_negatives: bool):
    all_labels, all_scores = [], []
    for chrom in sizes:
        bins = bw.intervals(chrom)
        if not bins:
            continue
        arr = np.array(bins, dtype=np.float64)
        starts, ends, values = arr[:, 0].astype(np.int64), arr[:, 1].astype(np.int64), arr[:, 2]
        is_pos = overlaps_any(starts, ends, truth.get((chrom, 1), []))
        if with_negatives:
            keep = is_pos | overlaps_any(starts, ends, truth.get((chrom, 0), []))
        else:
            keep = np.ones(len(starts), dtype=bool)
        all_labels.append(is_pos[keep].astype(np.int64))
        all_scores.append(values[keep])
    if not all_labels:
        return np.empty(0, dtype=np.int64), np.empty(0)
    return np.concatenate(all_labels), np.concatenate(all_scores)


def _call_overlap(tracks_dir: Path, bw, regions, truth: dict) -> tuple[dict | None, np.ndarray]:
    """Calls against the known enhancers: precision and recall by overlap, and the fold
    enrichment of enhancer bases in called bases over their share of all scored bases.

    Returns:
        The report entry (None without a calls file), and whether each call overlaps a known
        enhancer, best call (highest signalValue) first.
    """
    calls_file = tracks_dir / OUTPUTS["calls"]
    if not calls_file.exists():
        return None, np.zeros(0, dtype=bool)
    calls: dict[str, list[tuple[int, int]]] = {}
    signal: list[float] = []
    hit: list[bool] = []
    for call in read_calls(calls_file):
        calls.setdefault(call.chrom, []).append((call.start, call.end))
        signal.append(call.signal)
        hit.append(touches(truth.get((call.chrom, 1), []), call.start, call.end))
    merged_calls = {chrom: merge(intervals) for chrom, intervals in calls.items()}
    hits = {1: 0, 0: 0}
    counts = {1: 0, 0: 0}
    for chrom, start, end, label in regions:
        counts[label] += 1
        hits[label] += bool(touches(merged_calls.get(chrom, []), start, end))
    n_calls, n_pos, n_neg = len(hit), counts[1], counts[0]
    ranked = np.array(hit, dtype=bool)[np.argsort(-np.array(signal), kind="stable")]
    return {
        "calls": n_calls,
        "rule": _run_calling(tracks_dir),
        "precision": sum(hit) / n_calls if n_calls else None,
        "recall": hits[1] / n_pos if n_pos else None,
        "enhancers_called": hits[1],
        "negatives_called": hits[0] if n_neg else None,
        "negative_call_rate": hits[0] / n_neg if n_neg else None,
        **_base_enrichment(bw, merged_calls, truth),
    }, ranked


def _base_enrichment(bw, calls: dict[str, list[tuple[int, int]]], truth: dict) -> dict:
    """Bases scored, called, in known enhancers, and both; the fold enrichment of enhancer
    bases among called bases over their share of scored bases."""
    scored = called = enhancer = both = 0
    for chrom in bw.chroms():
        bins = bw.intervals(chrom) or ()
        covered = merge((int(start), int(end)) for start, end, _ in bins)
        positives = truth.get((chrom, 1), [])
        chrom_calls = calls.get(chrom, [])
        scored += sum(end - start for start, end in covered)
        called += overlap_bp(chrom_calls, covered)
        enhancer += overlap_bp(positives, covered)
        both += overlap_bp(overlap_intervals(chrom_calls, covered), positives)
    share_called = both / called if called else None
    share_scored = enhancer / scored if scored else None
    return {
        "scored_bases": scored,
        "called_bases": called,
        "called_fraction": called / scored if scored else None,
        "enhancer_bases": enhancer,
        "enhancer_bases_called": both,
        "fold_enrichment": (
            share_called / share_scored if share_called is not None and share_scored else None
        ),
    }


def _run_calling(tracks_dir: Path) -> str | None:
    record = tracks_dir / OUTPUTS["record"]
    if not record.exists():
        return None
    return json.loads(record.read_text()).get("calling", {}).get("described")


def _run_threshold(tracks_dir: Path) -> tuple[float | None, str]:
    """The scan's call threshold in the track's units, and what the track holds
    (``probability`` or ``log10p``; scans from before the choice hold probabilities)."""
    record = tracks_dir / OUTPUTS["record"]
    if not record.exists():
        return None, "probability"
    data = json.loads(record.read_text())
    kind = data.get("parameters", {}).get("track", "probability")
    if kind == "probability":
        return data.get("parameters", {}).get("threshold"), kind
    return data.get("calling", {}).get("log10p_threshold"), kind
