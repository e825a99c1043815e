"""Scanning a genome: tile windows, score them, write the track, the calls and a run record.

This module ties the pure parts (tiling, calling), the I/O (FASTA, BED, bigWig) and the engine
together. The genome is read one chunk of one chromosome at a time, and each chromosome's
track and calls are written as soon as it is finished, so memory stays flat whatever the
genome size. Outputs are written under temporary names and renamed only when the run is done.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from enhscan import __version__
from enhscan.calling import call_regions
from enhscan.engine import WindowScorer, resolve_device, resolve_dtype
from enhscan.errors import EnhscanError
from enhscan.intervals import Interval, subtract, widen
from enhscan.io.atomic import partial_path, write_json
from enhscan.io.bed import BedIntervals, format_narrowpeak, read_bed
from enhscan.io.bigwig import BigWigWriter
from enhscan.io.fasta import Genome, open_genome
from enhscan.model.folder import Classifier, load_classifier
from enhscan.naming import select_chroms
from enhscan.stream import OrderedWriter, in_background, prepare_chunks, score_chunks
from enhscan.tiling import ChromTiling, count_windows, tile_chrom
from enhscan.versions import package_versions

log = logging.getLogger(__name__)

#: File names inside the output folder.
OUTPUTS = {"bigwig": "scores.bw", "calls": "calls.narrowPeak", "record": "run.json"}

#: Chunks the reader thread prepares ahead of the model.
READ_AHEAD = 2


@dataclass
class ScanSettings:
    """How to scan. ``None`` for window or threshold means "the model's own".

    Attributes:
        window: window width in bases.
        stride: distance between consecutive window starts.
        max_n: windows with more non-ACGT bases than this are skipped (no track value).
        threshold: call threshold on the enhancer probability, in [0, 1].
        chroms: names or shell patterns of the sequences to scan; None scans all.
        regions: BED of regions to scan (shorter ones are widened to one window).
        exclude: BED of regions never scored (a blacklist).
        batch_size: windows per forward pass (None: see :func:`enhscan.engine.default_batch_size`).
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N``.
        dtype: ``auto``, ``fp32``, ``bf16``, ``fp16``.
        quantize: int8 dynamic quantization of the model's Linear layers (CPU only).
        chunk_bases: bases read from the genome at a time.
        force: overwrite outputs already in the output folder.
        progress: show a progress bar on stderr.
    """

    window: int | None = None
    stride: int = 200
    max_n: int = 0
    threshold: float | None = None
    chroms: list[str] | None = None
    regions: str | None = None
    exclude: str | None = None
    batch_size: int | None = None
    device: str = "auto"
    dtype: str = "auto"
    quantize: bool = False
    chunk_bases: int = 1_000_000
    force: bool = False
    progress: bool = True


@dataclass
class ChromResult:
    """Counts for one chromosome, kept in the run record."""

    length: int
    windows: int = 0
    scored: int = 0
    skipped_n: int = 0
    calls: int = 0
    uncovered_bp: int = 0


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


def check_output(out_dir: str | os.PathLike, force: bool) -> Path:
    """Check ``out_dir`` can take the outputs: not a file, no earlier outputs unless ``force``."""
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise EnhscanError(f"--out {out_dir} is a file; give a folder for the outputs")
    existing = [name for name in OUTPUTS.values() if (out_dir / name).exists()]
    if existing and not force:
        raise EnhscanError(
            f"{out_dir} already holds {', '.join(existing)}; use --force to overwrite, or "
            "choose another --out"
        )
    return out_dir


def make_output(out_dir: Path) -> None:
    """Create the output folder (once the inputs have been checked)."""
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise EnhscanError(f"cannot create output folder {out_dir}: {err.strerror}") from None
    if not os.access(out_dir, os.W_OK):
        raise EnhscanError(f"output folder {out_dir} is not writable; choose another --out")


def plan_scan(
    genome: Genome,
    window: int,
    stride: int,
    chroms: list[str] | None = None,
    regions: BedIntervals | None = None,
    exclude: BedIntervals | None = None,
) -> ScanPlan:
    """Decide the stretches to tile on each chosen chromosome (FASTA order).

    A chromosome shorter than one window is left out (listed in ``too_short``). With
    ``regions``, only they are scanned, each widened to at least one window; ``exclude`` is
    then cut out, and pieces shorter than a window are left unscored.
    """
    names = genome.names
    if chroms:
        try:
            names = select_chroms(names, chroms)
        except ValueError as err:
            shown = ", ".join(genome.names[:8]) + (" ..." if len(genome.names) > 8 else "")
            raise EnhscanError(
                f"--chroms {err} matches no sequence in {genome.path}; it has {shown}"
            ) from None
    plan = ScanPlan(window, stride, {})
    for chrom in names:
        length = genome.lengths[chrom]
        if length < window:
            plan.too_short.append(chrom)
            continue
        if regions is not None:
            wanted = regions.by_chrom.get(chrom)
            if not wanted:
                continue
            stretches = widen(wanted, window, length)
        else:
            stretches = [(0, length)]
        if exclude is not None and chrom in exclude.by_chrom:
            stretches = subtract(stretches, exclude.by_chrom[chrom])
        if stretches:
            plan.stretches[chrom] = stretches
    return plan


def scan_genome(
    genome_path: str | os.PathLike,
    model: str | os.PathLike | Classifier,
    out_dir: str | os.PathLike,
    settings: ScanSettings | None = None,
) -> dict:
    """Scan a genome and write ``scores.bw``, ``calls.narrowPeak`` and ``run.json`` to ``out_dir``.

    Args:
        genome_path: FASTA (plain or bgzip) or 2bit.
        model: an enhscan model folder, or a loaded :class:`Classifier`.
        out_dir: output folder (created if missing).
        settings: scan options; defaults as :class:`ScanSettings`.

    Returns:
        The run record (also written to ``run.json``).
    """
    settings = settings or ScanSettings()
    started = time.time()
    check_settings(settings)
    out_dir = check_output(out_dir, settings.force)
    classifier, scorer = load_scorer(model, settings)
    window = settings.window or classifier.metadata.window
    threshold = classifier.metadata.threshold if settings.threshold is None else settings.threshold
    device, dtype = scorer.device, scorer.dtype
    settings = replace(settings, batch_size=scorer.batch_size)  # the record shows what ran

    with open_genome(genome_path, index_dir=out_dir) as genome:
        regions, exclude = read_scan_beds(settings, genome)
        plan = plan_scan(genome, window, settings.stride, settings.chroms, regions, exclude)
        make_output(out_dir)
        for chrom in plan.too_short:
            log.warning(
                "%s (%d bp) is shorter than one window; not scored", chrom, genome.lengths[chrom]
            )
        scan_began = time.time()
        results = _run(genome, plan, scorer, out_dir, threshold, settings)
        scan_seconds = time.time() - scan_began
        record = _record(
            genome,
            classifier,
            plan,
            results,
            settings,
            threshold,
            device,
            dtype,
            started,
            scan_seconds,
            regions,
            exclude,
        )
    write_json(out_dir / OUTPUTS["record"], record)
    return record


def check_settings(settings: ScanSettings) -> None:
    """Refuse settings no scan can use."""
    if settings.stride <= 0 or (settings.window is not None and settings.window <= 0):
        raise EnhscanError("window and stride must be positive")
    if settings.threshold is not None and not 0 <= settings.threshold <= 1:
        raise EnhscanError(f"threshold must be in [0, 1], got {settings.threshold}")


def load_scorer(
    model: str | os.PathLike | Classifier, settings: ScanSettings
) -> tuple[Classifier, WindowScorer]:
    """Load the model (unless given loaded) and set it up on the device the settings ask for."""
    classifier = model if isinstance(model, Classifier) else load_classifier(model)
    device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    scorer = WindowScorer(classifier, device, dtype, settings.batch_size, settings.quantize)
    return classifier, scorer


def read_scan_beds(
    settings: ScanSettings, genome: Genome
) -> tuple[BedIntervals | None, BedIntervals | None]:
    """The --regions and --exclude BED files of ``settings``, read against ``genome``."""
    regions = _read_regions(settings.regions, genome)
    exclude = read_bed(settings.exclude, genome.lengths, clip=True) if settings.exclude else None
    return regions, exclude


def _read_regions(path: str | None, genome: Genome) -> BedIntervals | None:
    if path is None:
        return None
    regions = read_bed(path, genome.lengths)
    if regions.unmatched:
        names = ", ".join(sorted(regions.unmatched))
        if not regions.count:
            raise EnhscanError(
                f"no chromosome of --regions {path} ({names}) is in {genome.path}; check both "
                "are the same assembly"
            )
        log.warning("--regions: skipping intervals on chromosomes not in the genome: %s", names)
    return regions


def _run(
    genome: Genome,
    plan: ScanPlan,
    scorer: WindowScorer,
    out_dir: Path,
    threshold: float,
    settings: ScanSettings,
) -> dict[str, ChromResult]:
    from tqdm import tqdm

    bigwig_path = out_dir / OUTPUTS["bigwig"]
    calls_path = out_dir / OUTPUTS["calls"]
    tmp_bigwig, tmp_calls = partial_path(bigwig_path), partial_path(calls_path)
    results: dict[str, ChromResult] = {}
    bar = tqdm(
        total=plan.n_windows,
        unit="win",
        desc="scanning",
        disable=not settings.progress,
        dynamic_ncols=True,
        smoothing=0.05,
    )
    writer = BigWigWriter(tmp_bigwig, list(genome.lengths.items()))
    jobs = OrderedWriter()
    calls_out = open(tmp_calls, "w")

    def write_chrom(tiling: ChromTiling, scores: np.ndarray) -> None:
        # On the writer thread, one chromosome at a time, in FASTA order.
        done = ~np.isnan(scores)
        writer.add(tiling.chrom, tiling.bin_starts[done], tiling.bin_ends[done], scores[done])
        calls = call_regions(tiling.bin_starts, tiling.bin_ends, scores, threshold)
        first = sum(r.calls for r in results.values()) + 1
        calls_out.write(format_narrowpeak(tiling.chrom, calls, first_index=first))
        results[tiling.chrom] = ChromResult(
            length=tiling.length,
            windows=len(tiling),
            scored=int(done.sum()),
            skipped_n=int((~done).sum()),
            calls=len(calls),
            uncovered_bp=tiling.uncovered,
        )

    def on_chrom(tiling: ChromTiling, scores: np.ndarray) -> None:
        jobs.submit(write_chrom, tiling, scores)

    def on_progress(n: int) -> None:
        bar.update(n)

    tilings = (
        tile_chrom(chrom, genome.lengths[chrom], stretches, plan.window, plan.stride)
        for chrom, stretches in plan.stretches.items()
    )
    chunks = prepare_chunks(genome, tilings, scorer, settings.max_n, settings.chunk_bases)
    try:
        score_chunks(in_background(chunks, READ_AHEAD), scorer, on_chrom, on_progress)
        jobs.finish()
        calls_out.close()
        writer.close()
        bar.close()
        os.replace(tmp_bigwig, bigwig_path)
        os.replace(tmp_calls, calls_path)
    except BaseException:
        jobs.abandon()
        calls_out.close()
        writer.close()
        bar.close()
        tmp_bigwig.unlink(missing_ok=True)
        tmp_calls.unlink(missing_ok=True)
        raise
    return results


def _record(
    genome: Genome,
    classifier: Classifier,
    plan: ScanPlan,
    results: dict[str, ChromResult],
    settings: ScanSettings,
    threshold: float,
    device,
    dtype,
    started: float,
    scan_seconds: float,
    regions: BedIntervals | None,
    exclude: BedIntervals | None,
) -> dict:
    wall = time.time() - started
    scored = sum(r.scored for r in results.values())
    meta = classifier.metadata
    return {
        "enhscan_version": __version__,
        "command": " ".join(sys.argv),
        "started": datetime.fromtimestamp(started, timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "windows_per_second": round(scored / wall, 2) if wall > 0 else None,
        # The scan itself (reading, scoring, writing), without loading the model.
        "scan_seconds": round(scan_seconds, 3),
        "scan_windows_per_second": round(scored / scan_seconds, 2) if scan_seconds > 0 else None,
        "genome": {
            "path": str(Path(genome.path).resolve()),
            "file_bytes": Path(genome.path).stat().st_size,
            "sequences": len(genome.lengths),
            "total_bp": sum(genome.lengths.values()),
            "sizes": genome.lengths,
        },
        "model": {
            "path": str(classifier.path.resolve()) if classifier.path else None,
            "identity": classifier.identity,
            "family": meta.family,
            "window": meta.window,
            "labels": meta.labels,
            "positive_label": meta.labels[meta.positive_index],
        },
        "parameters": {
            "window": plan.window,
            "stride": plan.stride,
            "max_n": settings.max_n,
            "threshold": threshold,
            "chroms": settings.chroms,
            "regions": settings.regions,
            "exclude": settings.exclude,
            "batch_size": settings.batch_size,
            "device": str(device),
            "dtype": str(dtype).removeprefix("torch."),
            "quantize": settings.quantize,
        },
        "windows": {
            "total": sum(r.windows for r in results.values()),
            "scored": scored,
            "skipped_n": sum(r.skipped_n for r in results.values()),
        },
        "calls": sum(r.calls for r in results.values()),
        "chromosomes_too_short": plan.too_short,
        "regions": _bed_summary(regions),
        "exclude": _bed_summary(exclude),
        "per_chromosome": {chrom: asdict(r) for chrom, r in results.items()},
        "outputs": {k: v for k, v in OUTPUTS.items() if k != "record"},
        "versions": package_versions("pyBigWig", "pyfaidx"),
    }


def _bed_summary(bed: BedIntervals | None) -> dict | None:
    if bed is None:
        return None
    return {"intervals": bed.count, "unmatched_chromosomes": bed.unmatched, "clipped": bed.clipped}
