"""`enhscan pretrain --targets`: supervised multi-task pretraining on regulatory element atlases.

DeepSEA, Basset and Sei learned regulatory sequence from many chromatin profiles at once, one
binary target per profile; this does the same for a DNABERT-2-family model or the CNN. Steps:
read the elements and their tasks (:mod:`enhscan.training.multitask`), draw training,
validation and test windows on separate chromosomes
(:mod:`enhscan.training.multitask_windows`), train with binary cross-entropy per task
(:func:`enhscan.training.trainer.fit`: checkpoints, resume, early stopping on the validation
mean PR-AUC), and measure every task on the held-out test chromosomes against a GC/CpG
logistic regression fitted per task on the same training windows.

Output folder::

    OUT/                  a multi-task model folder: `enhscan genome --task NAME` scans one
                          task; `enhscan train --base OUT` fine-tunes an enhancer classifier
                          from it (the multi-task head replaced by a new one)
    OUT/pretraining/      metrics.json, task_aucs.png, data_summary.json, log.jsonl,
                          checkpoints
    OUT/background_null.* the ``any`` task's background null (test chromosomes)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import sys
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.io.atomic import write_json
from enhscan.model.folder import (
    Classifier,
    new_classifier,
    save_classifier,
    set_pooling,
    start_front_end,
)
from enhscan.model.metadata import ANY_TASK, METADATA_NAME
from enhscan.training.multitask import TargetOptions, read_targets
from enhscan.training.runs import check_out_folder
from enhscan.training.trainer import TrainSettings, both_strand_probabilities, fit
from enhscan.versions import package_versions

log = logging.getLogger(__name__)

REPORT_DIR = "pretraining"


@dataclass
class WindowOptions:
    """Which windows to draw (see :func:`enhscan.training.multitask_windows.draw_split`)."""

    window: int = 1000
    train_windows: int = 40_000
    val_windows: int = 2_000
    test_windows: int = 5_000
    element_share: float = 0.5
    shift: int = 200
    max_n: int = 0
    exclude: str | None = None
    chroms: list[str] | None = None
    val_chroms: list[str] | None = None
    test_chroms: list[str] | None = None
    seed: int = 0


def pretrain_multitask(
    genome_paths: list[str],
    out_dir: str | os.PathLike,
    targets: TargetOptions,
    windows: WindowOptions,
    settings: TrainSettings,
    *,
    arch: str = "small",
    pooling: str | None = None,
    front_end: str | None = None,
    null_windows: int = 20_000,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
) -> dict:
    """Train a multi-task model (module docstring); return the report (also written).

    Every process of an ``accelerate launch`` draws the same windows and trains its share of
    each batch; the main process alone writes files and measures the test windows. With
    ``null_windows``, the finished model's default task (``any``) also gets a background null
    of that many random windows of the test chromosomes (:mod:`enhscan.calibration`).
    ``front_end``: a CNN folder whose convolution blocks a hybrid starts from
    (:func:`enhscan.model.folder.start_front_end`).
    """
    from accelerate import PartialState

    from enhscan.io.fasta import open_genomes
    from enhscan.processes import on_cpu

    state = PartialState(cpu=on_cpu(settings.cpu))
    main = state.is_main_process
    out_dir = Path(out_dir)
    report_dir = out_dir / REPORT_DIR
    _check_out(out_dir, resume, force, main)  # every process checks; the main one clears
    state.wait_for_everyone()
    with open_genomes(genome_paths) as genome:
        elements = read_targets(targets, genome.lengths)
        splits = draw_splits(
            genome, elements, targets.centre_bin, windows, train_flank=settings.shift_augment
        )
    summary = _data_summary(elements, splits)
    _check_same_data(report_dir, summary, resume)
    if main:
        report_dir.mkdir(parents=True, exist_ok=True)
        write_json(report_dir / "data_summary.json", summary)
    classifier = new_multitask(arch, elements.tasks, windows.window, windows.seed, pooling)
    if front_end:
        start_front_end(classifier, front_end)
    result = fit(
        classifier,
        splits["train"].seqs,
        splits["train"].targets,
        splits["val"].seqs,
        splits["val"].targets,
        settings,
        report_dir / "work",
        resume=resume,
        progress=progress,
    )
    report = None
    if main:
        report = _finish(classifier, splits, summary, result, settings, out_dir)
        started = classifier.metadata.provenance.get("front_end")
        classifier.metadata.provenance = _provenance(genome_paths, targets, windows, settings, arch)
        if started:
            classifier.metadata.provenance["front_end"] = started
        save_classifier(classifier, out_dir)
        if null_windows and ANY_TASK in elements.tasks:
            report["background_null"] = _store_null(
                classifier, genome_paths, windows, null_windows, state.device, progress, out_dir
            )
        write_json(report_dir / "metrics.json", report)
        shutil.rmtree(report_dir / "work" / "checkpoint", ignore_errors=True)
    state.wait_for_everyone()
    return report


def _data_summary(elements, splits: dict) -> dict:
    """Tasks, elements and windows of each split, with a fingerprint of the windows and their
    targets: a resume must find the same."""
    digest = hashlib.sha256()
    for name in ("train", "val", "test"):
        digest.update(json.dumps(splits[name].positions).encode())
        digest.update(np.ascontiguousarray(splits[name].targets).tobytes())
    return {
        "tasks": elements.tasks,
        "elements_per_task": elements.counts(),
        "unmatched_chromosomes": elements.unmatched,
        **{name: split.summary(elements.tasks) for name, split in splits.items()},
        "fingerprint": "sha256:" + digest.hexdigest(),
    }


def _check_same_data(report_dir: Path, summary: dict, resume: bool) -> None:
    """On a resume, refuse other windows or targets than the interrupted run's."""
    path = report_dir / "data_summary.json"
    if resume and path.exists():
        before = json.loads(path.read_text()).get("fingerprint")
        if before not in (None, summary["fingerprint"]):
            raise EnhscanError(
                f"the windows or targets differ from those of the run in {report_dir.parent} "
                "(other --targets, window counts, sequences or seed); rerun with the same "
                "options, or start again with --force"
            )


