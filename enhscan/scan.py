"""Scanning a genome: tile windows, score them, write the track, the calls and a run record.

This module ties the pure parts (tiling, calling), the I/O (FASTA, BED, bigWig) and the engine
together. The genome is read one chunk of one chromosome at a time, and each chromosome's
track and calls are written as soon as it is finished, so memory stays flat whatever the
genome size. Outputs are written under temporary names and renamed only when the run is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from dataclasses import replace
from pathlib import Path

import torch

from enhscan.calling import CallRule
from enhscan.engine import WindowScorer, resolve_device, resolve_dtype
from enhscan.errors import EnhscanError
from enhscan.intervals import subtract, widen
from enhscan.io.atomic import write_json
from enhscan.io.bed import BedIntervals, read_bed
from enhscan.io.fasta import Genome, open_genome
from enhscan.model.folder import ALL_TASKS, Classifier, load_classifier
from enhscan.naming import select_chroms
from enhscan.outputs import (
    OUTPUTS,
    TRACK_FORMATS,
    TRACK_VALUES,
    decide_calling,
    run_record,
    write_browser_files,
    write_outputs,
)
from enhscan.processes import Processes
from enhscan.scan_settings import ScanPlan, ScanSettings
from enhscan.shards import FORMAT as SHARD_FORMAT
from enhscan.shards import ShardStore, make_shards
from enhscan.stream import score_shards

log = logging.getLogger(__name__)


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
    out_dir: str | os.PathLike,
    model: str | os.PathLike | Classifier,
    settings: ScanSettings | None = None,
) -> dict | None:
    """Scan a genome and write ``scores.bw``, ``calls.narrowPeak`` and ``run.json`` to ``out_dir``.

    Under ``accelerate launch`` each process scores its share of the shards on its own
    device and the main process writes the outputs; the files are the same, byte for byte,
    whatever the number of processes.

    Args:
        genome_path: FASTA (plain or bgzip) or 2bit.
        out_dir: output folder (created if missing).
        model: an enhscan model folder, or a loaded :class:`Classifier`.
        settings: scan options; defaults as :class:`ScanSettings`.

    Returns:
        The run record (also written to ``run.json``); None on processes other than the main.
    """
    settings = settings or ScanSettings()
    started = time.time()
    check_settings(settings)
    out_dir = Path(out_dir)
    # Processes on one named GPU (--device cuda:N) share it and talk over gloo: NCCL refuses
    # two ranks on one GPU.
    procs = Processes.current(cpu=settings.device == "cpu" or settings.device.startswith("cuda:"))
    classifier, scorer = load_scorer(model, settings, procs.device)
    window = settings.window or classifier.metadata.window
    rule = call_rule(settings)
    store = ShardStore(out_dir)

    # The main process checks the output folder, builds a missing FASTA index and reads the
    # shard store; every process then knows the same batch size and finished shards.
    def preflight() -> tuple[int, list[int]]:
        check_output(out_dir, settings.force)
        with open_genome(genome_path, index_dir=out_dir) as genome:
            plan, shards, regions, exclude = _plan(genome, window, settings)
            return _open_store(store, genome, classifier, plan, settings, scorer)

    batch_size, kernels, done = _on_main(procs, preflight)
    scorer.batch_size, scorer.kernels = batch_size, kernels
    settings = replace(settings, batch_size=batch_size)  # the record shows what ran

    with open_genome(genome_path, index_dir=out_dir) as genome:
        plan, shards, regions, exclude = _plan(genome, window, settings)
        if procs.is_main:
            for chrom in plan.too_short:
                log.warning(
                    "%s (%d bp) is shorter than one window; not scored",
                    chrom,
                    genome.lengths[chrom],
                )
        finished = set(done)
        pending = [s for s in shards if s.index not in finished]
        scan_began = time.time()
        stages = score_shards(
            genome, plan, pending[procs.rank :: procs.world], scorer, store, settings, procs
        )
        procs.wait_for_everyone()
        if not procs.is_main:
            return None
        calling = decide_calling(
            shards, store, rule, _null_of(classifier, settings, scorer.task), settings.track
        )
        if calling.significance.empirical is not None:
            _warn_empirical(classifier, calling)
        results, scored_by_shard = write_outputs(
            genome, plan, shards, store, out_dir, calling, settings.formats
        )
        browser = write_browser_files(out_dir, genome, settings.formats, calling, settings.assembly)
        scan_seconds = time.time() - scan_began
        scored_now = sum(n for i, n in scored_by_shard.items() if i not in finished)
        record = run_record(
            genome,
            classifier,
            plan,
            results,
            settings,
            calling,
            scorer.device,
            scorer.dtype,
            started,
            scan_seconds,
            scored_now,
            regions,
            exclude,
            kernels=scorer.kernels,
            processes=procs.world,
            shards={
                "total": len(shards),
                "resumed": len(done),
                "windows_each": settings.shard_windows,
            },
            browser=browser,
            stages=stages.record(),
        )
    write_json(out_dir / OUTPUTS["record"], record)
    if not settings.keep_shards:
        store.remove()
    return record


def _plan(genome: Genome, window: int, settings: ScanSettings):
    regions, exclude = read_scan_beds(settings, genome)
    plan = plan_scan(genome, window, settings.stride, settings.chroms, regions, exclude)
    shards = make_shards(plan.stretches, plan.window, plan.stride, settings.shard_windows)
    return plan, shards, regions, exclude


def _on_main(procs: Processes, job):
    """Run ``job`` on the main process and hand its result, or its error, to every process."""
    outcome = None
    if procs.is_main:
        try:
            outcome = (job(), None)
        except EnhscanError as err:
            outcome = (None, str(err))
    result, error = procs.broadcast(outcome)
    if error is not None:
        raise EnhscanError(error)
    return result


def scan_identity(
    genome: Genome,
    classifier: Classifier,
    plan: ScanPlan,
    settings: ScanSettings,
    scorer: WindowScorer,
    batch_size: int,
    kernels: str,
) -> dict:
    """What a scan is, as recorded in its shard manifest: a resume must match it."""
    stretches = json.dumps(plan.stretches, sort_keys=True).encode()
    sizes = json.dumps(list(genome.lengths.items())).encode()
    return {
        "format": SHARD_FORMAT,
        "genome": {
            "path": str(Path(genome.path).resolve()),
            "sizes_sha256": hashlib.sha256(sizes).hexdigest(),
        },
        "model": classifier.identity,
        "window": plan.window,
        "stride": plan.stride,
        "max_n": settings.max_n,
        "plan": hashlib.sha256(stretches).hexdigest(),
        "dtype": str(scorer.dtype).removeprefix("torch."),
        "quantize": settings.quantize,
        "rc": settings.rc,
        "task": scorer.task,
        "batch_invariant": settings.batch_invariant,
        # Fused and plain kernels differ in the last bits: a resume keeps the ones it had.
        "kernels": kernels,
        # Without batch invariance the batch size changes the last bits: a resume keeps it.
        "batch_size": None if settings.batch_invariant else batch_size,
        "shard_windows": settings.shard_windows,
    }


def _open_store(
    store: ShardStore,
    genome: Genome,
    classifier: Classifier,
    plan: ScanPlan,
    settings: ScanSettings,
    scorer: WindowScorer,
) -> tuple[int, list[int]]:
    """Start or continue the scan's shard store; return (batch size, kernels, finished
    shards)."""
    batch_size, kernels = scorer.batch_size, scorer.kernels
    resuming = store.exists() and settings.resume
    if resuming and settings.batch_size is None and not settings.batch_invariant:
        # Keep the batches of the interrupted run, so the resumed one scores identically.
        batch_size = store.manifest().get("batch_size", batch_size)
    if resuming and settings.kernels == "auto" and store.recorded("kernels") == "plain":
        kernels = "plain"  # the same goes for the kernels; plain ones run anywhere
    identity = scan_identity(genome, classifier, plan, settings, scorer, batch_size, kernels)
    if store.exists() and settings.resume:
        differences = store.differences(identity)
        if differences:
            raise EnhscanError(
                f"cannot resume the scan in {store.folder.parent}: "
                + "; ".join(differences)
                + ". Rerun with the same settings, or start again with --force"
            )
        store.clean_partials()
        return batch_size, kernels, sorted(store.done())
    if store.exists() and not settings.force:
        raise EnhscanError(
            f"{store.folder.parent} holds an unfinished scan ({len(store.done())} shards "
            "done); continue it with --resume, or start again with --force"
        )
    make_output(Path(store.folder.parent))
    store.create(identity)
    return batch_size, kernels, []


def check_settings(settings: ScanSettings) -> None:
    """Refuse settings no scan can use."""
    if settings.stride <= 0 or (settings.window is not None and settings.window <= 0):
        raise EnhscanError("window and stride must be positive")
    call_rule(settings)
    if settings.track not in TRACK_VALUES:
        raise EnhscanError(f"--track takes {' or '.join(TRACK_VALUES)}, not {settings.track!r}")
    unknown = [f for f in settings.formats if f not in TRACK_FORMATS]
    if unknown or not settings.formats:
        raise EnhscanError(
            f"unknown track format {', '.join(unknown) or '(none)'}; use "
            f"{' and/or '.join(TRACK_FORMATS)}"
        )
    if settings.rc not in (None, "mean", "max"):
        raise EnhscanError(f"--rc takes mean or max, not {settings.rc!r}")
    if settings.task == ALL_TASKS:
        raise EnhscanError(
            "a scan writes one task's track: give one --task (every task of regions or "
            "sequences at once: enhscan predict --task all)"
        )


def call_rule(settings: ScanSettings) -> CallRule:
    """The calling rule the settings ask for (FDR 0.05 unless another is given)."""
    try:
        return CallRule.from_options(settings.threshold, settings.call_top, settings.fdr)
    except ValueError as err:
        raise EnhscanError(str(err)) from None


def _warn_empirical(classifier: Classifier, calling) -> None:
    """Say that the scan's own scores made the null, louder when it called a lot."""
    where = classifier.path or "the model"
    log.warning(
        "%s has no background null: p-values come from the scan's own scores (an empirical "
        "null); store one with `enhscan calibrate MODEL --genome REF.fa`",
        where,
    )
    share = calling.windows_called / max(calling.significance.m, 1)
    if calling.rule.kind == "fdr" and share > 0.05:
        log.warning(
            "the scan's own null called %.0f%% of the windows: that many enhancers is unlikely, "
            "and the scan's background may not be the single peak that null assumes; trust "
            "these calls only after `enhscan calibrate %s --genome REF.fa`",
            100 * share,
            where,
        )


