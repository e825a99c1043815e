"""A scan's outputs: the bigWig track and BED calls assembled from its shards, and the run
record."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enhscan.calling import Call, CallRule, call_regions
from enhscan.errors import EnhscanError
from enhscan.io.atomic import partial_path
from enhscan.io.bed import format_narrowpeak
from enhscan.io.bedgraph import BedGraphWriter
from enhscan.io.bigwig import BigWigWriter
from enhscan.io.browser import TrackStyle
from enhscan.io.fasta import Genome
from enhscan.scan.settings import ScanPlan
from enhscan.scan.shards import Shard, ShardStore
from enhscan.significance import ScanSignificance
from enhscan.tiling import tile_chrom

#: File names inside the output folder.
OUTPUTS = {
    "tasks": "tasks",  # --task all: a folder per task, each with its track and calls
    "bigwig": "scores.bw",
    "bedgraph": "scores.bedGraph",
    "calls": "calls.narrowPeak",
    "record": "run.json",
    "igv": "igv_session.xml",
    "calls_bigbed": "calls.bb",
    "hub": "hub.txt",
    "hub_genomes": "genomes.txt",
    "hub_tracks": "trackDb.txt",
}


@dataclass
class ChromResult:
    """Counts for one chromosome, kept in the run record."""

    length: int
    windows: int = 0
    scored: int = 0
    skipped_n: int = 0
    calls: int = 0
    uncovered_bp: int = 0


class TaskColumn:
    """One task's scores in the shards of a scan of every task (``--task all``): loads as
    a shard store does, float32 [count]."""

    def __init__(self, store: ShardStore, column: int):
        self.store, self.column = store, column

    def load(self, shard: Shard) -> np.ndarray:
        return self.store.load(shard)[:, self.column]


def top_fraction_threshold(flat: np.ndarray, fraction: float) -> float:
    """The score of the ``ceil(fraction * n)``-th best of the n scored windows (``flat``, no
    NaN): calling at it calls the top ``fraction`` of windows (more where scores tie). 1.0
    when none is scored."""
    if len(flat) == 0:
        return 1.0
    k = min(len(flat), max(1, int(np.ceil(fraction * len(flat)))))
    return float(np.partition(flat, len(flat) - k)[len(flat) - k])


@dataclass
class Calling:
    """How a finished scan's windows are called and what its track holds.

    Attributes:
        rule: the rule asked for.
        threshold: the probability threshold the rule implies (None: no window passes).
        significance: p- and q-values of every scored window.
        track_values: ``log10p`` (-log10 p of each window) or ``probability``.
        windows_called: scored windows at or above the threshold.
    """

    rule: CallRule
    threshold: float | None
    significance: ScanSignificance
    track_values: str
    windows_called: int

    def track(self, scores: np.ndarray) -> np.ndarray:
        """The track's values for window scores (float32)."""
        if self.track_values == "probability":
            return scores
        return _minus_log10(self.significance.pvalues(scores)).astype(np.float32)

    def summit_stats(self, calls: list[Call]) -> list[tuple[float, float]]:
        """-log10 p and -log10 q of each call's best window."""
        best = np.array([c.max_score for c in calls], dtype=np.float32)
        p = _minus_log10(self.significance.pvalues(best))
        q = _minus_log10(self.significance.qvalues(best))
        return list(zip(p.tolist(), q.tolist(), strict=True))

    def record(self) -> dict:
        """The run record's ``calling`` entry."""
        threshold = self.threshold
        p_at = None if threshold is None else float(self.significance.pvalues([threshold])[0])
        return {
            "rule": self.rule.kind,
            "value": self.rule.value,
            "described": self.rule.describe(),
            "probability_threshold": threshold,
            "log10p_threshold": None if p_at is None else round(float(-np.log10(p_at)), 6),
            "windows_called": self.windows_called,
            "null": self.significance.describe_null(),
            "track": self.track_values,
        }

    def style(self) -> TrackStyle:
        """How the browsers label the track and the calls."""
        calls = f"enhscan calls ({self.rule.describe()})"
        if self.track_values == "probability":
            return TrackStyle(
                "enhscan probability",
                "enhscan enhancer probability of the 1 kb window centred at each base",
                1.0,
                calls,
            )
        top = self.track(np.array([self.significance.max_score], dtype=np.float32))[0]
        return TrackStyle(
            "enhscan -log10 p",
            "enhscan -log10 p of the window centred at each base, against random genome windows",
            float(max(3.0, np.ceil(top))),
            calls,
        )


