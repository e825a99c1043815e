"""Scanning a genome: tile windows, score them, write the track, the calls and a run record.

This module ties the parts of :mod:`enhscan.scan` together. The main process checks the output
folder, opens the genome (building a missing index), plans the scan, decides the backend and
opens the shard store; it hands what every process must agree on (the compute options it
decided and the shards already finished) to the others. Every process then scores its share
of the shards (:mod:`enhscan.scan.pipeline`), and the main one assembles the outputs
(:mod:`enhscan.scan.outputs`) under temporary names, renamed only when all are complete.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from contextlib import ExitStack
from dataclasses import dataclass, replace
from pathlib import Path

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer, resolve_backend
from enhscan.errors import EnhscanError
from enhscan.io.atomic import make_output_folder, write_json
from enhscan.io.bed import BedIntervals
from enhscan.io.fasta import Genome, open_genome
from enhscan.model.folder import Classifier, load_classifier
from enhscan.processes import Processes
from enhscan.scan.outputs import (
    OUTPUTS,
    TaskColumn,
    decide_calling,
    write_browser_files,
    write_outputs,
)
from enhscan.scan.pipeline import score_shards
from enhscan.scan.plan import plan_with_shards
from enhscan.scan.record import FinishedScan, run_record
from enhscan.scan.resume import open_store, resumed_compute, scan_identity
from enhscan.scan.settings import ScanPlan, ScanSettings, ScanSpec, call_rule, check_settings
from enhscan.scan.shards import Shard, ShardStore
from enhscan.scan.tasks import default_task, write_task_outputs

log = logging.getLogger(__name__)


@dataclass
class _Scan:
    """A scan ready to score, as one process sees it."""

    genome: Genome
    plan: ScanPlan
    shards: list[Shard]
    regions: BedIntervals | None
    exclude: BedIntervals | None
    spec: ScanSpec  # resolved: the window and task that run
    scorer: WindowScorer
    done: list[int]  # shards finished by an earlier run


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
    procs = Processes.current(cpu=settings.compute.one_named_device)
    classifier = model if isinstance(model, Classifier) else load_classifier(model)
    store = ShardStore(out_dir)
    with ExitStack() as stack:
        scan = _start(procs, stack, genome_path, out_dir, classifier, settings, store)
        scan_began = time.time()
        pending = [s for s in scan.shards if s.index not in set(scan.done)]
        try:
            stages = score_shards(
                scan.genome,
                scan.plan,
                pending[procs.rank :: procs.world],
                scan.scorer,
                store,
                scan.spec,
                settings.run,
                procs,
            )
        except BaseException:
            if procs.world == 1:  # others may still be writing shards into a shared store
                store.remove_if_empty()
            raise
        procs.wait_for_everyone()
        if not procs.is_main:
            return None
        finished = _finish(scan, classifier, settings, store, out_dir)
        record = run_record(
            replace(
                finished,
                started=started,
                scan_seconds=time.time() - scan_began,
                processes=procs.world,
                stages=stages.record(),
            )
        )
    write_json(out_dir / OUTPUTS["record"], record)
    if not settings.run.keep_shards:
        store.remove()
    return record


def _start(procs, stack, genome_path, out_dir, classifier, settings, store) -> _Scan:
    """Open, plan and set up the scan on every process (module docstring); the main process
    decides, the others follow."""
    decided: dict = {}

    def on_main() -> tuple[ComputeOptions, list[int]]:
        check_output(out_dir, settings.run.force)
        decided["genome"] = stack.enter_context(open_genome(genome_path, index_dir=out_dir))
        decided["scan"] = scan = _set_up(
            decided["genome"], classifier, settings, resumed_compute(store, settings), procs
        )
        identity = scan_identity(
            scan.genome, classifier, scan.plan, scan.spec, scan.scorer.backend, settings.run
        )
        make_output_folder(out_dir)
        scan.done = open_store(store, identity, settings.run)
        return scan.scorer.backend.as_options(settings.compute.device), scan.done

    compute, done = procs.on_main(on_main)
    if procs.is_main:
        scan = decided["scan"]
        if scan.spec.stride > scan.spec.window:
            log.warning(
                "the stride (%d bp) is larger than the window (%d bp): the bases between "
                "windows are not scored and the track has gaps; use --stride %d or less to "
                "cover every base",
                scan.spec.stride,
                scan.spec.window,
                scan.spec.window,
            )
        for chrom in scan.plan.too_short:
            log.warning(
                "%s (%d bp) is shorter than one window; not scored",
                chrom,
                scan.genome.lengths[chrom],
            )
        return scan
    genome = stack.enter_context(open_genome(genome_path, index_dir=out_dir))
    scan = _set_up(genome, classifier, settings, compute, procs)
    scan.done = done
    return scan


def _set_up(genome, classifier, settings, compute: ComputeOptions, procs) -> _Scan:
    """Plan the scan and build its scorer, with the compute options given."""
    window = settings.scan.window or classifier.metadata.window
    plan, shards, regions, exclude = plan_with_shards(
        genome, window, settings.scan, settings.run.shard_windows
    )
    backend = resolve_backend(classifier, compute, procs.device)
    scorer = WindowScorer(classifier, backend, task=settings.scan.task)
    spec = replace(settings.scan, window=window, task=scorer.task)
    return _Scan(genome, plan, shards, regions, exclude, spec, scorer, [])


def _finish(scan: _Scan, classifier, settings, store, out_dir) -> FinishedScan:
    """Call the scored windows and write the outputs (main process). What the scan knows
    of itself, but its timing, processes and stages (left empty)."""
    spec = scan.spec
    store, null, tasks, task_tracks = _every_task(scan, classifier, store, out_dir)
    calling = decide_calling(scan.shards, store, call_rule(spec), null, spec.track)
    if calling.significance.empirical is not None:
        _warn_empirical(classifier, calling)
    results, scored_by_shard = write_outputs(
        scan.genome, scan.plan, scan.shards, store, out_dir, calling, spec.formats
    )
    browser = write_browser_files(
        out_dir, scan.genome, spec.formats, calling, spec.assembly, task_tracks
    )
    finished = set(scan.done)
    return FinishedScan(
        genome=scan.genome,
        classifier=classifier,
        plan=scan.plan,
        spec=spec,
        backend=scan.scorer.backend,
        calling=calling,
        results=results,
        regions=scan.regions,
        exclude=scan.exclude,
        started=0.0,
        scan_seconds=0.0,
        scored_now=sum(n for i, n in scored_by_shard.items() if i not in finished),
        processes=1,
        shards={
            "total": len(scan.shards),
            "resumed": len(scan.done),
            "windows_each": settings.run.shard_windows,
        },
        browser=browser,
        stages={},
        tasks=tasks,
    )


def _every_task(scan: _Scan, classifier: Classifier, store: ShardStore, out_dir: Path):
    """With ``--task all``, write each task's outputs (:mod:`enhscan.scan.tasks`). Returns the
    scores and null of the task the top-level outputs show, each task's record and tracks."""
    if not scan.scorer.outputs:
        # An earlier --task all scan's folders (--force was given) would be left stale.
        shutil.rmtree(out_dir / OUTPUTS["tasks"], ignore_errors=True)
        return store, _null_of(classifier, scan.spec), None, ()
    labels = classifier.metadata.labels
    shown = default_task(labels)
    null = _null_of(classifier, replace(scan.spec, task=shown))
    tasks, tracks = write_task_outputs(
        scan.genome, scan.plan, scan.shards, store, out_dir, labels, scan.spec, (shown, null)
    )
    return TaskColumn(store, labels.index(shown)), null, tasks, tracks


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


