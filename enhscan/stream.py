"""The streaming scan: three stages that overlap, so the model never waits on the genome or
the disk.

    reader thread   FASTA chunk -> skip windows with N -> tokenize -> length-sorted batches
    main thread     batches -> model -> scores
    writer thread   finished chromosome -> bigWig entries and BED calls

The tokenizer and pyBigWig work outside the GIL for most of their time, and bounded queues
between the stages keep memory flat: the reader runs at most ``depth`` chunks ahead and the
writer holds at most two chromosomes. An error in any stage stops the others and is raised
in the caller's thread.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from enhscan.engine import Batch, WindowScorer
from enhscan.io.fasta import Genome
from enhscan.sequence import IS_ACGT
from enhscan.tiling import ChromTiling, chunk_windows

T = TypeVar("T")


@dataclass
class PreparedChunk:
    """Consecutive windows of one chromosome, tokenized and batched, not yet scored.

    Attributes:
        tiling: the chromosome's windows.
        part: which of ``tiling``'s windows this chunk holds.
        keep: bool [n], the chunk's windows that pass the N filter (the others get no score).
        batches: the kept windows, ready for :meth:`WindowScorer.run`.
        last: True on the chromosome's last chunk.
    """

    tiling: ChromTiling
    part: slice
    keep: np.ndarray
    batches: list[Batch]
    last: bool

    @property
    def n_windows(self) -> int:
        return len(self.keep)


def window_ok(seq: str, offsets: np.ndarray, window: int, max_n: int) -> np.ndarray:
    """Which windows of ``seq`` have at most ``max_n`` non-ACGT bases.

    Args:
        seq: a stretch of upper-case sequence (lower-case bases count as non-ACGT).
        offsets: int64 [n], window starts within ``seq`` (0-based).
        window: window width.
        max_n: the most non-ACGT bases a kept window may hold.

    Returns:
        bool [n].
    """
    bad = ~IS_ACGT[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
    prefix = np.concatenate(([0], np.cumsum(bad, dtype=np.int64)))
    return (prefix[offsets + window] - prefix[offsets]) <= max_n


def prepare_chunks(
    genome: Genome,
    tilings: Iterable[ChromTiling],
    scorer: WindowScorer,
    max_n: int,
    chunk_bases: int,
) -> Iterator[PreparedChunk]:
    """Read, filter and tokenize every window of ``tilings``, one chunk at a time.

    A chromosome without windows still yields one empty chunk (``last`` set), so it is
    reported like the others.
    """
    for tiling in tilings:
        parts = list(chunk_windows(tiling.starts, tiling.window, chunk_bases))
        if not parts:
            yield PreparedChunk(tiling, slice(0, 0), np.zeros(0, dtype=bool), [], True)
            continue
        for i, part in enumerate(parts):
            starts = tiling.starts[part]
            lo, hi = int(starts[0]), int(starts[-1]) + tiling.window
            seq = genome.fetch(tiling.chrom, lo, hi)
            offsets = starts - lo
            keep = window_ok(seq, offsets, tiling.window, max_n)
            batches = scorer.prepare([seq[o : o + tiling.window] for o in offsets[keep]])
            yield PreparedChunk(tiling, part, keep, batches, last=i == len(parts) - 1)


def in_background(items: Iterable[T], depth: int) -> Iterator[T]:
    """Iterate ``items`` on a separate thread, running up to ``depth`` items ahead.

    Exceptions raised while producing are re-raised by the consumer; when the consumer stops
    early (an error, Ctrl-C, ``break``), the producer thread stops at its next item.
    """
    if depth <= 0:
        yield from items
        return
    slots: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                if not _put(slots, (item, None), stop):
                    return
            _put(slots, (done, None), stop)
        except BaseException as err:  # handed to the consumer, never lost
            _put(slots, (done, err), stop)

    thread = threading.Thread(target=produce, name="enhscan-reader", daemon=True)
    thread.start()
    try:
        while True:
            item, err = slots.get()
            if err is not None:
                raise err
            if item is done:
                return
            yield item
    finally:
        stop.set()
        thread.join(timeout=60)


def _put(slots: queue.Queue, entry, stop: threading.Event) -> bool:
    while not stop.is_set():
        try:
            slots.put(entry, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False


class OrderedWriter:
    """Runs write jobs one after the other on a single background thread, in submission
    order, with at most ``backlog`` waiting; errors surface on the next call."""

    def __init__(self, backlog: int = 2):
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="enhscan-writer")
        self._pending: list[Future] = []
        self._backlog = backlog

    def submit(self, job: Callable[..., T], *args) -> Future:
        self._raise_finished()
        while len(self._pending) >= self._backlog:
            self._pending.pop(0).result()
        future = self._pool.submit(job, *args)
        self._pending.append(future)
        return future

    def _raise_finished(self) -> None:
        for future in [f for f in self._pending if f.done()]:
            self._pending.remove(future)
            future.result()

    def finish(self) -> None:
        """Wait for every job; raise the first error."""
        try:
            for future in self._pending:
                future.result()
        finally:
            self._pending.clear()
            self._pool.shutdown(wait=True)

    def abandon(self) -> None:
        """Drop jobs not yet started and wait for the running one (after an error)."""
        for future in self._pending:
            future.cancel()
        self._pool.shutdown(wait=True)
        self._pending.clear()


def score_chunks(
    chunks: Iterable[PreparedChunk],
    scorer: WindowScorer,
    on_chrom: Callable[[ChromTiling, np.ndarray], None],
    on_progress: Callable[[int], None] = lambda n: None,
) -> None:
    """Score prepared chunks; call ``on_chrom(tiling, scores)`` as each chromosome completes.

    ``scores`` is float32 [len(tiling)], NaN where a window was skipped for N.
    """
    scores: np.ndarray | None = None
    for chunk in chunks:
        if scores is None:
            scores = np.full(len(chunk.tiling), np.nan, dtype=np.float32)
        if chunk.batches:
            part = scores[chunk.part]
            part[chunk.keep] = scorer.run(chunk.batches, int(chunk.keep.sum()))
            scores[chunk.part] = part
        on_progress(chunk.n_windows)
        if chunk.last:
            on_chrom(chunk.tiling, scores)
            scores = None
