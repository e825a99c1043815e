"""Calls: regions where the score track reaches a threshold.

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