def _finish(classifier, splits, summary, result, settings: TrainSettings, out_dir: Path) -> dict:
    """Test metrics of the model and of the GC/CpG baseline, the plot, the metadata."""
    from enhscan.plots import plot_task_aucs

    tasks = classifier.metadata.labels
    report = {
        "model": test_report(
            classifier, splits["test"], settings.eval_batch_size, settings.rc_augment
        ),
        "baseline_gc_cpg": gc_cpg_report(splits["train"], splits["test"], tasks, settings.seed),
        "history": result.history,
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "data": summary,
    }
    classifier.metadata.metrics = {
        "test": _means(report["model"]),
        "baseline_gc_cpg_test": _means(report["baseline_gc_cpg"]),
    }
    plot_task_aucs(
        {"model": report["model"]["per_task"], "GC/CpG": report["baseline_gc_cpg"]["per_task"]},
        out_dir / REPORT_DIR / "task_aucs.png",
    )
    return report


def _store_null(
    classifier, genome_paths, windows: WindowOptions, n: int, device, progress, out_dir
):
    """The ``any`` task's background null on the test chromosomes, stored in the folder."""
    from enhscan.backend import ComputeOptions
    from enhscan.calibration import compute_null
    from enhscan.engine import WindowScorer
    from enhscan.io.bed import read_bed
    from enhscan.io.fasta import open_genomes
    from enhscan.model.null import save_null

    with open_genomes(genome_paths) as genome:
        exclude = None
        if windows.exclude:
            exclude = read_bed(windows.exclude, genome.lengths, clip=True).by_chrom
        null = compute_null(
            classifier,
            genome,
            windows=n,
            chroms=_chroms(genome, windows.test_chroms, "--test-chroms"),
            exclude=exclude,
            max_n=windows.max_n,
            seed=windows.seed,
            scorer=WindowScorer(classifier, ComputeOptions(device=str(device)), task=ANY_TASK),
            progress=progress,
        )
    save_null(out_dir, null)
    return {k: v for k, v in null.info.items() if k != "versions"}


