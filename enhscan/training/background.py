"""GC-matched background windows: negatives drawn from the genome itself.

Coordinates are 0-based and half-open: a window ``start`` on ``chrom`` covers
``[start, start + window)``.
"""

from __future__ import annotations

import bisect
import itertools
import logging
import math
from collections.abc import Sequence

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.intervals import Interval, merge
from enhscan.io.fasta import Genome
from enhscan.naming import match_chrom
from enhscan.sequence import IS_ACGT, IS_GC
from enhscan.training.examples import Example

log = logging.getLogger(__name__)


# Background is read in chunks of about this many bases (each chromosome is cut into equal
# parts); every candidate window lies inside one chunk, so windows of different chunks never
# overlap.
_CHUNK = 250_000
# Picks are spread over at least this many chunks (or all, if fewer) where the bins allow.
_SPREAD_CHUNKS = 400
# Phase 1 reads at most this many bases (or the whole selection, if smaller) before falling
# back to neighbouring GC bins.
_READ_BUDGET = 200_000_000
# Up to this many windows per bin and chunk are found by random tries; more by a sweep.
_FEW = 16


class BackgroundShortfall(EnhscanError):
    """Fewer background windows fit where they were asked for than were asked for."""


def sample_background(
    genome: Genome,
    n: int,
    window: int,
    gc_targets: Sequence[float],
    avoid: dict[str, list[tuple[int, int]]],
    exclude: dict[str, list[tuple[int, int]]] | None = None,
    chroms: list[str] | None = None,
    max_n: int = 0,
    seed: int = 0,
    gc_bins: int = 20,
    spread_chunks: int = _SPREAD_CHUNKS,
) -> list[Example]:
    """``n`` random background windows whose GC distribution matches ``gc_targets``.

    The targets (the positives' GC fractions, as :func:`gc_content`) are binned into ``gc_bins``
    equal-width bins on [0, 1]; each bin gets a quota of windows proportional to its share of
    the targets. Chunks of the chosen chromosomes are read in a random order; in each, the GC
    and non-ACGT counts of every possible window start come from prefix sums, and random
    windows of bins still short are taken, a few per chunk at first so they spread over the
    genome. Bins still short after a bounded amount of reading are filled from the nearest
    bins that have windows, with a warning.

    Args:
        genome: the genome to sample from.
        n: how many windows.
        window: window length in bases.
        gc_targets: GC fractions to match, each in [0, 1].
        avoid: genome chromosome name -> intervals (0-based half-open) no window may overlap,
            e.g. the positives' windows. Names are reconciled with the genome's.
        exclude: more intervals to stay clear of (a blacklist), same form.
        chroms: chromosomes to sample from (default: all at least ``window`` long).
        max_n: most non-ACGT bases a window may have.
        seed: random seed; the same inputs and seed give the same windows.
        gc_bins: number of GC bins.
        spread_chunks: spread the picks over at least this many chunks where the bins allow.

    Returns:
        ``n`` examples with label 0 and source ``"background"``, none overlapping another or
        any ``avoid``/``exclude`` interval, sorted by chromosome (genome order) and start.

    Raises:
        EnhscanError: unknown chromosome in ``chroms``.
        BackgroundShortfall: fewer than ``n`` such windows exist.
    """
    if window <= 0 or gc_bins <= 0:
        raise ValueError("window and gc_bins must be positive")
    if n <= 0:
        return []
    targets = np.asarray(gc_targets, dtype=np.float64)
    if targets.size == 0:
        raise ValueError("gc_targets is empty: there is no GC distribution to match")
    if np.any((targets < 0) | (targets > 1)):
        raise ValueError("gc_targets must lie in [0, 1]")
    names = _background_chroms(genome, chroms, window)
    blocked = _blocked_intervals(genome, [avoid, exclude or {}])
    chunks = _chunks(genome, names, window)
    if not chunks:
        raise EnhscanError(
            f"no chromosome of {genome.path} is at least {window} bp long; background windows "
            "cannot be sampled"
        )
    if sum(end - start for _, start, end in chunks) // window < n:
        raise BackgroundShortfall(
            f"{n} background windows of {window} bp do not fit in the chosen chromosomes of "
            f"{genome.path}; ask for fewer negatives or a shorter window"
        )
    rng = np.random.default_rng(seed)
    quotas = _quotas(targets, n, gc_bins)
    sampler = _BackgroundSampler(
        genome, chunks, blocked, window, max_n, gc_bins, quotas, rng, spread_chunks
    )
    sampler.run()
    order = {name: i for i, name in enumerate(genome.lengths)}
    picks = sorted(sampler.picked(), key=lambda p: (order[p[0]], p[1]))
    return [Example(seq, 0, chrom, start, "background") for chrom, start, seq in picks]


