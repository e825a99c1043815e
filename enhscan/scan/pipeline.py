"""The streaming scan: three stages that overlap, so the model never waits on the genome or
the disk.

    reader thread   FASTA chunk of a shard -> skip windows with N -> tokenize -> batches
    main thread     batches -> model -> scores
    writer thread   finished shard -> its file (see enhscan.scan.shards)

The tokenizer works outside the GIL for most of its time, and bounded queues between the
stages keep memory flat: the reader runs at most ``depth`` chunks ahead and the writer holds
at most two jobs. An error in any stage stops the others and is raised in the caller's
thread. Each stage's time is kept (:class:`StageTimes`), so a run can say which one set its
pace.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

import numpy as np

from enhscan.engine import Batch, WindowScorer, strand_inputs, strand_scores
from enhscan.errors import EnhscanError
from enhscan.io.fasta import Genome
from enhscan.processes import Processes
from enhscan.scan.settings import RunOptions, ScanPlan, ScanSpec
from enhscan.scan.shards import Shard, ShardStore, describe
from enhscan.sequence import window_ok
from enhscan.tiling import ChromTiling, chunk_windows, tile_chrom

T = TypeVar("T")

log = logging.getLogger(__name__)

#: Chunks the reader thread prepares ahead of the model.
READ_AHEAD = 2

#: Share of the main thread's time spent waiting for input above which a scan warns that
#: reading and tokenizing, not the model, set its pace.
INPUT_BOUND_SHARE = 0.25


@dataclass
class PreparedChunk:
    """Consecutive windows of one shard, tokenized and batched, not yet scored.

    Attributes:
        shard: the shard the windows belong to.
        part: which of the shard's windows this chunk holds (relative to the shard).
        keep: bool [n], the chunk's windows that pass the N filter (the others get no score).
        batches: the kept windows, ready for :meth:`WindowScorer.run`.
        last: True on the shard's last chunk.
        read_seconds: time spent reading the chunk's sequence and filtering its windows.
        tokenize_seconds: time spent tokenizing and batching them.
    """

    shard: Shard
    part: slice
    keep: np.ndarray
    batches: list[Batch]
    last: bool
    read_seconds: float = 0.0
    tokenize_seconds: float = 0.0

    @property
    def n_windows(self) -> int:
        return len(self.keep)


@dataclass
class StageTimes:
    """Seconds each stage of a scan took, in one process.

    Attributes:
        read: reader thread, reading sequence and filtering windows for N.
        tokenize: reader thread, tokenizing and batching.
        model: main thread, scoring (on a GPU its work included: scores come back to the host
            once per chunk).
        input_wait: main thread, waiting for the reader's next chunk (the first one included:
            a pipeline must fill before it flows).
        write_wait: main thread, waiting for the writer thread.
        chunks: chunks scored.
    """

    read: float = 0.0
    tokenize: float = 0.0
    model: float = 0.0
    input_wait: float = 0.0
    write_wait: float = 0.0
    chunks: int = 0

    @property
    def input_share(self) -> float:
        """Share of the main thread's time spent waiting for input (0 when nothing ran)."""
        busy = self.model + self.input_wait + self.write_wait
        return self.input_wait / busy if busy > 0 else 0.0

    def record(self) -> dict[str, float | int]:
        """The run record's ``stages`` entry."""
        return {
            "read_seconds": round(self.read, 3),
            "tokenize_seconds": round(self.tokenize, 3),
            "model_seconds": round(self.model, 3),
            "input_wait_seconds": round(self.input_wait, 3),
            "write_wait_seconds": round(self.write_wait, 3),
            "chunks": self.chunks,
        }

    def report(self) -> None:
        """Log the times (``-v``), and warn when the model was kept waiting for input in a
        scan long enough for the pipeline to have filled."""
        log.info(
            "stages: model %.1f s, waiting for input %.1f s (%.0f%%), waiting for the writer "
            "%.1f s; reader: sequence %.1f s, tokenizing %.1f s; chunks: %d",
            self.model,
            self.input_wait,
            100 * self.input_share,
            self.write_wait,
            self.read,
            self.tokenize,
            self.chunks,
        )
        if self.input_share > INPUT_BOUND_SHARE and self.chunks > 2 * READ_AHEAD:
            log.warning(
                "the model waited for tokenized input %.0f%% of the scan: reading and "
                "tokenizing set the pace; give this process more CPU cores (the tokenizer "
                "uses all it is allowed)",
                100 * self.input_share,
            )