def draw_splits(
    genome, elements, centre_bin: int, options: WindowOptions, train_flank: int = 0
) -> dict:
    """Training, validation and test windows, each split on its own chromosomes. Training
    windows are ``train_flank`` bases wider on each side (for shift augmentation): the same
    centre, so the same targets."""
    from enhscan.io.bed import read_bed
    from enhscan.training.multitask_windows import draw_split

    held = {"val": _chroms(genome, options.val_chroms, "--val-chroms")}
    held["test"] = _chroms(genome, options.test_chroms, "--test-chroms")
    if set(held["val"]) & set(held["test"]):
        raise EnhscanError("--val-chroms and --test-chroms must not share a sequence")
    chosen = _chroms(genome, options.chroms, "--chroms") if options.chroms else genome.names
    train = [c for c in chosen if c not in held["val"] + held["test"]]
    if not train:
        raise EnhscanError("no sequence is left for training after --val-chroms and --test-chroms")
    exclude = (
        read_bed(options.exclude, genome.lengths, clip=True).by_chrom if options.exclude else None
    )
    counts = {
        "train": options.train_windows,
        "val": options.val_windows,
        "test": options.test_windows,
    }
    chroms = {"train": train, **held}
    width = {"train": options.window + 2 * train_flank}
    return {
        name: draw_split(
            genome,
            elements,
            chroms[name],
            counts[name],
            width.get(name, options.window),
            centre_bin=centre_bin,
            element_share=options.element_share,
            shift=options.shift,
            max_n=options.max_n,
            exclude=exclude,
            seed=options.seed * 3 + k,
        )
        for k, name in enumerate(("train", "val", "test"))
    }


def new_multitask(
    arch: str, tasks: list[str], window: int, seed: int, pooling: str | None = None
) -> Classifier:
    """A fresh multi-task model: one output per task, metadata marking it multi-label;
    ``pooling`` as :func:`enhscan.model.folder.set_pooling`."""
    if len(tasks) < 2:
        raise EnhscanError(
            f"multi-task training needs at least two tasks, got {len(tasks)} ({', '.join(tasks)})"
        )
    classifier = new_classifier(arch, window=window, seed=seed, num_labels=len(tasks))
    classifier.metadata.labels = list(tasks)
    classifier.metadata.positive_index = 0
    classifier.metadata.task_type = "multilabel"
    set_pooling(classifier, pooling)
    return classifier


def test_report(classifier: Classifier, split, batch_size: int, both_strands: bool) -> dict:
    """Per-task and mean PR-AUC / ROC-AUC of the model on the test windows (each window's
    probabilities averaged over its two strands with ``both_strands``)."""
    from enhscan.metrics import multilabel_metrics
    from enhscan.sequence import reverse_complement

    encode = classifier.encoder.encode
    reverse = encode([reverse_complement(s) for s in split.seqs]) if both_strands else None
    probs = both_strand_probabilities(
        classifier.network,
        encode(split.seqs),
        reverse,
        classifier.encoder.pad_id,
        batch_size,
        _device(classifier),
    )
    return _with_open_vs_closed(
        multilabel_metrics(split.targets, probs, classifier.metadata.labels).to_dict(),
        split,
        probs,
        classifier.metadata.labels,
    )


def _with_open_vs_closed(report: dict, split, probs: np.ndarray, tasks: list[str]) -> dict:
    """Add ``elements_vs_closed``: the ROC-AUC and PR-AUC of the ``any`` output between the
    element-centred windows and the random windows that overlap no element at their centre
    (open chromatin against closed background, the question a user asks of the track). The
    per-task metrics above mix in random windows that touch an element, which are open too."""
    if ANY_TASK not in tasks:
        return report
    from enhscan.metrics import binary_metrics

    any_target = split.targets[:, tasks.index(ANY_TASK)].astype(bool)
    keep = split.centred | ~any_target
    labels = split.centred[keep].astype(np.int64)
    if 0 < labels.sum() < len(labels):
        m = binary_metrics(labels, probs[keep, tasks.index(ANY_TASK)])
        report["elements_vs_closed"] = {
            "elements": int(labels.sum()),
            "closed": int(len(labels) - labels.sum()),
            "roc_auc": m.roc_auc,
            "pr_auc": m.pr_auc,
        }
    return report