def _minus_log10(p: np.ndarray) -> np.ndarray:
    return -np.log10(np.asarray(p, dtype=np.float64))


def decide_calling(
    shards: list[Shard],
    store: ShardStore,
    rule: CallRule,
    null_sorted: np.ndarray | None,
    track_values: str = "log10p",
) -> Calling:
    """Load every finished shard's scores and decide the calling: the p- and q-values against
    ``null_sorted`` (the model's background sample; None: the scan's own empirical null) and
    the probability threshold ``rule`` implies."""
    parts = [store.load(s) for s in shards]
    flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)
    flat = flat[~np.isnan(flat)]
    significance = ScanSignificance(flat, null_sorted)
    if rule.kind == "fdr":
        threshold = significance.fdr_threshold(rule.value)
    elif rule.kind == "top":
        threshold = top_fraction_threshold(flat, rule.value)
    else:
        threshold = rule.value
    called = 0 if threshold is None else int((flat >= threshold).sum())
    return Calling(rule, threshold, significance, track_values, called)


def write_outputs(
    genome: Genome,
    plan: ScanPlan,
    shards: list[Shard],
    store: ShardStore,
    out_dir: Path,
    calling: Calling,
    formats: tuple[str, ...] = ("bigwig",),
) -> tuple[dict[str, ChromResult], dict[int, int]]:
    """Assemble the finished shards, chromosome by chromosome, into the track (``scores.bw``
    and/or ``scores.bedGraph``, as ``formats`` asks, holding ``calling.track``) and
    ``calls.narrowPeak`` in ``out_dir``, called by ``calling``. Files are written under
    temporary names and renamed when all are complete.

    Returns:
        Counts per chromosome, and the windows scored in each shard (by shard index).
    """
    finals = [out_dir / OUTPUTS[f] for f in formats] + [out_dir / OUTPUTS["calls"]]
    temps = [partial_path(f) for f in finals]
    _check_room(out_dir, plan, formats, len(genome.lengths))
    results: dict[str, ChromResult] = {}
    scored_by_shard: dict[int, int] = {}
    tracks = []
    try:
        for fmt, tmp in zip(formats, temps, strict=False):
            if fmt == "bigwig":
                tracks.append(BigWigWriter(tmp, list(genome.lengths.items())))
            else:
                tracks.append(BedGraphWriter(tmp))
        with open(temps[-1], "w") as calls_out:
            n_calls = 0
            for chrom, scores in _scores_by_chrom(shards, store, scored_by_shard):
                results[chrom] = _write_chrom(
                    genome, plan, chrom, scores, calling, tracks, calls_out, n_calls
                )
                n_calls += results[chrom].calls
        for track in tracks:
            track.close()
        for tmp, final in zip(temps, finals, strict=True):
            os.replace(tmp, final)
    except BaseException:
        for track in tracks:
            track.close()
        for tmp in temps:
            tmp.unlink(missing_ok=True)
        raise
    return results, scored_by_shard


def _scores_by_chrom(
    shards: list[Shard], store: ShardStore, scored: dict
) -> Iterator[tuple[str, np.ndarray]]:
    """Each chromosome's window scores (float32, NaN where skipped), in genome order, from
    the shards (each loaded once); counts each shard's scored windows into ``scored``."""
    chrom, parts = None, []
    for shard in shards:
        values = store.load(shard)
        scored[shard.index] = int((~np.isnan(values)).sum())
        for piece, where in shard.slices():
            if piece.chrom != chrom:
                if chrom is not None:
                    yield chrom, np.concatenate(parts)
                chrom, parts = piece.chrom, []
            parts.append(values[where])
    if chrom is not None:
        yield chrom, np.concatenate(parts)


