"""Tests for enhscan.intervals: merge, subtract, widen (0-based, half-open)."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from enhscan.intervals import merge, subtract, widen

LIMIT = 200


def covered(intervals):
    """The set of bases covered by ``intervals``."""
    bases = set()
    for start, end in intervals:
        bases.update(range(start, end))
    return bases


def assert_sorted_apart(result):
    """Non-empty intervals, sorted, neither overlapping nor touching."""
    for start, end in result:
        assert start < end, result
    for (_, end1), (start2, _) in zip(result[:-1], result[1:], strict=True):
        assert end1 < start2, result


@st.composite
def interval(draw, limit=LIMIT):
    start = draw(st.integers(0, limit - 1))
    end = draw(st.integers(start + 1, limit))
    return (start, end)


intervals = st.lists(interval(), max_size=12)


# --------------------------------------------------------------------------------------------
# merge
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given_, expected",
    [
        ([], []),
        ([(3, 7)], [(3, 7)]),
        ([(5, 10), (0, 3), (3, 4), (8, 12)], [(0, 4), (5, 12)]),
        ([(0, 10), (2, 3)], [(0, 10)]),  # contained
        ([(0, 5), (5, 10)], [(0, 10)]),  # touching
        ([(0, 5), (6, 10)], [(0, 5), (6, 10)]),  # one base apart
        ([(4, 6), (4, 6)], [(4, 6)]),  # duplicates
        ([(0, 3), (1, 2), (2, 8), (7, 9)], [(0, 9)]),  # chain
        ([(20, 30), (0, 10), (10, 20)], [(0, 30)]),  # unsorted chain
    ],
)
def test_merge_hand_cases(given_, expected):
    assert merge(given_) == expected


def test_merge_accepts_an_iterator():
    assert merge(iter([(5, 6), (1, 2)])) == [(1, 2), (5, 6)]


@settings(max_examples=100, deadline=None)
@given(intervals)
def test_merge_properties(ivs):
    result = merge(ivs)
    assert covered(result) == covered(ivs)
    assert_sorted_apart(result)
    assert merge(result) == result  # idempotent
    assert merge(list(reversed(ivs))) == result  # order of input does not matter


# --------------------------------------------------------------------------------------------
# subtract
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ivs, holes, expected",
    [
        ([(0, 100)], [(10, 20), (50, 60)], [(0, 10), (20, 50), (60, 100)]),
        ([(0, 100)], [], [(0, 100)]),
        ([], [(0, 100)], []),
        ([(0, 100)], [(0, 100)], []),
        ([(10, 20)], [(0, 100)], []),  # hole covers it all
        ([(0, 100)], [(0, 10)], [(10, 100)]),  # hole at the start
        ([(0, 100)], [(90, 100)], [(0, 90)]),  # hole at the end
        ([(0, 100)], [(90, 150)], [(0, 90)]),  # hole reaching past the end
        ([(50, 100)], [(0, 60)], [(60, 100)]),  # hole reaching in from before
        ([(0, 10)], [(10, 20)], [(0, 10)]),  # touching hole removes nothing
        ([(10, 20)], [(0, 10)], [(10, 20)]),
        ([(0, 100)], [(10, 20), (20, 30)], [(0, 10), (30, 100)]),  # touching holes
        ([(0, 100)], [(50, 60), (10, 20)], [(0, 10), (20, 50), (60, 100)]),  # unsorted holes
        # One hole across two intervals, and one interval across two holes.
        ([(0, 10), (20, 30), (40, 50)], [(5, 25), (28, 45)], [(0, 5), (25, 28), (45, 50)]),
        # Overlapping / unsorted intervals are merged first.
        ([(30, 50), (0, 20), (10, 40)], [(15, 16)], [(0, 15), (16, 50)]),
        ([(0, 10), (10, 20)], [(5, 15)], [(0, 5), (15, 20)]),
    ],
)
def test_subtract_hand_cases(ivs, holes, expected):
    assert subtract(ivs, holes) == expected


@settings(max_examples=150, deadline=None)
@given(intervals, intervals)
def test_subtract_matches_set_difference(ivs, holes):
    result = subtract(ivs, holes)
    assert covered(result) == covered(ivs) - covered(holes)
    assert_sorted_apart(result)
    assert result == merge(result)


@settings(max_examples=100, deadline=None)
@given(intervals)
def test_subtract_nothing_or_itself(ivs):
    assert subtract(ivs, []) == merge(ivs)
    assert subtract(ivs, ivs) == []


# --------------------------------------------------------------------------------------------
# widen
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "ivs, width, length, expected",
    [
        ([(100, 200)], 1000, 5000, [(0, 1000)]),  # shifted right at the start
        ([(4900, 4950)], 1000, 5000, [(4000, 5000)]),  # shifted left at the end
        ([(2000, 2100)], 1000, 5000, [(1550, 2550)]),  # centred on 2050
        ([(2000, 2001)], 1000, 5000, [(1500, 2500)]),  # one base: centre 2000
        ([(2000, 3000)], 1000, 5000, [(2000, 3000)]),  # exactly width: kept
        ([(1000, 4000)], 1000, 5000, [(1000, 4000)]),  # longer: kept
        ([(10, 20)], 1000, 600, [(0, 600)]),  # chromosome shorter than width
        ([(0, 600)], 1000, 600, [(0, 600)]),
        # Widened intervals that overlap are merged.
        ([(2000, 2100), (2300, 2400)], 1000, 5000, [(1550, 2850)]),
        ([(3000, 3010), (100, 110)], 100, 5000, [(55, 155), (2955, 3055)]),
        ([], 1000, 5000, []),
    ],
)
def test_widen_hand_cases(ivs, width, length, expected):
    assert widen(ivs, width, length) == expected


def test_widen_odd_width():
    # Centre (10 + 12) // 2 = 11, start 11 - 2 = 9, width 5.
    assert widen([(10, 12)], 5, 100) == [(9, 14)]


@st.composite
def widen_cases(draw):
    length = draw(st.integers(1, LIMIT))
    ivs = draw(st.lists(interval(limit=length), max_size=8))
    width = draw(st.integers(1, LIMIT + 20))
    return ivs, width, length


@settings(max_examples=150, deadline=None)
@given(widen_cases())
def test_widen_properties(case):
    ivs, width, length = case
    result = widen(ivs, width, length)
    assert_sorted_apart(result)
    assert result == merge(result)
    for start, end in result:
        assert 0 <= start < end <= length
        assert end - start >= min(width, length)
    # Each original interval lies inside one output interval.
    for start, end in ivs:
        assert any(a <= start and end <= b for a, b in result), (start, end, result)
    # The output is the union of the widened intervals, each at least min(width, length) long
    # and around the original.
    assert covered(ivs) <= covered(result)


@settings(max_examples=100, deadline=None)
@given(widen_cases())
def test_widen_each_interval_alone(case):
    ivs, width, length = case
    for start, end in ivs:
        [(a, b)] = widen([(start, end)], width, length)
        assert 0 <= a <= start and end <= b <= length
        if end - start >= width:
            assert (a, b) == (start, end)  # long intervals are left alone
        else:
            assert b - a == min(width, length)
            # Centred where not pushed against a chromosome end: the bases added on the two
            # sides differ by at most one (rounding of odd widths and lengths).
            if 0 < a and b < length:
                assert abs((start - a) - (b - end)) <= 1


@settings(max_examples=100, deadline=None)
@given(widen_cases())
def test_widen_long_intervals_only_is_merge(case):
    ivs, width, length = case
    long_ivs = [(s, e) for s, e in ivs if e - s >= width]
    assert widen(long_ivs, width, length) == merge(long_ivs)
