"""Tests for enhscan.calling: runs of track bins at or above a threshold become calls."""

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enhscan.calling import Call, call_regions
from enhscan.intervals import merge
from enhscan.tiling import stretch_bins, tile_chrom, tile_stretch

NAN = float("nan")


def bins_2345():
    """Bins of window 1000, stride 200 on [0, 2345)."""
    starts = tile_stretch(0, 2345, 1000, 200)
    bin_starts, bin_ends = stretch_bins(starts, 1000, 0, 2345)
    # [0,600) [600,800) [800,1000) [1000,1200) [1200,1400) [1400,1600) [1600,1772) [1772,2345)
    assert bin_starts.tolist() == [0, 600, 800, 1000, 1200, 1400, 1600, 1772]
    return bin_starts, bin_ends


def f32(values):
    return np.array(values, dtype=np.float32)


def test_toy_case_by_hand():
    bin_starts, bin_ends = bins_2345()
    scores = f32([0.1, 0.6, 0.9, 0.55, 0.2, 0.7, 0.5, 0.8])
    calls = call_regions(bin_starts, bin_ends, scores, 0.5)
    assert calls == [
        Call(start=600, end=1200, max_score=float(np.float32(0.9)), summit=900, n_windows=3),
        # Best window is the last, bin [1772, 2345): summit (1772 + 2345) // 2 = 2058.
        Call(start=1400, end=2345, max_score=float(np.float32(0.8)), summit=2058, n_windows=3),
    ]
    for call in calls:
        assert isinstance(call.start, int) and isinstance(call.end, int)
        assert isinstance(call.summit, int) and isinstance(call.n_windows, int)
        assert isinstance(call.max_score, float)


def test_single_window_call():
    bin_starts, bin_ends = bins_2345()
    scores = f32([0.1, 0.1, 0.1, 0.95, 0.1, 0.1, 0.1, 0.1])
    assert call_regions(bin_starts, bin_ends, scores, 0.5) == [
        Call(start=1000, end=1200, max_score=float(np.float32(0.95)), summit=1100, n_windows=1)
    ]


def test_whole_stretch_one_call():
    bin_starts, bin_ends = bins_2345()
    scores = f32([0.6, 0.7, 0.8, 0.9, 0.99, 0.9, 0.8, 0.7])
    assert call_regions(bin_starts, bin_ends, scores, 0.5) == [
        Call(start=0, end=2345, max_score=float(np.float32(0.99)), summit=1300, n_windows=8)
    ]


def test_tie_for_best_takes_the_first_window():
    bin_starts, bin_ends = bins_2345()
    scores = f32([0.9, 0.9, 0.9, 0.1, 0.1, 0.1, 0.1, 0.1])
    [call] = call_regions(bin_starts, bin_ends, scores, 0.5)
    assert (call.start, call.end, call.summit, call.n_windows) == (0, 1000, 300, 3)


def test_nan_breaks_runs_and_is_never_called():
    bin_starts, bin_ends = bins_2345()
    scores = f32([0.9, 0.8, NAN, 0.7, 0.6, NAN, NAN, 0.9])
    calls = call_regions(bin_starts, bin_ends, scores, 0.5)
    assert [(c.start, c.end, c.n_windows) for c in calls] == [
        (0, 800, 2),
        (1000, 1400, 2),
        (1772, 2345, 1),
    ]
    # Even at threshold 0 a NaN window is not called.
    calls = call_regions(bin_starts, bin_ends, scores, 0.0)
    assert [(c.start, c.end) for c in calls] == [(0, 800), (1000, 1400), (1772, 2345)]
    assert all(not math.isnan(c.max_score) for c in calls)


def test_all_nan_gives_nothing():
    bin_starts, bin_ends = bins_2345()
    assert call_regions(bin_starts, bin_ends, f32([NAN] * 8), 0.0) == []


def test_empty_track():
    empty = np.empty(0, dtype=np.int64)
    assert call_regions(empty, empty, np.empty(0, dtype=np.float32), 0.5) == []


def test_gap_between_stretches_breaks_runs():
    # Two stretches: [0, 1000) and [1500, 2700); bins [0,1000) | [1500,2100) [2100,2700)
    tiling = tile_chrom("c", 3000, [(0, 1000), (1500, 2700)], 1000, 500)
    assert tiling.bin_starts.tolist() == [0, 1500, 2100]
    assert tiling.bin_ends.tolist() == [1000, 2100, 2700]
    scores = f32([0.9, 0.8, 0.95])
    calls = call_regions(tiling.bin_starts, tiling.bin_ends, scores, 0.5)
    assert calls == [
        Call(start=0, end=1000, max_score=float(np.float32(0.9)), summit=500, n_windows=1),
        Call(start=1500, end=2700, max_score=float(np.float32(0.95)), summit=2400, n_windows=2),
    ]