def allot_background(
    genome: Genome,
    gc_by_chrom: dict[str, list[float]],
    n: int,
    window: int,
    avoid: dict[str, list[tuple[int, int]]],
    exclude: dict[str, list[tuple[int, int]]] | None = None,
    groups: dict[str, str] | None = None,
    max_n: int = 0,
    seed: int = 0,
) -> list[Example]:
    """``n`` GC-matched background windows shared among chromosomes as their positives are.

    Each chromosome of ``gc_by_chrom`` gets a share of ``n`` in proportion to its positives
    (largest remainder), matched to their GC, so a held-out chromosome keeps its own
    background. A chromosome without room for its share hands it to the other chromosomes of
    its group (``groups``: chromosome -> a name such as its train/validation/test split; a
    chromosome it does not name is in group ""), so a split's background stays in the split.
    Chromosomes go in genome order, each with its own seed, so the windows do not depend on
    the order of the positives.

    Args:
        genome: the genome to sample from.
        gc_by_chrom: genome chromosome name -> the GC fractions of its positive windows.
        n: how many windows in all.
        window, avoid, exclude, max_n: as :func:`sample_background`.
        groups: chromosome -> group name (see above).
        seed: random seed.

    Returns:
        ``n`` examples with label 0 and source ``"background"``, none overlapping another or
        any ``avoid``/``exclude`` interval.

    Raises:
        BackgroundShortfall: a group has no room for what its chromosomes handed on.
    """
    groups = groups or {}
    names = list(genome.lengths)
    order = {c: i for i, c in enumerate(names)}
    chroms = [c for c in names if gc_by_chrom.get(c)]
    shares = apportion(np.array([len(gc_by_chrom[c]) for c in chroms]), n)
    # Blocked once, on the genome's names; each draw sees only its own chromosomes' share.
    blocked = _blocked_intervals(genome, [avoid, exclude or {}])
    total_length = sum(genome.lengths.values())

    def draw(count: int, gc: list[float], where: list[str], salt: int) -> list[Example]:
        # Picks spread over a share of the chunks in proportion to where they are drawn, as
        # one genome-wide draw would spread them.
        length = sum(genome.lengths[c] for c in where)
        spread = max(1, round(_SPREAD_CHUNKS * length / total_length))
        near = {c: blocked[c] for c in where if c in blocked}
        picked = sample_background(
            genome, count, window, gc, near, None, where, max_n, seed + salt,
            spread_chunks=spread,
        )  # fmt: skip
        for e in picked:
            blocked.setdefault(e.chrom, []).append((e.start, e.start + window))
        return picked

    sampled: list[Example] = []
    handed_on: dict[str, tuple[int, list[float]]] = {}
    for chrom, count in zip(chroms, shares.tolist(), strict=True):
        if count == 0:
            continue
        try:
            sampled += draw(count, gc_by_chrom[chrom], [chrom], order[chrom])
        except BackgroundShortfall:
            group = groups.get(chrom, "")
            log.warning(
                "background: no room for %d windows on %s; drawing them from the other "
                "chromosomes of its split",
                count,
                chrom,
            )
            before, gc = handed_on.get(group, (0, []))
            handed_on[group] = (before + count, gc + gc_by_chrom[chrom])
    for i, (group, (count, gc)) in enumerate(sorted(handed_on.items())):
        where = [c for c in names if groups.get(c, "") == group and genome.lengths[c] >= window]
        sampled += draw(count, gc, where, len(names) + i)
    return sampled


def gc_bin(gc: np.ndarray, gc_bins: int) -> np.ndarray:
    """The bin (int64, ``0 .. gc_bins - 1``) of each GC fraction; 1.0 goes in the last bin."""
    return np.minimum((gc * gc_bins).astype(np.int64), gc_bins - 1)


