"""The streaming stages: background reading, ordered writing, the N filter."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from enhscan.backend import ComputeOptions
from enhscan.scan.pipeline import OrderedWriter, in_background
from enhscan.sequence import window_ok


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


def test_score_chunks_times_each_stage(tiny_classifier) -> None:
    """A reader slower than the model shows up as input wait; model time and the reader's
    own times are kept, and the scores are those of direct scoring."""
    from enhscan.engine import WindowScorer
    from enhscan.scan.pipeline import PreparedChunk, score_chunks
    from enhscan.scan.shards import Shard

    rng = np.random.default_rng(3)
    seqs = ["".join(rng.choice(list("ACGT"), 1000)) for _ in range(12)]
    scorer = WindowScorer(tiny_classifier, ComputeOptions(batch_size=4))
    shard = Shard.of(0, "chr1", 0, 12)
    keep = np.ones(4, dtype=bool)

    def slow_reader():
        for i in range(3):
            time.sleep(0.2)
            part = slice(4 * i, 4 * i + 4)
            batches = scorer.prepare(seqs[part])
            yield PreparedChunk(shard, part, keep, batches, i == 2, 0.01, 0.02)

    saved = {}
    times = score_chunks(slow_reader(), scorer, lambda s, scores: saved.update(s=scores))
    np.testing.assert_allclose(saved["s"], scorer.score(seqs), atol=1e-6)
    assert times.chunks == 3
    assert times.read == pytest.approx(0.03) and times.tokenize == pytest.approx(0.06)
    assert times.input_wait >= 0.6
    assert 0 < times.model < times.input_wait
    assert times.input_share > 0.5
    assert set(times.record()) == {
        "read_seconds",
        "tokenize_seconds",
        "model_seconds",
        "input_wait_seconds",
        "write_wait_seconds",
        "chunks",
    }


def test_stage_times_warn_only_when_input_bound_after_the_pipeline_fills(caplog) -> None:
    from enhscan.scan.pipeline import StageTimes

    with caplog.at_level("INFO", logger="enhscan.scan.pipeline"):
        StageTimes(model=10.0, input_wait=1.0, chunks=50).report()
        StageTimes(model=1.0, input_wait=3.0, chunks=2).report()  # only the first chunks
    assert [r.levelname for r in caplog.records] == ["INFO", "INFO"]
    caplog.clear()
    with caplog.at_level("INFO", logger="enhscan.scan.pipeline"):
        StageTimes(model=1.0, input_wait=3.0, chunks=50).report()
    assert caplog.records[-1].levelname == "WARNING"
    assert "75%" in caplog.records[-1].getMessage()
    assert "more CPU cores" in caplog.records[-1].getMessage()
    assert StageTimes().input_share == 0.0
