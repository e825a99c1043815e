"""What a scan is asked to do (:class:`ScanSettings`) and what it will cover
(:class:`ScanPlan`): plain data, shared by the scan pipeline, its streaming stages, its
outputs and the dry run, so that none of them imports another for it."""

from __future__ import annotations

from dataclasses import dataclass, field

from enhscan.intervals import Interval
from enhscan.shards import SHARD_WINDOWS
from enhscan.tiling import count_windows

__all__ = ["ScanPlan", "ScanSettings"]


@dataclass
class ScanSettings:
    """How to scan. ``None`` for window means "the model's own".

    Attributes:
        window: window width in bases.
        stride: distance between consecutive window starts.
        max_n: windows with more non-ACGT bases than this are skipped (no track value).
        fdr: call the windows whose Benjamini-Hochberg q-value (against the model's
            background null, or the scan's own empirical null) is at most this. The default
            rule: with none of ``fdr``, ``threshold`` and ``call_top`` given, FDR 0.05.
        threshold: instead, call windows whose enhancer probability is at least this.
        call_top: instead, call the best-scoring fraction of the scored windows,
            genome-wide (e.g. 0.02: the top 2%).
        track: what the track holds: ``log10p`` (-log10 p of each window against the null)
            or ``probability`` (the model's enhancer probability).
        task: for a multi-task model (``enhscan pretrain --targets``), the task to score;
            None: ``any``. Classifiers take None.
        chroms: names or shell patterns of the sequences to scan; None scans all.
        regions: BED of regions to scan (shorter ones are widened to one window).
        exclude: BED of regions never scored (a blacklist).
        batch_size: windows per forward pass (None: see :func:`enhscan.engine.default_batch_size`).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        dtype: ``auto``, ``fp32``, ``bf16``, ``fp16``.
        quantize: int8 dynamic quantization of the model's Linear layers (CPU only).
        batch_invariant: scores identical to the last bit whatever the batch size (see
            :class:`enhscan.engine.WindowScorer`); slower.
        compile: run the model through ``torch.compile`` (compiled at start-up).
        kernels: ``auto``, ``fused`` or ``plain``: the CPU fp32 kernels (see
            :class:`enhscan.engine.WindowScorer`).
        chunk_bases: bases read from the genome at a time.
        rc: also score each window's reverse complement and keep the ``mean`` or the ``max``
            of the two strands (twice the work); None scores the forward strand only.
        assembly: the UCSC assembly name for the track hub's genomes.txt (hg38, hg19, ...);
            None guesses it from the FASTA's file name.
        formats: track files to write: ``bigwig`` (scores.bw) and/or ``bedgraph``
            (scores.bedGraph).
        force: overwrite outputs already in the output folder (and drop an unfinished scan).
        progress: show a progress bar on stderr.
        resume: continue the unfinished scan in the output folder, skipping its finished
            shards; refused if the model, genome or settings differ.
        keep_shards: keep the finished shards' files after a complete run.
        shard_windows: windows per shard (the unit of work, of resuming and of sharing out
            between processes).
    """

    window: int | None = None
    stride: int = 200
    max_n: int = 0
    fdr: float | None = None
    threshold: float | None = None
    call_top: float | None = None
    track: str = "log10p"
    task: str | None = None
    formats: tuple[str, ...] = ("bigwig",)
    rc: str | None = None
    assembly: str | None = None
    chroms: list[str] | None = None
    regions: str | None = None
    exclude: str | None = None
    batch_size: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    quantize: bool = False
    batch_invariant: bool = False
    compile: bool = False
    kernels: str = "auto"
    chunk_bases: int = 1_000_000
    force: bool = False
    progress: bool = True
    resume: bool = False
    keep_shards: bool = False
    shard_windows: int = SHARD_WINDOWS


@dataclass
class ScanPlan:
    """What will be scanned: chromosomes, their stretches, and the window count."""

    window: int
    stride: int
    stretches: dict[str, list[Interval]]
    too_short: list[str] = field(default_factory=list)

    @property
    def n_windows(self) -> int:
        return sum(
            count_windows(s, e, self.window, self.stride)
            for ivs in self.stretches.values()
            for s, e in ivs
        )