def apportion(counts: np.ndarray, n: int) -> np.ndarray:
    """``n`` split in proportion to ``counts`` (int64, same shape, sums to ``n``) by largest
    remainder; ties go to the earlier entry."""
    counts = np.asarray(counts, dtype=np.float64)
    exact = counts * n / counts.sum()
    shares = np.floor(exact).astype(np.int64)
    short = n - int(shares.sum())
    shares[np.argsort(-(exact - shares), kind="stable")[:short]] += 1
    return shares


def _quotas(targets: np.ndarray, n: int, gc_bins: int) -> np.ndarray:
    """Windows wanted per GC bin (int64, sums to ``n``)."""
    return apportion(np.bincount(gc_bin(targets, gc_bins), minlength=gc_bins), n)


def _background_chroms(genome: Genome, chroms: list[str] | None, window: int) -> list[str]:
    """The genome's names of the chromosomes to sample from, at least ``window`` long."""
    if chroms is None:
        return [name for name, length in genome.lengths.items() if length >= window]
    names = []
    for wanted in chroms:
        name = match_chrom(wanted, genome.lengths)
        if name is None:
            raise EnhscanError(
                f"chromosome {wanted} is not in {genome.path}; pick background chromosomes "
                "from the genome's sequences"
            )
        if genome.lengths[name] >= window and name not in names:
            names.append(name)
    return names


def _blocked_intervals(
    genome: Genome, sources: list[dict[str, list[tuple[int, int]]]]
) -> dict[str, list[Interval]]:
    """Merged intervals per genome chromosome; names the genome lacks are ignored."""
    raw: dict[str, list[Interval]] = {}
    for source in sources:
        for chrom, intervals in source.items():
            name = match_chrom(chrom, genome.lengths)
            if name is not None:
                raw.setdefault(name, []).extend(intervals)
    return {chrom: merge(intervals) for chrom, intervals in raw.items()}