def _write_chrom(
    genome, plan: ScanPlan, chrom: str, scores, calling: Calling, tracks, calls_out, n_calls: int
) -> ChromResult:
    """Add one chromosome's track values and calls (numbered on from ``n_calls``)."""
    tiling = tile_chrom(
        chrom, genome.lengths[chrom], plan.stretches[chrom], plan.window, plan.stride
    )
    done = ~np.isnan(scores)
    values = calling.track(scores[done])
    for track in tracks:
        track.add(chrom, tiling.bin_starts[done], tiling.bin_ends[done], values)
    threshold = np.inf if calling.threshold is None else calling.threshold
    calls = call_regions(tiling.bin_starts, tiling.bin_ends, scores, threshold)
    stats = calling.summit_stats(calls)
    calls_out.write(format_narrowpeak(chrom, calls, stats, first_index=n_calls + 1))
    return ChromResult(
        length=tiling.length,
        windows=len(tiling),
        scored=int(done.sum()),
        skipped_n=int((~done).sum()),
        calls=len(calls),
        uncovered_bp=tiling.uncovered,
    )


def _check_room(out_dir: Path, plan: ScanPlan, formats: tuple[str, ...], n_chroms: int):
    """Refuse to assemble outputs the disk (or the file-size limit) cannot hold: the track
    has one interval per scored window at most, a narrowPeak line per call."""
    from enhscan.io.atomic import check_room
    from enhscan.io.bigwig import bigwig_size_bound

    n = plan.n_windows
    sizes = {"bigwig": bigwig_size_bound(n, n_chroms), "bedgraph": 48 * n}
    files = [sizes[f] for f in formats] + [64 * n]  # calls: far fewer than windows
    try:
        check_room(out_dir, max(files), sum(files), "writing the track and calls")
    except EnhscanError as err:
        raise EnhscanError(f"{err}; the scored shards are kept: then rerun with --resume") from None


def write_browser_files(
    out_dir: Path,
    genome: Genome,
    formats: tuple[str, ...],
    calling: Calling,
    assembly: str | None,
    extra: tuple[tuple[str, str], ...] = (),
) -> dict:
    """Write the IGV session and, when there is a bigWig, the UCSC track hub (with the calls
    as bigBed) next to the outputs; ``extra`` tracks ``(path, name)`` below them (the tracks of
    every task).

    Returns:
        What was written: {"files": [...], "ucsc_assembly": name, "assembly_guessed": bool}.
    """
    from enhscan.io.browser import (
        guess_assembly,
        write_calls_bigbed,
        write_igv_session,
        write_track_hub,
    )

    calls_path = out_dir / OUTPUTS["calls"]
    track = OUTPUTS["bigwig"] if "bigwig" in formats else OUTPUTS["bedgraph"]
    style = calling.style()
    write_igv_session(
        out_dir / OUTPUTS["igv"],
        genome.path,
        _opening_locus(calls_path, genome),
        track,
        OUTPUTS["calls"],
        style,
        extra,
    )
    written = [OUTPUTS["igv"]]
    guessed = assembly is None
    assembly = assembly or guess_assembly(genome.path)
    if "bigwig" in formats:
        bigbed = None
        if calls_path.stat().st_size > 0:  # an empty bigBed is not a valid file
            write_calls_bigbed(out_dir / OUTPUTS["calls_bigbed"], calls_path, genome.lengths)
            bigbed = OUTPUTS["calls_bigbed"]
            written.append(bigbed)
        label = Path(genome.path).name
        written += write_track_hub(
            out_dir, assembly or "UNKNOWN", track, bigbed, label, style, extra
        )
    return {"files": written, "ucsc_assembly": assembly, "assembly_guessed": guessed}


def _opening_locus(calls_path: Path, genome: Genome) -> str:
    """Where the IGV session opens: 5 kb around the best call, else the start of the first
    sequence. IGV's 1-based inclusive notation."""
    from enhscan.io.bed import read_calls

    best = max(read_calls(calls_path), key=lambda call: call.signal, default=None)
    if best is None:
        chrom = next(iter(genome.lengths))
        return f"{chrom}:1-{min(genome.lengths[chrom], 100_000)}"
    end = min(genome.lengths[best.chrom], best.end + 5000)
    return f"{best.chrom}:{max(1, best.start + 1 - 5000)}-{end}"