def test_gap_between_bins_of_one_stretch_breaks_runs():
    # stride > window leaves gaps between bins inside one stretch.
    starts = tile_stretch(10, 400, 100, 150)  # windows at 10, 160, 300
    bin_starts, bin_ends = stretch_bins(starts, 100, 10, 400)
    calls = call_regions(bin_starts, bin_ends, f32([0.9, 0.9, 0.9]), 0.5)
    assert [(c.start, c.end, c.n_windows) for c in calls] == [
        (10, 110, 1),
        (160, 260, 1),
        (300, 400, 1),
    ]


def test_touching_bins_with_arbitrary_arrays():
    # Hand-made bins: 0 and 1 touch, 1 and 2 do not (one-base gap), 2 and 3 touch.
    bin_starts = np.array([0, 10, 21, 30], dtype=np.int64)
    bin_ends = np.array([10, 20, 30, 40], dtype=np.int64)
    calls = call_regions(bin_starts, bin_ends, f32([1, 1, 1, 1]), 1.0)
    assert [(c.start, c.end, c.n_windows) for c in calls] == [(0, 20, 2), (21, 40, 2)]


@pytest.mark.parametrize("threshold", [0.0, 0.25, 0.5, 0.7, 0.9, 1.0, 0.123456789])
def test_threshold_equality_counts_as_passing(threshold):
    bin_starts, bin_ends = bins_2345()
    # The score is stored as float32; a threshold given as the same decimal must pass it.
    scores = f32([NAN, threshold, NAN, NAN, NAN, NAN, NAN, NAN])
    calls = call_regions(bin_starts, bin_ends, scores, threshold)
    assert [(c.start, c.end, c.n_windows) for c in calls] == [(600, 800, 1)]
    # Just above the score: nothing.
    above = float(np.nextafter(np.float32(threshold), np.float32(2)))
    assert call_regions(bin_starts, bin_ends, scores, above) == []


def test_threshold_zero_calls_every_scored_window():
    bin_starts, bin_ends = bins_2345()
    scores = f32([0.0, 0.1, 0.0, 0.3, 0.0, 0.2, 0.0, 0.0])
    calls = call_regions(bin_starts, bin_ends, scores, 0)
    assert [(c.start, c.end, c.n_windows) for c in calls] == [(0, 2345, 8)]


def test_threshold_above_max_calls_nothing():
    bin_starts, bin_ends = bins_2345()
    scores = f32([0.0, 0.1, 0.99, 0.3, 1.0, 0.2, 0.0, 0.0])
    assert call_regions(bin_starts, bin_ends, scores, 1.0001) == []
    assert [c.n_windows for c in call_regions(bin_starts, bin_ends, scores, 1.0)] == [1]


# --------------------------------------------------------------------------------------------
# Property: calls are exactly the merged bins scoring >= threshold.
# --------------------------------------------------------------------------------------------

SCORE_VALUES = [0.0, 0.1, 0.25, 0.5, 0.7, 0.9, 1.0, NAN]


@st.composite
def tracks(draw):
    window = draw(st.integers(1, 40))
    stride = draw(st.integers(1, 60))
    cuts = sorted(draw(st.lists(st.integers(0, 600), max_size=10, unique=True)))
    if len(cuts) % 2:
        cuts = cuts[:-1]
    stretches = [(cuts[i], cuts[i + 1]) for i in range(0, len(cuts), 2)]
    tiling = tile_chrom("c", 700, stretches, window, stride)
    n = len(tiling)
    scores = draw(
        st.lists(
            st.one_of(st.sampled_from(SCORE_VALUES), st.floats(0, 1, width=32)),
            min_size=n,
            max_size=n,
        )
    )
    threshold = draw(st.one_of(st.sampled_from(SCORE_VALUES[:-1]), st.floats(0, 1)))
    return tiling.bin_starts, tiling.bin_ends, f32(scores), threshold


@settings(max_examples=120, deadline=None)
@given(tracks())
def test_calls_are_the_merged_passing_bins(track):
    bin_starts, bin_ends, scores, threshold = track
    calls = call_regions(bin_starts, bin_ends, scores, threshold)
    passing = [
        k for k in range(len(scores)) if not math.isnan(scores[k]) and scores[k] >= threshold
    ]
    # Sorted, non-overlapping, non-empty.
    for call in calls:
        assert call.start < call.end
    for a, b in zip(calls[:-1], calls[1:], strict=True):
        assert a.end <= b.start
    # Union of calls == union of passing bins, with each call one maximal run.
    passing_bins = [(int(bin_starts[k]), int(bin_ends[k])) for k in passing]
    assert [(c.start, c.end) for c in calls] == merge(passing_bins)
    assert sum(c.n_windows for c in calls) == len(passing)
    for call in calls:
        members = [k for k in passing if call.start <= bin_starts[k] and bin_ends[k] <= call.end]
        assert len(members) == call.n_windows
        assert call.max_score == max(float(scores[k]) for k in members)
        assert call.max_score >= np.float32(threshold)
        # Summit: inside the call, the middle of the first best window's bin.
        assert call.start <= call.summit < call.end
        best = next(k for k in members if float(scores[k]) == call.max_score)
        assert call.summit == (int(bin_starts[best]) + int(bin_ends[best])) // 2
        assert bin_starts[best] <= call.summit < bin_ends[best]