class ShardError(Exception):
    """An error while reading or scoring a shard; says which one."""

    def __init__(self, shard: Shard, cause: BaseException):
        super().__init__(f"shard {shard.index} ({describe(shard)}): {cause}")
        self.shard = shard
        self.cause = cause


def prepare_chunks(
    genome: Genome,
    shards: Iterable[Shard],
    tile: Callable[[str], ChromTiling],
    scorer: WindowScorer,
    max_n: int,
    chunk_bases: int,
    rc: str | None = None,
) -> Iterator[PreparedChunk]:
    """Read, filter and tokenize every window of ``shards``, one chunk at a time.

    A chunk holds consecutive windows of a shard spanning about ``chunk_bases`` bases of
    sequence: part of one chromosome, or several whole small ones (so the batches of an
    assembly of many small scaffolds are as full as those of one chromosome).

    Args:
        tile: the tiling of a chromosome, by name.
        rc: ``mean`` or ``max``: also prepare each window's reverse complement; the batches
            then hold the k kept windows followed by their k reverse complements
            (:func:`~enhscan.engine.strand_inputs`).

    A shard without windows still yields one empty chunk (``last`` set). Errors come out as
    :class:`ShardError`, naming the shard.
    """
    tiles = _TileCache(tile)
    for shard in shards:
        try:
            groups = _chunk_groups(_segments(shard, tiles, chunk_bases), chunk_bases)
            if not groups:
                yield PreparedChunk(shard, slice(0, 0), np.zeros(0, dtype=bool), [], True)
                continue
            for i, group in enumerate(groups):
                yield _prepare(shard, group, scorer, genome, max_n, rc, last=i == len(groups) - 1)
        except Exception as err:
            raise ShardError(shard, err) from err


@dataclass
class _Segment:
    """Consecutive windows of one chromosome within a shard: their starts, and their place
    among the shard's windows."""

    tiling: ChromTiling
    starts: np.ndarray
    where: slice

    @property
    def span(self) -> int:
        return int(self.starts[-1] - self.starts[0]) + self.tiling.window


class _TileCache:
    """The tiling of the chromosome asked for last (shards visit chromosomes in order)."""

    def __init__(self, tile: Callable[[str], ChromTiling]):
        self.tile, self.last = tile, None

    def __call__(self, chrom: str) -> ChromTiling:
        if self.last is None or self.last.chrom != chrom:
            self.last = self.tile(chrom)
        return self.last


def _segments(shard: Shard, tiles: _TileCache, chunk_bases: int) -> Iterator[_Segment]:
    """The shard's windows cut into runs of one chromosome spanning at most ``chunk_bases``."""
    for piece, where in shard.slices():
        if piece.count == 0:
            continue
        tiling = tiles(piece.chrom)
        starts = tiling.starts[piece.first : piece.first + piece.count]
        for part in chunk_windows(starts, tiling.window, chunk_bases):
            shifted = slice(where.start + part.start, where.start + part.stop)
            yield _Segment(tiling, starts[part], shifted)


def _chunk_groups(segments: Iterable[_Segment], chunk_bases: int) -> list[list[_Segment]]:
    """Consecutive segments grouped while together they span at most ``chunk_bases`` bases.

    Two neighbouring segments of one chromosome tiled at stride <= window always span more
    together, so a chromosome is cut into chunks as :func:`chunk_windows` cuts it.
    """
    groups: list[list[_Segment]] = []
    span = 0
    for segment in segments:
        if not groups or span + segment.span > chunk_bases:
            groups.append([])
            span = 0
        groups[-1].append(segment)
        span += segment.span
    return groups


