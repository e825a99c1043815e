"""Training data preparation: windows around peaks, GC-matched background, deduplication, splits.

Coordinates are 0-based and half-open everywhere: a window ``start`` on ``chrom`` covers bases
``[start, start + window)``. Sequences are upper-case strings; "non-ACGT" means any base other
than A, C, G or T (N and the other IUPAC codes).
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.intervals import centred_start
from enhscan.io.fasta import Genome
from enhscan.io.peaks import Peak
from enhscan.naming import match_chrom
from enhscan.sequence import canonical, count_non_acgt, gc_content, reverse_complement
from enhscan.training.background import sample_background
from enhscan.training.examples import LABEL_NAMES, Example

log = logging.getLogger(__name__)

__all__ = [
    "Example",
    "Splits",
    "canonical",
    "check_two_classes",
    "count_non_acgt",
    "deduplicate",
    "extract_windows",
    "format_summary",
    "gc_content",
    "reverse_complement",
    "sample_background",
    "split_by_chroms",
    "split_stratified",
    "summarize",
]


@dataclass
class Splits:
    """Train, validation and test examples, and how they were split.

    Attributes:
        train, val, test: the examples of each split, in input order.
        method: ``"stratified"`` or ``"chromosomes"``.
        detail: the split's parameters (fractions, seed, held-out chromosomes), JSON-ready.
    """

    train: list[Example]
    val: list[Example]
    test: list[Example]
    method: str
    detail: dict = field(default_factory=dict)

    def items(self) -> list[tuple[str, list[Example]]]:
        """``[("train", ...), ("val", ...), ("test", ...)]``."""
        return [("train", self.train), ("val", self.val), ("test", self.test)]


# --- positives: windows around peak summits ---------------------------------------------------


def extract_windows(
    genome: Genome,
    peaks: Iterable[Peak],
    window: int,
    label: int = 1,
    at_edge: str = "shift",
    max_n: int = 0,
) -> tuple[list[Example], dict]:
    """One window of ``window`` bases centred on each peak's summit.

    The window is ``[summit - window // 2, summit - window // 2 + window)``. Where it would cross
    a chromosome end, ``at_edge="shift"`` moves it inside the chromosome (the summit stays in
    it) and ``"drop"`` discards it; on a chromosome shorter than ``window`` it is always
    dropped. Windows with more than ``max_n`` non-ACGT bases are dropped.

    Returns:
        The examples in peak order (``source`` is the peak's ``where``), and the counts
        ``{"shifted": n, "dropped_edge": n, "dropped_n": n}``.
    """
    if window <= 0:
        raise ValueError(f"window must be positive, got {window}")
    if at_edge not in ("shift", "drop"):
        raise ValueError(f"at_edge must be 'shift' or 'drop', got {at_edge!r}")
    examples: list[Example] = []
    counts = {"shifted": 0, "dropped_edge": 0, "dropped_n": 0}
    for peak in peaks:
        length = genome.lengths[peak.chrom]
        if length < window:
            counts["dropped_edge"] += 1
            continue
        start = centred_start(peak.summit, window, length)
        if start != peak.summit - window // 2:  # the window would have crossed an end
            if at_edge == "drop":
                counts["dropped_edge"] += 1
                continue
            counts["shifted"] += 1
        seq = genome.fetch(peak.chrom, start, start + window)
        if count_non_acgt(seq) > max_n:
            counts["dropped_n"] += 1
            continue
        examples.append(Example(seq, label, peak.chrom, start, peak.where))
    return examples, counts


# --- deduplication ------------------------------------------------------------------------------


def deduplicate(examples: Sequence[Example]) -> tuple[list[Example], dict]:
    """Collapse exact and reverse-complement duplicates; drop groups with both labels.

    Examples are grouped by :func:`canonical` sequence. A group with one label keeps its first
    example (input order is kept); a group holding both labels is dropped entirely.

    Returns:
        The kept examples and ``{"exact_duplicates": n, "reverse_complement_duplicates": n,
        "conflicting_groups": n, "conflicting_examples": n}`` (duplicates counted among the
        removed members of single-label groups).
    """
    groups: dict[str, list[int]] = {}
    for i, example in enumerate(examples):
        groups.setdefault(canonical(example.seq), []).append(i)
    report = {
        "exact_duplicates": 0,
        "reverse_complement_duplicates": 0,
        "conflicting_groups": 0,
        "conflicting_examples": 0,
    }
    keep = []
    for members in groups.values():
        if len({examples[i].label for i in members}) > 1:
            report["conflicting_groups"] += 1
            report["conflicting_examples"] += len(members)
            continue
        first = examples[members[0]].seq
        for i in members[1:]:
            kind = "exact" if examples[i].seq == first else "reverse_complement"
            report[f"{kind}_duplicates"] += 1
        keep.append(members[0])
    return [examples[i] for i in sorted(keep)], report


# --- labels and splits --------------------------------------------------------------------------


def check_two_classes(examples: Sequence[Example], dedup: dict | None = None) -> None:
    """Raise EnhscanError unless ``examples`` hold both enhancers (1) and background (0);
    ``dedup``, :func:`deduplicate`'s report, names labels given both ways as the cause."""
    labels = {example.label for example in examples}
    conflicts = (dedup or {}).get("conflicting_examples", 0)
    if conflicts and labels != {0, 1}:
        raise EnhscanError(
            f"{conflicts} examples are labelled both enhancer and background (the same window "
            "among the positives and the negatives) and are left out, leaving "
            f"{'no examples' if not labels else 'one class'}; give negatives that are not "
            "the positives"
        )
    if not labels:
        raise EnhscanError("no training examples; give peaks, sequences or a labelled table")
    if labels == {1}:
        raise EnhscanError(
            "only enhancer examples; give negatives with --negatives or let enhscan sample "
            "background"
        )
    if labels == {0}:
        raise EnhscanError("only background examples; give enhancer peaks or sequences too")


def split_stratified(
    examples: Sequence[Example],
    val_fraction: float = 0.1,
    test_fraction: float = 0.1,
    seed: int = 0,
) -> Splits:
    """A class-stratified random split into train, validation and test.

    Per class, ``round(fraction * count)`` examples (at least one) go to each of val and test;
    a fraction of 0 leaves that split empty. Deterministic for a seed; each split keeps input
    order.

    Raises:
        EnhscanError: bad fractions, or a class with too few examples to reach every split.
    """
    _check_fractions(val_fraction, test_fraction)
    check_two_classes(examples)
    rng = np.random.default_rng(seed)
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    for label in (1, 0):
        members = [i for i, e in enumerate(examples) if e.label == label]
        needed = 1 + (val_fraction > 0) + (test_fraction > 0)
        if len(members) < needed:
            raise EnhscanError(
                f"too few examples for a stratified split: need at least {needed} "
                f"{LABEL_NAMES[label]} examples, got {len(members)}; add examples"
            )
        shuffled = rng.permutation(members).tolist()
        n_test = _share(len(members), test_fraction, hi=len(members) - 1 - (val_fraction > 0))
        n_val = _share(len(members), val_fraction, hi=len(members) - 1 - n_test)
        parts["test"] += shuffled[:n_test]
        parts["val"] += shuffled[n_test : n_test + n_val]
        parts["train"] += shuffled[n_test + n_val :]
    detail = {"val_fraction": val_fraction, "test_fraction": test_fraction, "seed": seed}
    train, val, test = (_in_order(examples, parts[k]) for k in ("train", "val", "test"))
    return Splits(train, val, test, "stratified", detail)


def split_by_chroms(
    examples: Sequence[Example],
    test_chroms: list[str],
    val_chroms: list[str] | None = None,
    val_fraction: float = 0.1,
    seed: int = 0,
) -> Splits:
    """Hold out whole chromosomes: test = examples on ``test_chroms``.

    Validation is the examples on ``val_chroms`` if given, else a class-stratified
    ``val_fraction`` of the rest (at least one per class; 0 leaves it empty); train is what
    remains. Names are reconciled with the chromosomes the examples are on (``chr20`` finds
    ``20``). Each split keeps input order.

    Raises:
        EnhscanError: examples without a chromosome, a requested chromosome with no examples, a
            chromosome in both lists, or a split left with one class only.
    """
    loose = [e for e in examples if e.chrom is None]
    if loose:
        raise EnhscanError(
            f"--holdout-chroms needs examples from a genome, but {len(loose)} examples are "
            f"ready-made sequences (e.g. {loose[0].source}); drop --holdout-chroms to split at "
            "random"
        )
    check_two_classes(examples)
    _check_fractions(val_fraction, 0.0)
    present = list(dict.fromkeys(e.chrom for e in examples if e.chrom is not None))
    test_set = _resolve_chroms(test_chroms, present)
    val_set = _resolve_chroms(val_chroms, present) if val_chroms else []
    both = [c for c in val_set if c in test_set]
    if both:
        raise EnhscanError(
            f"chromosome {', '.join(both)} is held out for both test and validation; give each "
            "chromosome to one split"
        )
    parts: dict[str, list[int]] = {"train": [], "val": [], "test": []}
    rest = []
    for i, example in enumerate(examples):
        if example.chrom in test_set:
            parts["test"].append(i)
        elif example.chrom in val_set:
            parts["val"].append(i)
        else:
            rest.append(i)
    if val_chroms:
        parts["train"] = rest
    else:
        rng = np.random.default_rng(seed)
        for label in (1, 0):
            members = [i for i in rest if examples[i].label == label]
            shuffled = rng.permutation(members).tolist() if members else []
            n_val = _share(len(members), val_fraction, hi=len(members) - 1)
            parts["val"] += shuffled[:n_val]
            parts["train"] += shuffled[n_val:]
    train, val, test = (_in_order(examples, parts[k]) for k in ("train", "val", "test"))
    splits = Splits(
        train,
        val,
        test,
        "chromosomes",
        {
            "test_chroms": test_set,
            "val_chroms": val_set or None,
            "val_fraction": None if val_chroms else val_fraction,
            "seed": seed,
        },
    )
    for name, members in splits.items():
        if name == "val" and not members and not val_chroms and val_fraction == 0:
            continue
        _check_split_classes(name, members)
    return splits


def _resolve_chroms(wanted: list[str], present: list[str]) -> list[str]:
    """The names in ``present`` that ``wanted`` refers to; error for any with no examples."""
    resolved = []
    for name in wanted:
        match = match_chrom(name, present)
        if match is None:
            shown = ", ".join(present[:10]) + (" ..." if len(present) > 10 else "")
            raise EnhscanError(
                f"held-out chromosome {name} holds no examples (examples are on: {shown}); "
                "hold out chromosomes that have examples"
            )
        if match not in resolved:
            resolved.append(match)
    return resolved


def _check_split_classes(name: str, members: list[Example]) -> None:
    labels = {e.label for e in members}
    if len(labels) < 2:
        has = f"only {LABEL_NAMES[labels.pop()]} examples" if labels else "no examples"
        raise EnhscanError(
            f"the chromosome split leaves {name} with {has}; hold out other chromosomes or "
            "split at random"
        )


def _check_fractions(val_fraction: float, test_fraction: float) -> None:
    ok = 0 <= val_fraction < 1 and 0 <= test_fraction < 1 and val_fraction + test_fraction < 1
    if not ok:
        raise EnhscanError(
            f"validation and test fractions must each be in [0, 1) and add up to less than 1, "
            f"got {val_fraction} and {test_fraction}"
        )


def _share(count: int, fraction: float, hi: int) -> int:
    """``fraction`` of ``count`` rounded half up, at least 1 if ``fraction > 0``, at most ``hi``."""
    if fraction <= 0:
        return 0
    return max(1, min(math.floor(fraction * count + 0.5), hi))


def _in_order(examples: Sequence[Example], indexes: list[int]) -> list[Example]:
    return [examples[i] for i in sorted(indexes)]


# --- summary ------------------------------------------------------------------------------------


def summarize(splits: Splits, dedup: dict, extraction: dict | None = None) -> dict:
    """A JSON-ready summary of prepared data.

    Returns:
        ``{"split": {"method", "detail"}, "splits": {name: {"enhancer": {"count", "mean_gc"},
        "background": {...}, "total"}}, "totals": {"examples", "enhancer", "background"},
        "duplicates": dedup, "extraction": extraction or {}}``; ``mean_gc`` is None for no
        examples.
    """
    per_split = {}
    totals = {"examples": 0, "enhancer": 0, "background": 0}
    for name, members in splits.items():
        entry: dict = {}
        for label in (1, 0):
            gcs = [gc_content(e.seq) for e in members if e.label == label]
            entry[LABEL_NAMES[label]] = {
                "count": len(gcs),
                "mean_gc": round(float(np.mean(gcs)), 4) if gcs else None,
            }
            totals[LABEL_NAMES[label]] += len(gcs)
        entry["total"] = len(members)
        totals["examples"] += len(members)
        per_split[name] = entry
    return {
        "split": {"method": splits.method, "detail": dict(splits.detail)},
        "splits": per_split,
        "totals": totals,
        "duplicates": dict(dedup),
        "extraction": dict(extraction or {}),
    }


def format_summary(summary: dict) -> str:
    """A small table of :func:`summarize` output for the terminal (no trailing newline)."""
    rows = [("split", "enhancer", "background", "total", "GC enh", "GC bg")]
    for name, entry in summary["splits"].items():
        enh, bg = entry["enhancer"], entry["background"]
        rows.append(
            (
                name,
                str(enh["count"]),
                str(bg["count"]),
                str(entry["total"]),
                _gc_text(enh["mean_gc"]),
                _gc_text(bg["mean_gc"]),
            )
        )
    totals = summary["totals"]
    rows.append(
        ("all", str(totals["enhancer"]), str(totals["background"]), str(totals["examples"]), "", "")
    )
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(
            [row[0].ljust(widths[0])]
            + [c.rjust(w) for c, w in zip(row[1:], widths[1:], strict=True)]
        )
        for row in rows
    ]
    lines = [line.rstrip() for line in lines]
    lines.append(f"split: {_split_text(summary['split'])}")
    dup = summary["duplicates"]
    if dup:
        lines.append(
            f"duplicates removed: {dup.get('exact_duplicates', 0)} exact, "
            f"{dup.get('reverse_complement_duplicates', 0)} reverse-complement; "
            f"conflicting labels: {dup.get('conflicting_groups', 0)} groups "
            f"({dup.get('conflicting_examples', 0)} examples) dropped"
        )
    lines += _extraction_lines(summary["extraction"])
    return "\n".join(lines)


def _extraction_lines(extraction: dict) -> list[str]:
    """Lines for extraction counts: flat (one :func:`extract_windows` result) or nested by
    kind (``{"positives": counts, "negatives": counts, ...}``); other entries as they are."""
    if "shifted" in extraction:
        return [_window_counts("peak windows", extraction)]
    lines = []
    for key, value in extraction.items():
        if isinstance(value, dict):
            lines.append(_window_counts(f"{key} windows", value))
        else:
            lines.append(f"{key.replace('_', ' ')}: {value}")
    return lines


def _window_counts(what: str, counts: dict) -> str:
    return (
        f"{what}: {counts.get('shifted', 0)} shifted inside a chromosome end, "
        f"{counts.get('dropped_edge', 0)} dropped at an end, "
        f"{counts.get('dropped_n', 0)} dropped for N"
    )


def _gc_text(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def _split_text(split: dict) -> str:
    detail = split["detail"]
    if split["method"] == "chromosomes":
        val = (
            ", ".join(detail["val_chroms"])
            if detail.get("val_chroms")
            else f"{detail.get('val_fraction', 0):.0%} of the rest at random"
        )
        return f"by chromosome (test: {', '.join(detail['test_chroms'])}; val: {val})"
    if split["method"] == "stratified":
        return (
            f"stratified random (val {detail.get('val_fraction', 0):.0%}, "
            f"test {detail.get('test_fraction', 0):.0%}, seed {detail.get('seed')})"
        )
    return str(split["method"])
