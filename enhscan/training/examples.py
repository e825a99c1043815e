"""Labelled training examples. Coordinates are 0-based and half-open."""

from __future__ import annotations

from dataclasses import dataclass

LABEL_NAMES = {1: "enhancer", 0: "background"}


@dataclass(frozen=True)
class Example:
    """One labelled training sequence.

    Attributes:
        seq: upper-case DNA of the window.
        label: 1 = enhancer, 0 = background.
        chrom: the genome's chromosome name (None for ready-made sequences).
        start: window start on ``chrom``, 0-based (None for ready-made sequences).
        source: where it came from, e.g. ``"peaks.bed line 12"``, ``"background"``,
            ``"seqs.csv line 5"``.
    """

    seq: str
    label: int
    chrom: str | None = None
    start: int | None = None
    source: str = ""
