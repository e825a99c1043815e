"""Window tiling: which windows of a chromosome are scored, and which track bin each owns.

Every coordinate is 0-based and half-open. A *stretch* (a whole chromosome, or a piece of one
left by ``--regions`` / ``--exclude``) is tiled with windows of ``window`` bases starting at the
stretch start and every ``stride`` bases after it; if the last of those does not end exactly at
the stretch end, one more window is added that does, so every base of the stretch is covered
(when ``stride <= window``; a larger stride samples the stretch, leaving gaps between windows).
A stretch shorter than one window gets no window.

Each window owns one *bin* of the output track: the bases nearer to its centre than to the
centre of the windows beside it (a split at the midpoint between neighbouring centres), cut to
the window itself. The first bin of a stretch starts at the stretch start and the last ends at
the stretch end, so the bins of a stretch tile it exactly when ``stride <= window``. The value
of the track at a base is therefore the score of the window whose centre is nearest to it.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import numpy as np


def tile_stretch(start: int, end: int, window: int, stride: int) -> np.ndarray:
    """Window starts for the stretch ``[start, end)``.

    Returns an int64 array, ascending: ``start, start + stride, ...`` plus, where needed, a last
    window starting at ``end - window``. Empty when the stretch is shorter than ``window``.
    """
    if window <= 0 or stride <= 0:
        raise ValueError("window and stride must be positive")
    if end - start < window:
        return np.empty(0, dtype=np.int64)
    starts = np.arange(start, end - window + 1, stride, dtype=np.int64)
    if starts[-1] + window < end:
        starts = np.append(starts, end - window)
    return starts


def stretch_bins(
    starts: np.ndarray, window: int, start: int, end: int
) -> tuple[np.ndarray, np.ndarray]:
    """The bin ``[bin_start, bin_end)`` each window of one stretch owns (see module docstring).

    ``starts`` are the window starts of the stretch ``[start, end)`` from :func:`tile_stretch`.
    Returns two int64 arrays of the same length as ``starts``.
    """
    if len(starts) == 0:
        return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.int64)
    # Midpoint between the centres s_k + w/2 and s_{k+1} + w/2, rounded down.
    splits = (starts[:-1] + starts[1:] + window) // 2
    bin_starts = np.concatenate(([start], splits)).astype(np.int64)
    bin_ends = np.concatenate((splits, [end])).astype(np.int64)
    # With stride > window the midpoint lies outside the windows: keep each bin in its window.
    np.maximum(bin_starts, starts, out=bin_starts)
    np.minimum(bin_ends, starts + window, out=bin_ends)
    return bin_starts, bin_ends


@dataclass(frozen=True)
class ChromTiling:
    """The windows scored on one chromosome.

    Attributes:
        chrom: sequence name as in the FASTA.
        length: chromosome length in bases.
        window: window width in bases.
        starts: int64 [n], window starts, ascending; window k is
            ``[starts[k], starts[k] + window)``.
        bin_starts, bin_ends: int64 [n], the track bin each window owns; bins never overlap.
        uncovered: bases of the requested stretches left unscored because the stretch was
            shorter than one window.
    """

    chrom: str
    length: int
    window: int
    starts: np.ndarray
    bin_starts: np.ndarray
    bin_ends: np.ndarray
    uncovered: int = 0

    def __len__(self) -> int:
        return len(self.starts)


def tile_chrom(
    chrom: str,
    length: int,
    stretches: Iterable[tuple[int, int]],
    window: int,
    stride: int,
) -> ChromTiling:
    """Tile each of ``stretches`` (sorted, non-overlapping, inside ``[0, length)``)."""
    all_starts, all_bin_starts, all_bin_ends = [], [], []
    uncovered = 0
    for start, end in stretches:
        starts = tile_stretch(start, end, window, stride)
        if len(starts) == 0:
            uncovered += end - start
            continue
        bin_starts, bin_ends = stretch_bins(starts, window, start, end)
        all_starts.append(starts)
        all_bin_starts.append(bin_starts)
        all_bin_ends.append(bin_ends)

    def cat(parts: list[np.ndarray]) -> np.ndarray:
        return np.concatenate(parts) if parts else np.empty(0, dtype=np.int64)

    return ChromTiling(
        chrom, length, window, cat(all_starts), cat(all_bin_starts), cat(all_bin_ends), uncovered
    )


def chunk_windows(starts: np.ndarray, window: int, chunk_bases: int) -> Iterator[slice]:
    """Group consecutive windows so that each group spans at most ``chunk_bases`` bases.

    Yields slices into ``starts``; each holds at least one window, so a chunk may span
    ``window`` bases when ``chunk_bases < window``. Lets a chromosome be read a piece at a time.
    """
    i = 0
    n = len(starts)
    while i < n:
        limit = starts[i] + max(chunk_bases, window) - window
        j = int(np.searchsorted(starts, limit, side="right"))
        j = max(j, i + 1)
        yield slice(i, j)
        i = j


def count_windows(start: int, end: int, window: int, stride: int) -> int:
    """How many windows :func:`tile_stretch` gives for ``[start, end)``, without building them."""
    span = end - start
    if span < window:
        return 0
    n = (span - window) // stride + 1
    return n + (1 if (span - window) % stride else 0)