def gc_cpg_report(train, test, tasks: list[str], seed: int) -> dict:
    """The same metrics for a logistic regression on GC and CpG content, one per task."""
    from enhscan.metrics import multilabel_metrics
    from enhscan.training.baselines import GcCpgBaseline

    probs = np.full(test.targets.shape, 0.5, dtype=np.float32)
    for t in range(len(tasks)):
        column = train.targets[:, t]
        if 0 < column.sum() < len(column):
            probs[:, t] = GcCpgBaseline(seed).fit(train.seqs, column).score(test.seqs)
    return _with_open_vs_closed(
        multilabel_metrics(test.targets, probs, tasks).to_dict(), test, probs, tasks
    )


def _means(report: dict) -> dict:
    out = {"mean_pr_auc": report["pr_auc"], "mean_roc_auc": report["roc_auc"]}
    if "elements_vs_closed" in report:
        out["elements_vs_closed_roc_auc"] = report["elements_vs_closed"]["roc_auc"]
    if ANY_TASK in report["per_task"]:
        out["any_pr_auc"] = report["per_task"][ANY_TASK]["pr_auc"]
        out["any_roc_auc"] = report["per_task"][ANY_TASK]["roc_auc"]
    return out


def _device(classifier: Classifier):
    return next(classifier.network.parameters()).device


def _chroms(genome, wanted: list[str] | None, option: str) -> list[str]:
    from enhscan.naming import select_chroms

    if not wanted:
        raise EnhscanError(f"give {option}: held-out sequences for validation and testing")
    try:
        return select_chroms(genome.names, wanted)
    except ValueError as err:
        raise EnhscanError(f"{option} {err} matches no sequence of the genome") from None


def _check_out(out_dir: Path, resume: bool, force: bool, main: bool) -> None:
    check_out_folder(out_dir, resume, force, METADATA_NAME)
    if main and force and not resume and (out_dir / REPORT_DIR).exists():
        shutil.rmtree(out_dir / REPORT_DIR)


def _provenance(genome_paths, targets, windows, settings, arch) -> dict:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "objective": "multi-task binary cross-entropy (enhscan pretrain --targets)",
        "arch": arch,
        "genome": [str(Path(p).resolve()) for p in genome_paths],
        "targets": asdict(targets),
        "windows": asdict(windows),
        "training": asdict(settings),
        "versions": package_versions("scikit-learn"),
    }


def rerun_test_report(model_dir: str | os.PathLike) -> dict:
    """Measure a finished multi-task folder again on its test windows, drawn anew from its
    provenance (same genome, targets, windows and seed): the model's and the GC/CpG
    regression's report, as ``pretrain_multitask`` writes them."""
    from enhscan.io.fasta import open_genomes
    from enhscan.model.folder import load_classifier

    classifier = load_classifier(model_dir)
    provenance = classifier.metadata.provenance
    if classifier.metadata.task_type != "multilabel" or "targets" not in provenance:
        raise EnhscanError(f"{model_dir} is not a folder written by enhscan pretrain --targets")
    targets = TargetOptions(**provenance["targets"])
    windows = WindowOptions(**provenance["windows"])
    settings = TrainSettings(**provenance["training"])
    with open_genomes(provenance["genome"]) as genome:
        elements = read_targets(targets, genome.lengths)
        splits = draw_splits(
            genome, elements, targets.centre_bin, windows, train_flank=settings.shift_augment
        )
    return {
        "model": test_report(
            classifier, splits["test"], settings.eval_batch_size, settings.rc_augment
        ),
        "baseline_gc_cpg": gc_cpg_report(
            splits["train"], splits["test"], elements.tasks, settings.seed
        ),
    }
