"""The streaming stages: background reading, ordered writing, the N filter."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from enhscan.stream import OrderedWriter, in_background, window_ok


def test_window_ok_counts_non_acgt_per_window() -> None:
    seq = "ACGTNNACGTRYAC"
    offsets = np.array([0, 2, 6, 10])
    np.testing.assert_array_equal(window_ok(seq, offsets, 4, 0), [True, False, True, False])
    np.testing.assert_array_equal(window_ok(seq, offsets, 4, 2), [True, True, True, True])


@pytest.mark.parametrize("depth", [0, 1, 3])
def test_in_background_yields_everything_in_order(depth: int) -> None:
    assert list(in_background(iter(range(50)), depth)) == list(range(50))


def test_in_background_reraises_the_producer_error() -> None:
    def items():
        yield 1
        raise OSError("disk gone")

    got = []
    with pytest.raises(OSError, match="disk gone"):
        for item in in_background(items(), 2):
            got.append(item)
    assert got == [1]


def test_in_background_stops_the_producer_when_the_consumer_stops() -> None:
    produced = []

    def items():
        for i in range(10_000):
            produced.append(i)
            yield i

    for item in in_background(items(), 2):
        if item == 3:
            break
    time.sleep(0.3)
    assert len(produced) < 10  # stopped within a few items of the consumer
    assert not [t for t in threading.enumerate() if t.name == "enhscan-reader"]


def test_ordered_writer_runs_jobs_in_order_on_one_thread() -> None:
    writer = OrderedWriter(backlog=2)
    seen = []
    for i in range(20):
        writer.submit(lambda i=i: (time.sleep(0.001 * (i % 3)), seen.append(i)))
    writer.finish()
    assert seen == list(range(20))


def test_ordered_writer_raises_a_job_error() -> None:
    writer = OrderedWriter(backlog=1)

    def fail() -> None:
        raise ValueError("bad chromosome")

    writer.submit(fail)
    with pytest.raises(ValueError, match="bad chromosome"):
        for _ in range(5):
            writer.submit(lambda: None)
        writer.finish()
    writer.abandon()
