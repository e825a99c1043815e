"""Calls: regions where the score track reaches a threshold, and the rules that choose it.

A call is a maximal run of adjacent track bins (see :mod:`enhscan.tiling`) whose window scores
are all at or above the threshold. Runs break at a bin below the threshold, at a skipped window
(score NaN) and at a gap between bins. Coordinates are 0-based, half-open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Call:
    """One called region.

    Attributes:
        start, end: the region, ``[start, end)``.
        max_score: the highest window score in the region.
        summit: the middle of the highest-scoring window's bin (absolute coordinate, inside the
            region; the window centre whenever the bin is centred on it).
        n_windows: how many windows the region holds.
    """

    start: int
    end: int
    max_score: float
    summit: int
    n_windows: int


def call_regions(
    bin_starts: np.ndarray,
    bin_ends: np.ndarray,
    scores: np.ndarray,
    threshold: float,
) -> list[Call]:
    """Merge windows scoring ``>= threshold`` into calls.

    Args:
        bin_starts, bin_ends: int64 [n], from a :class:`~enhscan.tiling.ChromTiling`.
        scores: float32 [n], window scores; NaN for skipped windows (never called).
        threshold: call threshold in [0, 1].

    Returns:
        Calls sorted by start.
    """
    passing = np.nan_to_num(scores, nan=-np.inf) >= threshold
    if not passing.any():
        return []
    idx = np.flatnonzero(passing)
    # A new run starts where the previous passing window is not the one just before, or where
    # its bin does not touch this one.
    new_run = np.ones(len(idx), dtype=bool)
    new_run[1:] = (np.diff(idx) != 1) | (bin_starts[idx[1:]] != bin_ends[idx[:-1]])
    run_starts = np.flatnonzero(new_run)
    run_ends = np.append(run_starts[1:], len(idx))
    calls = []
    for a, b in zip(run_starts, run_ends, strict=True):
        members = idx[a:b]
        best = members[int(np.argmax(scores[members]))]
        calls.append(
            Call(
                start=int(bin_starts[members[0]]),
                end=int(bin_ends[members[-1]]),
                max_score=float(scores[best]),
                summit=int((bin_starts[best] + bin_ends[best]) // 2),
                n_windows=len(members),
            )
        )
    return calls


#: The false-discovery rate calls are made at when no other rule is given.
DEFAULT_FDR = 0.05


@dataclass(frozen=True)
class CallRule:
    """How a scan decides which windows are called.

    Attributes:
        kind: ``fdr`` (windows whose Benjamini-Hochberg q-value is at most ``value``),
            ``threshold`` (windows whose probability is at least ``value``) or ``top`` (the
            best-scoring ``value`` fraction of the scored windows).
        value: the rate, probability or fraction.
    """

    kind: str
    value: float

    @classmethod
    def from_options(
        cls, threshold: float | None, call_top: float | None, fdr: float | None
    ) -> CallRule:
        """The rule the options ask for: at most one of them; none means FDR 0.05.

        Raises:
            ValueError: more than one given, or a value out of range.
        """
        given = [(k, v) for k, v in (("threshold", threshold), ("top", call_top), ("fdr", fdr))]
        given = [(k, v) for k, v in given if v is not None]
        if len(given) > 1:
            raise ValueError("give one of --fdr, --threshold and --call-top")
        kind, value = given[0] if given else ("fdr", DEFAULT_FDR)
        if kind == "threshold" and not 0 <= value <= 1:
            raise ValueError(f"--threshold must be in [0, 1], got {value}")
        if kind != "threshold" and not 0 < value <= 1:
            option = "--fdr" if kind == "fdr" else "--call-top"
            raise ValueError(f"{option} must be in (0, 1], got {value}")
        return cls(kind, float(value))

    def describe(self) -> str:
        """``FDR 0.05``, ``probability >= 0.8`` or ``top 2% of windows``."""
        if self.kind == "fdr":
            return f"FDR {self.value:g}"
        if self.kind == "threshold":
            return f"probability >= {self.value:g}"
        return f"top {100 * self.value:g}% of windows"