def _null_of(classifier: Classifier, settings: ScanSettings, task: str | None):
    """The model folder's background sample for this scan's strands, or None."""
    from enhscan.model.null import load_null

    null = load_null(classifier.path, classifier.identity)
    if null is None:
        return None
    if null.info.get("task") != task:
        log.warning(
            "the background null of %s is of task %s, this scan's is %s: p-values come from "
            "the scan's own scores instead",
            classifier.path,
            null.info.get("task"),
            task,
        )
        return None
    if null.info.get("window") not in (None, settings.window or classifier.metadata.window):
        log.warning(
            "the background null of %s was scored on %s bp windows, this scan's are %s bp: "
            "p-values come from the scan's own scores instead",
            classifier.path,
            null.info.get("window"),
            settings.window,
        )
        return None
    return null.for_strands(settings.rc)


def load_scorer(
    model: str | os.PathLike | Classifier,
    settings: ScanSettings,
    launched_on: torch.device | None = None,
) -> tuple[Classifier, WindowScorer]:
    """Load the model (unless given loaded) and set it up on the device the settings ask for.

    ``launched_on``: the device accelerate gave this process; used unless the settings name
    a particular one (``cpu``, ``cuda:N``).
    """
    classifier = model if isinstance(model, Classifier) else load_classifier(model)
    if launched_on is not None and settings.device in ("auto", "cuda"):
        device = launched_on
    else:
        device = resolve_device(settings.device)
    dtype = resolve_dtype(settings.dtype, device)
    scorer = WindowScorer(
        classifier,
        device,
        dtype,
        settings.batch_size,
        settings.quantize,
        batch_invariant=settings.batch_invariant,
        compile=settings.compile,
        kernels=settings.kernels,
        task=settings.task,
    )
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