def load_scorer(
    model: str | os.PathLike | Classifier,
    compute: ComputeOptions,
    task: str | None = None,
    launched_on=None,
) -> tuple[Classifier, WindowScorer]:
    """Load the model (unless given loaded) and its scorer, computing as ``compute`` asks
    (``launched_on``: the device the launcher gave this process)."""
    classifier = model if isinstance(model, Classifier) else load_classifier(model)
    backend = resolve_backend(classifier, compute, launched_on)
    return classifier, WindowScorer(classifier, backend, task=task)


def _warn_empirical(classifier: Classifier, calling) -> None:
    """Say that the scan's own scores made the null, louder when it called a lot."""
    from enhscan.model.null import has_null

    where = classifier.path or "the model"
    if not has_null(classifier.path):  # else a warning already said why it was not used
        log.warning(
            "%s has no background null: p-values come from the scan's own scores (an "
            "empirical null); store one with `enhscan calibrate MODEL --genome REF.fa`",
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


def _null_of(classifier: Classifier, spec: ScanSpec):
    """The model folder's background sample for this scan's strands, or None (``spec``
    resolved: the window and task that run)."""
    from enhscan.model.null import load_null

    null = load_null(classifier.path, classifier.identity)
    if null is None:
        return None
    if null.info.get("task") != spec.task:
        log.warning(
            "the background null of %s is of task %s, this scan's is %s: p-values come from "
            "the scan's own scores instead",
            classifier.path,
            null.info.get("task"),
            spec.task,
        )
        return None
    if null.info.get("window") not in (None, spec.window):
        log.warning(
            "the background null of %s was scored on %s bp windows, this scan's are %s bp: "
            "p-values come from the scan's own scores instead",
            classifier.path,
            null.info.get("window"),
            spec.window,
        )
        return None
    return null.for_strands(spec.rc)