def _prepare(shard, group: list[_Segment], scorer, genome, max_n, rc, last: bool):
    """Read, filter and tokenize one chunk's segments."""
    began = time.perf_counter()
    keeps, seqs = [], []
    for segment in group:
        window = segment.tiling.window
        lo = int(segment.starts[0])
        seq = genome.fetch(segment.tiling.chrom, lo, int(segment.starts[-1]) + window)
        offsets = segment.starts - lo
        keep = window_ok(seq, offsets, window, max_n)
        keeps.append(keep)
        seqs += [seq[o : o + window] for o in offsets[keep]]
    read = time.perf_counter()
    batches = scorer.prepare(strand_inputs(seqs, rc))
    return PreparedChunk(
        shard,
        slice(group[0].where.start, group[-1].where.stop),
        np.concatenate(keeps),
        batches,
        last=last,
        read_seconds=read - began,
        tokenize_seconds=time.perf_counter() - read,
    )


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
    on_shard: Callable[[Shard, np.ndarray], None],
    on_progress: Callable[[int], None] = lambda n: None,
    rc: str | None = None,
) -> StageTimes:
    """Score prepared chunks; call ``on_shard(shard, scores)`` as each shard completes.

    ``scores`` is float32 [shard.count] ([shard.count, tasks] when the scorer scores every
    task of a multi-task model), NaN where a window was skipped for N. With ``rc``
    (``mean`` or ``max``) the chunks hold both strands (see :func:`prepare_chunks`) and a
    window's score combines the two. Errors come out as :class:`ShardError`.

    Returns:
        the time each stage took (``on_shard`` counts as waiting for the writer).
    """
    times = StageTimes()
    scores: np.ndarray | None = None
    pending = iter(chunks)
    while True:
        began = time.perf_counter()
        chunk = next(pending, None)
        scoring = time.perf_counter()
        times.input_wait += scoring - began
        if chunk is None:
            return times
        times.read += chunk.read_seconds
        times.tokenize += chunk.tokenize_seconds
        times.chunks += 1
        try:
            if scores is None:  # [count], or [count, tasks] for every task of a model
                shape = (chunk.shard.count, scorer.outputs) if scorer.outputs else chunk.shard.count
                scores = np.full(shape, np.nan, dtype=np.float32)
            if chunk.batches:
                part = scores[chunk.part]  # a view: filled in place
                strands = 1 if rc is None else 2
                scored = scorer.run(chunk.batches, strands * int(chunk.keep.sum()))
                part[chunk.keep] = strand_scores(scored, rc)
        except Exception as err:
            raise ShardError(chunk.shard, err) from err
        times.model += time.perf_counter() - scoring
        on_progress(chunk.n_windows)
        if chunk.last:
            writing = time.perf_counter()
            on_shard(chunk.shard, scores)
            times.write_wait += time.perf_counter() - writing
            scores = None


def score_shards(
    genome: Genome,
    plan: ScanPlan,
    shards: list[Shard],
    scorer: WindowScorer,
    store: ShardStore,
    spec: ScanSpec,
    run: RunOptions,
    procs: Processes,
) -> StageTimes:
    """Score ``shards`` of ``plan`` (windows as ``spec`` asks, in chunks of
    ``run.chunk_bases``) and save each to ``store`` as it completes.

    Returns:
        the time each stage took in this process (also logged).

    Raises:
        EnhscanError: a shard failed; the message names it and where the finished ones are.
    """
    bar = _progress_bar(sum(s.count for s in shards), run.progress, procs)

    def tile(chrom: str) -> ChromTiling:
        return tile_chrom(
            chrom, genome.lengths[chrom], plan.stretches[chrom], plan.window, plan.stride
        )

    saver = OrderedWriter()
    chunks = prepare_chunks(genome, shards, tile, scorer, spec.max_n, run.chunk_bases, spec.rc)
    stream = in_background(chunks, READ_AHEAD)
    try:
        times = score_chunks(
            stream,
            scorer,
            lambda shard, scores: saver.submit(store.save, shard, scores),
            bar.update,
            spec.rc,
        )
        finishing = time.perf_counter()
        saver.finish()
        times.write_wait += time.perf_counter() - finishing
    except ShardError as err:
        saver.abandon()
        stopped = f"process {procs.rank} stopped on {err} ({type(err.cause).__name__})"
        done = len(store.done())
        if not done and procs.world == 1:  # the caller removes the empty store
            raise EnhscanError(f"{stopped}; no shard was finished, so none is kept") from err
        raise EnhscanError(
            f"{stopped}; the {done} finished shards are kept in {store.folder}: rerun with "
            "--resume to continue"
        ) from err
    except BaseException:
        saver.abandon()
        raise
    finally:
        stream.close()  # stops the reader thread now, not whenever the generator is collected
        bar.close()
    times.report()
    return times


def _progress_bar(total: int, progress: bool, procs: Processes):
    """The scan's progress bar on stderr: the main process's, when ``progress`` is on."""
    from tqdm import tqdm

    return tqdm(
        total=total,
        unit="win",
        desc="scanning" if procs.world == 1 else f"scanning (process 1 of {procs.world})",
        disable=not progress or not procs.is_main,
        dynamic_ncols=True,
        smoothing=0.05,
    )