def _chunks(genome: Genome, names: list[str], window: int) -> list[tuple[str, int, int]]:
    """Each chromosome cut into about ``_CHUNK``-long equal parts, as (chrom, start, end)."""
    size = max(_CHUNK, 4 * window)
    chunks = []
    for name in names:
        length = genome.lengths[name]
        parts = max(1, length // size)
        bounds = [i * length // parts for i in range(parts + 1)]
        chunks += [(name, a, b) for a, b in itertools.pairwise(bounds) if b - a >= window]
    return chunks


class _BackgroundSampler:
    """The state of one :func:`sample_background` call: what each bin still needs, and the
    windows taken so far per chunk."""

    def __init__(
        self,
        genome: Genome,
        chunks: list[tuple[str, int, int]],
        blocked: dict[str, list[Interval]],
        window: int,
        max_n: int,
        gc_bins: int,
        quotas: np.ndarray,
        rng: np.random.Generator,
        spread_chunks: int = _SPREAD_CHUNKS,
    ):
        self.genome = genome
        self.chunks = chunks
        self.blocked = blocked
        self.window = window
        self.max_n = max_n
        self.gc_bins = gc_bins
        self.quotas = quotas
        self.need = quotas.copy()
        self.rng = rng
        self.spread_chunks = spread_chunks
        self.order = rng.permutation(len(chunks)).tolist()
        # chunk index -> [(start relative to the chunk, sequence)]
        self.taken: dict[int, list[tuple[int, str]]] = {}

    def run(self) -> None:
        """Fill every bin from its own windows; then from the nearest bins, with a warning."""
        self._fill_spread()
        # Bins still short: first their own windows (past the read budget, or left by the
        # caps); then bins up to 1, then 2 bins away, then any bin.
        self._fill_pass(0)
        unmatched = self.need.copy()
        for max_distance in (1, 2, self.gc_bins):
            self._fill_pass(max_distance)
        n = int(self.quotas.sum())
        if self.need.any():
            got = n - int(self.need.sum())
            raise BackgroundShortfall(
                f"found only {got} of {n} background windows ({self.window} bp, at most "
                f"{self.max_n} non-ACGT bases) in {self.genome.path} outside the positives and "
                "excluded regions; ask for fewer negatives, a shorter window or more chromosomes"
            )
        if unmatched.any():
            bins = np.flatnonzero(unmatched).tolist()
            log.warning(
                "background: %d of %d windows could not be GC-matched (GC %s: too few windows); "
                "took them from the nearest GC bins",
                int(unmatched.sum()),
                n,
                ", ".join(f"{b / self.gc_bins:.2f}-{(b + 1) / self.gc_bins:.2f}" for b in bins),
            )

    def _fill_spread(self) -> None:
        """Phase 1: read chunks up to the budget, each giving a share of what bins still need."""
        n = int(self.quotas.sum())
        mean_chunk = sum(b - a for _, a, b in self.chunks) / len(self.chunks)
        budget = max(1, min(len(self.chunks), math.ceil(_READ_BUDGET / mean_chunk)))
        per_chunk = max(1, int(mean_chunk) // (5 * self.window))
        spread = min(budget, max(math.ceil(n / per_chunk), min(n, self.spread_chunks)))
        seen = np.zeros(self.gc_bins, dtype=np.float64)
        for t, index in enumerate(self.order[:budget]):
            if not self.need.any():
                return
            cands = self._read(index)
            if cands is None:
                continue
            # A share of what each bin still needs, so that picks spread over `spread` chunks;
            # but all a chunk offers for bins whose windows are too rare for the chunks left
            # to supply (estimated from the chunks read so far).
            seen += cands.capacity()
            supply = seen / (t + 1) * (budget - t - 1)
            share = -(-self.need // max(1, spread - t))
            caps = np.where(supply < 2 * self.need, self.need, share)
            self._keep(index, cands, self._pick_own_bins(cands, caps))

    def _fill_pass(self, max_distance: int) -> None:
        """Read every chunk once (until nothing is needed), filling short bins from bins up to
        ``max_distance`` away."""
        for index in self.order:
            if not self.need.any():
                return
            cands = self._read(index)
            if cands is not None:
                self._keep(index, cands, self._pick_near(cands, max_distance))

    def picked(self) -> list[tuple[str, int, str]]:
        """The windows taken, as (chrom, start, sequence)."""
        return [
            (self.chunks[index][0], self.chunks[index][1] + offset, seq)
            for index, windows in self.taken.items()
            for offset, seq in windows
        ]

    def _read(self, index: int) -> _Candidates | None:
        """The candidate windows of chunk ``index`` (None if it has none)."""
        chrom, start, end = self.chunks[index]
        seq = self.genome.fetch(chrom, start, end)
        window = self.window
        codes = np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)
        acgt = _window_sums(IS_ACGT.take(codes), window)
        valid = (window - acgt <= self.max_n) & (acgt > 0)
        mask = self._blocked_mask(chrom, start, len(seq))
        if mask is not None:
            valid &= _window_sums(mask, window) == 0
        starts = np.flatnonzero(valid)
        if starts.size == 0:
            return None
        gc_prefix = _prefix_sums(IS_GC.take(codes))
        gc = gc_prefix[starts + window] - gc_prefix[starts]
        bins = gc_bin(gc / acgt[starts], self.gc_bins)
        occupied = np.zeros(len(seq), dtype=bool)
        for offset, _ in self.taken.get(index, []):
            occupied[offset : offset + window] = True
        return _Candidates(seq, starts, bins, occupied, window, self.gc_bins)

    def _keep(self, index: int, cands: _Candidates, offsets: list[int]) -> None:
        windows = self.taken.setdefault(index, [])
        windows += [(offset, cands.seq[offset : offset + self.window]) for offset in offsets]

    def _blocked_mask(self, chrom: str, chunk_start: int, length: int) -> np.ndarray | None:
        """Bool per base of the chunk: inside an avoid/exclude interval (None: no such base)."""
        intervals = self.blocked.get(chrom, [])
        chunk_end = chunk_start + length
        i = max(bisect.bisect_right(intervals, (chunk_start,)) - 1, 0)
        mask = None
        while i < len(intervals) and intervals[i][0] < chunk_end:
            a, b = intervals[i]
            if b > chunk_start:
                if mask is None:
                    mask = np.zeros(length, dtype=bool)
                mask[max(a - chunk_start, 0) : min(b - chunk_start, length)] = True
            i += 1
        return mask

    def _pick_own_bins(self, cands: _Candidates, caps: np.ndarray) -> list[int]:
        """Up to ``caps[b]`` windows of each bin ``b``, rarest bins first."""
        offsets = []
        for b in np.argsort(cands.counts, kind="stable").tolist():
            if caps[b] > 0 and cands.counts[b] > 0:
                got = cands.take(b, int(caps[b]), self.rng)
                self.need[b] -= len(got)
                offsets += got
        return offsets

    def _pick_near(self, cands: _Candidates, max_distance: int) -> list[int]:
        """For each bin still short, windows of the nearest bins up to ``max_distance`` away."""
        offsets = []
        for b in np.flatnonzero(self.need).tolist():
            for distance in range(max_distance + 1):
                for other in sorted({b - distance, b + distance}):
                    if self.need[b] > 0 and 0 <= other < self.gc_bins:
                        got = cands.take(other, int(self.need[b]), self.rng)
                        self.need[b] -= len(got)
                        offsets += got
        return offsets


class _Candidates:
    """The candidate windows of one chunk, grouped by GC bin, and which bases are taken.

    Attributes:
        seq: the chunk's sequence.
        counts: candidates per bin (int64, ``gc_bins``).
        occupied: bool per base of the chunk, True inside a window taken already.
    """

    def __init__(
        self,
        seq: str,
        starts: np.ndarray,
        bins: np.ndarray,
        occupied: np.ndarray,
        window: int,
        gc_bins: int,
    ):
        self.seq = seq
        self.occupied = occupied
        self.window = window
        self.counts = np.bincount(bins, minlength=gc_bins)
        # Starts grouped by bin, ascending within a bin (a stable radix sort on small ints).
        self._by_bin = starts[np.argsort(bins.astype(np.uint16), kind="stable")]
        self._bounds = np.concatenate(([0], np.cumsum(self.counts)))

    def in_bin(self, b: int) -> np.ndarray:
        """Starts (int64, ascending) of the candidates in GC bin ``b``."""
        return self._by_bin[self._bounds[b] : self._bounds[b + 1]]

    def capacity(self) -> np.ndarray:
        """Per bin, about how many non-overlapping windows its candidates hold (float64)."""
        capacity = np.zeros(len(self.counts))
        for b in np.flatnonzero(self.counts).tolist():
            starts = self.in_bin(b)
            capacity[b] = 1 + np.count_nonzero(np.diff(starts) >= self.window)
        return capacity

    def take(self, b: int, want: int, rng: np.random.Generator) -> list[int]:
        """Up to ``want`` random non-overlapping free windows of bin ``b``; marks them taken."""
        starts = self.in_bin(b)
        if starts.size == 0 or want <= 0:
            return []
        if want <= _FEW:
            return self._random_tries(starts, want, rng)
        free = self._sweep(starts)
        got = sorted(rng.choice(free, size=min(want, len(free)), replace=False).tolist())
        for start in got:
            self.occupied[start : start + self.window] = True
        return got

    def _random_tries(self, starts: np.ndarray, want: int, rng: np.random.Generator) -> list[int]:
        """Up to ``want`` free windows from a bounded number of random tries; marks them taken.

        Candidates cluster (neighbouring starts share most bases), so some tries collide; what
        this chunk does not give, later chunks may.
        """
        tries = 4 * want + 16
        if starts.size <= tries:
            order = rng.permutation(starts)
        else:
            order = starts[rng.integers(0, starts.size, size=tries)]
        got: list[int] = []
        for start in order.tolist():
            if not self.occupied[start : start + self.window].any():
                self.occupied[start : start + self.window] = True
                got.append(start)
                if len(got) == want:
                    break
        return got

    def _sweep(self, starts: np.ndarray) -> list[int]:
        """A largest set of non-overlapping free windows among ascending ``starts``.

        Left to right, each window is the first free one that starts after the previous ends
        (optimal for equal-length intervals); iterations are bounded by windows found plus
        taken windows skipped.
        """
        found: list[int] = []
        cursor = 0
        while True:
            i = int(np.searchsorted(starts, cursor))
            if i == starts.size:
                return found
            start = int(starts[i])
            busy = np.flatnonzero(self.occupied[start : start + self.window])
            if busy.size:
                cursor = start + int(busy[-1]) + 1
            else:
                found.append(start)
                cursor = start + self.window


def _prefix_sums(values: np.ndarray) -> np.ndarray:
    """``[0, v0, v0 + v1, ...]`` (int32, length L + 1) of bool or small-int ``values``."""
    prefix = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(values, dtype=np.int32, out=prefix[1:])
    return prefix


def _window_sums(values: np.ndarray, window: int) -> np.ndarray:
    """Sum of ``values`` over each window start ``0 .. L - window`` (int32, L - window + 1)."""
    prefix = _prefix_sums(values)
    return prefix[window:] - prefix[:-window]
