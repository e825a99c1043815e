"""Interval arithmetic on one chromosome (and per chromosome): merge, subtract, widen.

An interval is a ``(start, end)`` pair of ints, 0-based and half-open. Lists of intervals
returned here are sorted by start and do not overlap.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

Interval = tuple[int, int]


def merge(intervals: Iterable[Interval]) -> list[Interval]:
    """Sort ``intervals`` and merge the ones that overlap or touch.

    >>> merge([(5, 10), (0, 3), (3, 4), (8, 12)])
    [(0, 4), (5, 12)]
    """
    merged: list[Interval] = []
    for start, end in sorted(intervals):
        if merged and start <= merged[-1][1]:
            if end > merged[-1][1]:
                merged[-1] = (merged[-1][0], end)
        else:
            merged.append((start, end))
    return merged


def subtract(intervals: Iterable[Interval], holes: Iterable[Interval]) -> list[Interval]:
    """The parts of ``intervals`` not covered by any of ``holes``.

    >>> subtract([(0, 100)], [(10, 20), (50, 60)])
    [(0, 10), (20, 50), (60, 100)]
    """
    holes = merge(holes)
    result: list[Interval] = []
    h = 0
    for start, end in merge(intervals):
        while h < len(holes) and holes[h][1] <= start:
            h += 1
        cursor = start
        k = h
        while k < len(holes) and holes[k][0] < end:
            if holes[k][0] > cursor:
                result.append((cursor, holes[k][0]))
            cursor = max(cursor, holes[k][1])
            k += 1
        if cursor < end:
            result.append((cursor, end))
    return result


def widen(intervals: Iterable[Interval], width: int, chrom_length: int) -> list[Interval]:
    """Widen every interval shorter than ``width`` to ``width`` bases around its centre.

    The widened interval is shifted, not cut, where it would cross a chromosome end, so it
    always spans ``min(width, chrom_length)`` bases. Intervals already ``width`` or longer are
    kept as they are. The result is merged.

    >>> widen([(100, 200)], 1000, 5000)
    [(0, 1000)]
    >>> widen([(4900, 4950)], 1000, 5000)
    [(4000, 5000)]
    """
    widened = []
    for start, end in intervals:
        if end - start < width:
            start = centred_start((start + end) // 2, width, chrom_length)
            end = min(start + width, chrom_length)
        widened.append((start, end))
    return merge(widened)


def centred_start(centre: int, width: int, chrom_length: int) -> int:
    """Start of the ``width``-base window centred on ``centre`` (``[centre - width // 2,
    centre - width // 2 + width)``), moved inside ``[0, chrom_length)`` where it would cross
    an end; 0 on a sequence shorter than ``width``.

    >>> centred_start(500, 1000, 5000), centred_start(4900, 1000, 5000)
    (0, 4000)
    """
    return min(max(centre - width // 2, 0), max(chrom_length - width, 0))


def overlap_bp(a: list[Interval], b: list[Interval]) -> int:
    """Bases covered by both of two merged, sorted interval lists.

    >>> overlap_bp([(0, 10), (20, 30)], [(5, 25)])
    10
    """
    return sum(end - start for start, end in overlap_intervals(a, b))


def overlap_intervals(a: list[Interval], b: list[Interval]) -> list[Interval]:
    """The intervals covered by both of two merged, sorted interval lists.

    >>> overlap_intervals([(0, 10), (20, 30)], [(5, 25)])
    [(5, 10), (20, 25)]
    """
    out: list[Interval] = []
    i, j = 0, 0
    while i < len(a) and j < len(b):
        start, end = max(a[i][0], b[j][0]), min(a[i][1], b[j][1])
        if start < end:
            out.append((start, end))
        if a[i][1] <= b[j][1]:
            i += 1
        else:
            j += 1
    return out


def overlaps_any(starts: np.ndarray, ends: np.ndarray, intervals: list[Interval]) -> np.ndarray:
    """bool [n]: does ``[starts[i], ends[i])`` overlap one of the merged, sorted ``intervals``
    by at least one base?

    >>> overlaps_any(np.array([0, 10]), np.array([5, 12]), [(4, 6)]).tolist()
    [True, False]
    """
    if not intervals:
        return np.zeros(len(starts), dtype=bool)
    iv = np.asarray(intervals, dtype=np.int64)
    # The intervals are disjoint and sorted: the last one starting before `end` is the only
    # candidate.
    k = np.searchsorted(iv[:, 0], ends, side="left") - 1
    return (k >= 0) & (iv[np.clip(k, 0, None), 1] > starts)


def merge_by_chrom(spans: Iterable[tuple[str, int, int]]) -> dict[str, list[Interval]]:
    """``(chrom, start, end)`` spans as merged, sorted intervals per chromosome.

    >>> merge_by_chrom([("b", 5, 9), ("a", 0, 2), ("b", 1, 6)])
    {'b': [(1, 9)], 'a': [(0, 2)]}
    """
    raw: dict[str, list[Interval]] = {}
    for chrom, start, end in spans:
        raw.setdefault(chrom, []).append((start, end))
    return {chrom: merge(intervals) for chrom, intervals in raw.items()}


def touches(intervals: list[Interval], start: int, end: int) -> bool:
    """Does ``[start, end)`` overlap one of the merged, sorted ``intervals``?"""
    return bool(overlaps_any(np.array([start]), np.array([end]), intervals)[0])
