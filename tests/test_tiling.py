"""Tests for enhscan.tiling: window starts, track bins, per-chromosome tiling and chunking."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enhscan.tiling import (
    ChromTiling,
    chunk_windows,
    count_windows,
    stretch_bins,
    tile_chrom,
    tile_stretch,
)

# --------------------------------------------------------------------------------------------
# tile_stretch: hand-written cases
# --------------------------------------------------------------------------------------------


def test_tile_stretch_adds_a_last_window_ending_at_the_stretch_end():
    starts = tile_stretch(0, 2345, 1000, 200)
    assert starts.tolist() == [0, 200, 400, 600, 800, 1000, 1200, 1345]
    assert starts.dtype == np.int64


def test_tile_stretch_offset_stretch():
    starts = tile_stretch(5000, 7345, 1000, 200)
    assert starts.tolist() == [5000, 5200, 5400, 5600, 5800, 6000, 6200, 6345]


def test_tile_stretch_no_extra_window_when_stride_lands_on_the_end():
    # 0..2200: the window at 1200 ends exactly at 2200.
    assert tile_stretch(0, 2200, 1000, 200).tolist() == [0, 200, 400, 600, 800, 1000, 1200]


def test_tile_stretch_exactly_one_window():
    starts = tile_stretch(300, 1300, 1000, 200)
    assert starts.tolist() == [300]
    assert starts.dtype == np.int64


def test_tile_stretch_one_base_longer_than_a_window():
    assert tile_stretch(0, 1001, 1000, 200).tolist() == [0, 1]


@pytest.mark.parametrize("length", [0, 1, 500, 999])
def test_tile_stretch_shorter_than_a_window_gives_nothing(length):
    starts = tile_stretch(100, 100 + length, 1000, 200)
    assert len(starts) == 0
    assert starts.dtype == np.int64


def test_tile_stretch_stride_equal_to_window():
    assert tile_stretch(0, 3000, 1000, 1000).tolist() == [0, 1000, 2000]
    assert tile_stretch(0, 3500, 1000, 1000).tolist() == [0, 1000, 2000, 2500]


def test_tile_stretch_stride_larger_than_window():
    # Windows at 10, 160; the one at 160 ends at 260 < 400 so one more ends at 400.
    assert tile_stretch(10, 400, 100, 150).tolist() == [10, 160, 300]
    assert tile_stretch(0, 400, 100, 300).tolist() == [0, 300]


def test_tile_stretch_stride_one():
    assert tile_stretch(7, 17, 5, 1).tolist() == [7, 8, 9, 10, 11, 12]


@pytest.mark.parametrize("window, stride", [(0, 1), (1, 0), (-5, 10), (10, -1)])
def test_tile_stretch_rejects_non_positive_window_or_stride(window, stride):
    with pytest.raises(ValueError):
        tile_stretch(0, 100, window, stride)


# --------------------------------------------------------------------------------------------
# stretch_bins: hand-written cases
# --------------------------------------------------------------------------------------------


def test_stretch_bins_hand_case():
    starts = tile_stretch(0, 2345, 1000, 200)
    bin_starts, bin_ends = stretch_bins(starts, 1000, 0, 2345)
    # Midpoints between neighbouring centres (s + 500): 600, 800, ..., 1600, then
    # (1700 + 1845) // 2 = 1772.
    assert bin_starts.tolist() == [0, 600, 800, 1000, 1200, 1400, 1600, 1772]
    assert bin_ends.tolist() == [600, 800, 1000, 1200, 1400, 1600, 1772, 2345]
    assert bin_starts.dtype == np.int64 and bin_ends.dtype == np.int64


def test_stretch_bins_single_window_owns_the_whole_stretch():
    starts = tile_stretch(300, 1300, 1000, 200)
    bin_starts, bin_ends = stretch_bins(starts, 1000, 300, 1300)
    assert bin_starts.tolist() == [300]
    assert bin_ends.tolist() == [1300]


def test_stretch_bins_stride_equal_to_window_gives_the_windows():
    starts = tile_stretch(0, 3000, 1000, 1000)
    bin_starts, bin_ends = stretch_bins(starts, 1000, 0, 3000)
    assert bin_starts.tolist() == [0, 1000, 2000]
    assert bin_ends.tolist() == [1000, 2000, 3000]


def test_stretch_bins_stride_larger_than_window_stay_in_their_windows():
    starts = tile_stretch(10, 400, 100, 150)  # [10, 160, 300]
    bin_starts, bin_ends = stretch_bins(starts, 100, 10, 400)
    assert bin_starts.tolist() == [10, 160, 300]
    assert bin_ends.tolist() == [110, 260, 400]


def test_stretch_bins_stride_one():
    starts = tile_stretch(0, 10, 4, 1)  # 0..6, centres 2..8
    bin_starts, bin_ends = stretch_bins(starts, 4, 0, 10)
    # Midpoints 2.5, 3.5, ... rounded down; base 2 (middle 2.5) is a tie between centres.
    assert bin_starts.tolist() == [0, 2, 3, 4, 5, 6, 7]
    assert bin_ends.tolist() == [2, 3, 4, 5, 6, 7, 10]
    starts = tile_stretch(0, 10, 5, 1)  # 0..5, centres 2.5..7.5
    bin_starts, bin_ends = stretch_bins(starts, 5, 0, 10)
    assert bin_starts.tolist() == [0, 3, 4, 5, 6, 7]
    assert bin_ends.tolist() == [3, 4, 5, 6, 7, 10]


def test_stretch_bins_no_windows_gives_empty_bins():
    starts = tile_stretch(0, 500, 1000, 200)
    assert len(starts) == 0
    bin_starts, bin_ends = stretch_bins(starts, 1000, 0, 500)
    assert bin_starts.shape == (0,) and bin_ends.shape == (0,)


# --------------------------------------------------------------------------------------------
# count_windows: hand-written cases
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "start, end, window, stride, expected",
    [
        (0, 2345, 1000, 200, 8),
        (0, 2200, 1000, 200, 7),
        (300, 1300, 1000, 200, 1),
        (0, 999, 1000, 200, 0),
        (0, 0, 1000, 200, 0),
        (0, 3500, 1000, 1000, 4),
        (10, 400, 100, 150, 3),
        (7, 17, 5, 1, 6),
    ],
)
def test_count_windows_hand_cases(start, end, window, stride, expected):
    assert count_windows(start, end, window, stride) == expected


# --------------------------------------------------------------------------------------------
# tile_stretch / stretch_bins / count_windows: properties
# --------------------------------------------------------------------------------------------


@st.composite
def stretch_cases(draw, max_stride_over_window=True):
    window = draw(st.integers(1, 120))
    if max_stride_over_window:
        stride = draw(st.integers(1, 200))
    else:
        stride = draw(st.integers(1, window))
    start = draw(st.integers(0, 10_000))
    length = draw(st.integers(0, 800))
    return start, start + length, window, stride


@settings(max_examples=150, deadline=None)
@given(stretch_cases())
def test_tile_stretch_properties(case):
    start, end, window, stride = case
    starts = tile_stretch(start, end, window, stride)
    assert starts.dtype == np.int64
    assert count_windows(start, end, window, stride) == len(starts)
    if end - start < window:
        assert len(starts) == 0
        return
    assert len(starts) >= 1
    # Inside the stretch.
    assert np.all(starts >= start)
    assert np.all(starts + window <= end)
    # Strictly increasing, steps of at most stride.
    steps = np.diff(starts)
    assert np.all(steps > 0)
    assert np.all(steps <= stride)
    # All but the last step are exactly stride.
    assert np.all(steps[:-1] == stride)
    # First at the stretch start, last ends at the stretch end.
    assert starts[0] == start
    assert starts[-1] + window == end
    if stride <= window:
        covered = np.zeros(end - start, dtype=bool)
        for s in starts:
            covered[s - start : s - start + window] = True
        assert covered.all()


def _check_bins(starts, bin_starts, bin_ends, window, start, end, stride):
    assert len(bin_starts) == len(bin_ends) == len(starts)
    assert bin_starts.dtype == np.int64 and bin_ends.dtype == np.int64
    # Non-empty and inside their windows.
    assert np.all(bin_starts < bin_ends)
    assert np.all(bin_starts >= starts)
    assert np.all(bin_ends <= starts + window)
    # In order, never overlapping.
    assert np.all(bin_ends[:-1] <= bin_starts[1:])
    # The stretch ends are owned.
    assert bin_starts[0] == start
    assert bin_ends[-1] == end
    if stride <= window:
        # Tile the stretch exactly.
        assert np.array_equal(bin_ends[:-1], bin_starts[1:])
        assert int((bin_ends - bin_starts).sum()) == end - start
    # Nearest centre: for each base x of bin k, measured from the base's middle x + 0.5,
    # window k's centre is at least as close as every other window's centre. Distances are
    # doubled to stay in integers: |2x + 1 - (2s + w)|.
    centres2 = 2 * starts + window
    for k in range(len(starts)):
        xs = np.arange(bin_starts[k], bin_ends[k], dtype=np.int64)
        d = np.abs((2 * xs + 1)[:, None] - centres2[None, :])
        assert np.all(d[:, k] <= d.min(axis=1))


@settings(max_examples=150, deadline=None)
@given(stretch_cases())
def test_stretch_bins_properties(case):
    start, end, window, stride = case
    starts = tile_stretch(start, end, window, stride)
    if len(starts) == 0:
        return
    bin_starts, bin_ends = stretch_bins(starts, window, start, end)
    _check_bins(starts, bin_starts, bin_ends, window, start, end, stride)


@settings(max_examples=100, deadline=None)
@given(stretch_cases(max_stride_over_window=False))
def test_stretch_bins_tile_the_stretch_when_stride_at_most_window(case):
    start, end, window, stride = case
    starts = tile_stretch(start, end, window, stride)
    if len(starts) == 0:
        return
    bin_starts, bin_ends = stretch_bins(starts, window, start, end)
    owner = np.full(end - start, -1)
    for k, (a, b) in enumerate(zip(bin_starts, bin_ends, strict=True)):
        assert np.all(owner[a - start : b - start] == -1)
        owner[a - start : b - start] = k
    assert np.all(owner >= 0)
    assert np.all(np.diff(owner) >= 0)


@settings(max_examples=150, deadline=None)
@given(
    start=st.integers(0, 10**9),
    length=st.integers(0, 10**7),
    window=st.integers(1, 5000),
    stride=st.integers(1, 5000),
)
def test_count_windows_matches_tile_stretch_on_large_coordinates(start, length, window, stride):
    starts = tile_stretch(start, start + length, window, stride)
    assert count_windows(start, start + length, window, stride) == len(starts)


# --------------------------------------------------------------------------------------------
# tile_chrom
# --------------------------------------------------------------------------------------------


def test_tile_chrom_whole_chromosome():
    tiling = tile_chrom("chr1", 2345, [(0, 2345)], 1000, 200)
    assert isinstance(tiling, ChromTiling)
    assert tiling.chrom == "chr1"
    assert tiling.length == 2345
    assert tiling.window == 1000
    assert tiling.uncovered == 0
    assert len(tiling) == 8
    assert tiling.starts.tolist() == [0, 200, 400, 600, 800, 1000, 1200, 1345]
    assert tiling.bin_starts.tolist() == [0, 600, 800, 1000, 1200, 1400, 1600, 1772]
    assert tiling.bin_ends.tolist() == [600, 800, 1000, 1200, 1400, 1600, 1772, 2345]


def test_tile_chrom_short_stretches_count_as_uncovered():
    stretches = [(0, 500), (1000, 2000), (3000, 3999), (5000, 7000)]
    tiling = tile_chrom("2", 10_000, stretches, 1000, 500)
    assert tiling.uncovered == 500 + 999
    assert tiling.starts.tolist() == [1000, 5000, 5500, 6000]
    assert tiling.bin_starts.tolist() == [1000, 5000, 5750, 6250]
    assert tiling.bin_ends.tolist() == [2000, 5750, 6250, 7000]
    assert len(tiling) == 4


def test_tile_chrom_no_stretches_or_all_too_short():
    for stretches in ([], [(0, 10), (20, 30)]):
        tiling = tile_chrom("chrM", 16569, stretches, 1000, 200)
        assert len(tiling) == 0
        for arr in (tiling.starts, tiling.bin_starts, tiling.bin_ends):
            assert arr.dtype == np.int64
            assert arr.shape == (0,)
    assert tile_chrom("chrM", 16569, [(0, 10), (20, 30)], 1000, 200).uncovered == 20


@st.composite
def chrom_cases(draw):
    window = draw(st.integers(1, 60))
    stride = draw(st.integers(1, 90))
    cuts = sorted(draw(st.lists(st.integers(0, 2000), min_size=0, max_size=12, unique=True)))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    stretches = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]
    length = (cuts[-1] if cuts else 0) + draw(st.integers(0, 50))
    return length, stretches, window, stride


@settings(max_examples=100, deadline=None)
@given(chrom_cases())
def test_tile_chrom_concatenates_the_stretches(case):
    length, stretches, window, stride = case
    tiling = tile_chrom("c", length, stretches, window, stride)
    exp_starts, exp_bs, exp_be, uncovered = [], [], [], 0
    for a, b in stretches:
        s = tile_stretch(a, b, window, stride)
        if len(s) == 0:
            uncovered += b - a
            continue
        bs, be = stretch_bins(s, window, a, b)
        _check_bins(s, bs, be, window, a, b, stride)
        exp_starts += s.tolist()
        exp_bs += bs.tolist()
        exp_be += be.tolist()
    assert tiling.starts.tolist() == exp_starts
    assert tiling.bin_starts.tolist() == exp_bs
    assert tiling.bin_ends.tolist() == exp_be
    assert tiling.uncovered == uncovered
    assert len(tiling) == len(exp_starts)
    assert tiling.length == length and tiling.window == window
    # Across stretches too: starts ascending, bins ordered and never overlapping.
    assert np.all(np.diff(tiling.starts) > 0)
    assert np.all(tiling.bin_ends[:-1] <= tiling.bin_starts[1:])
    assert np.all(tiling.bin_starts < tiling.bin_ends)


# --------------------------------------------------------------------------------------------
# chunk_windows
# --------------------------------------------------------------------------------------------


def test_chunk_windows_hand_case():
    starts = tile_stretch(0, 2345, 1000, 200)  # [0, 200, ..., 1200, 1345]
    chunks = list(chunk_windows(starts, 1000, 1500))
    # 1500 bases hold windows starting at 0..500: [0, 200, 400]; then [600, 800, 1000]; ...
    assert [starts[c].tolist() for c in chunks] == [
        [0, 200, 400],
        [600, 800, 1000],
        [1200, 1345],
    ]


def test_chunk_windows_chunk_smaller_than_window_gives_one_window_each():
    starts = tile_stretch(0, 2345, 1000, 200)
    chunks = list(chunk_windows(starts, 1000, 10))
    assert chunks == [slice(i, i + 1) for i in range(len(starts))]


def test_chunk_windows_one_big_chunk_and_empty():
    starts = tile_stretch(0, 2345, 1000, 200)
    assert list(chunk_windows(starts, 1000, 10**9)) == [slice(0, len(starts))]
    assert list(chunk_windows(np.empty(0, dtype=np.int64), 1000, 5000)) == []


def test_chunk_windows_exact_fit():
    starts = np.array([0, 1000, 2000, 3000], dtype=np.int64)
    # Windows 0 and 1000 span exactly 2000 bases.
    assert list(chunk_windows(starts, 1000, 2000)) == [slice(0, 2), slice(2, 4)]
    assert list(chunk_windows(starts, 1000, 1999)) == [slice(i, i + 1) for i in range(4)]


@settings(max_examples=150, deadline=None)
@given(chrom_cases(), st.integers(1, 3000))
def test_chunk_windows_properties(case, chunk_bases):
    length, stretches, window, stride = case
    starts = tile_chrom("c", length, stretches, window, stride).starts
    chunks = list(chunk_windows(starts, window, chunk_bases))
    if len(starts) == 0:
        assert chunks == []
        return
    # Consecutive, in order, covering every window once, each non-empty.
    position = 0
    for chunk in chunks:
        assert isinstance(chunk, slice)
        assert chunk.start == position
        assert chunk.stop > chunk.start
        position = chunk.stop
        span = int(starts[chunk.stop - 1]) + window - int(starts[chunk.start])
        assert span <= max(chunk_bases, window)
    assert position == len(starts)
    # Greedy: a chunk could not have taken the next window too.
    for chunk in chunks[:-1]:
        span_plus_one = int(starts[chunk.stop]) + window - int(starts[chunk.start])
        assert span_plus_one > max(chunk_bases, window)
