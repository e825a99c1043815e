"""`enhscan train` end to end: labelled data in, a scan-ready model folder and a report out.

Steps: gather labelled windows (peaks on a genome plus given or GC-matched background, or
ready-made sequences), de-duplicate (reverse complements collapse), split (class-stratified,
or held-out chromosomes), build or load the model, train it (or search hyperparameters with
Optuna), pick the call threshold on the validation set, evaluate on the test set against the
CNN baseline trained on the same split, and write everything.

Output folder::

    OUT/                    the model (scan it with `enhscan genome --model OUT`)
    OUT/training/           data_summary.json/.txt, metrics.json, pr_curve.png, roc_curve.png,
                            test_predictions.tsv, log.jsonl, checkpoints
    OUT/baseline_cnn/       the CNN baseline, a model folder too
"""

from __future__ import annotations

import logging
import os
import shutil
import sys
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from enhscan.calibration import DEFAULT_NULL_WINDOWS
from enhscan.errors import EnhscanError
from enhscan.io.atomic import atomic_output, write_json
from enhscan.model.families import family_of_arch
from enhscan.model.folder import (
    Classifier,
    load_classifier,
    new_classifier,
    replace_head,
    save_classifier,
    set_pooling,
    start_front_end,
)
from enhscan.model.metadata import METADATA_NAME
from enhscan.training.auxiliary import (
    AuxiliaryOptions,
    AuxiliaryTasks,
    auxiliary_elements,
    auxiliary_tasks,
)
from enhscan.training.multitask import TargetOptions, TaskElements
from enhscan.training.runs import check_out_folder
from enhscan.training.trainer import TrainResult, TrainSettings, default_learning_rate, fit
from enhscan.versions import package_versions

log = logging.getLogger(__name__)

REPORT_DIR = "training"
BASELINE_DIR = "baseline_cnn"
#: CNN baseline hyperparameters (a small CNN trains well at a far higher rate than a BERT).
CNN_DEFAULTS = {
    "learning_rate": default_learning_rate("cnn"),
    "weight_decay": 1e-4,
    "warmup_ratio": 0.05,
}


@dataclass
class DataOptions:
    """Where the labelled data come from and how windows are made (see ``enhscan train -h``)."""

    genome: list[str] | None = None
    positives: str | None = None
    negatives: str | None = None
    sequences: str | None = None
    exclude: str | None = None
    background_ratio: float = 1.0
    add_background: float = 0.0  # with negatives: GC-matched random windows per positive too
    window: int = 1000
    max_n: int = 0
    at_edge: str = "shift"
    holdout_chroms: list[str] | None = None
    val_chroms: list[str] | None = None
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    seed: int = 0


@dataclass
class ModelOptions:
    """Which model to train."""

    arch: str = "small"
    base: str | None = None
    front_end: str | None = None  # --arch hybrid: a CNN folder whose convolutions it starts from
    k: int = 6  # k-mer size of --arch dnabert-kmer
    tokenizer: str = "dnabert2"
    vocab_size: int = 4096
    baseline: bool = True
    pooling: str | None = None  # DNABERT-2: "cls" or "mean"; None: cls, or the base's own


@dataclass
class PreparedData:
    """Windows and labels of each split, with the data summary.

    ``flanked``: the training windows with ``flank`` more bases of genome on each side, for
    shift augmentation (None without it).
    """

    train: list
    val: list
    test: list
    summary: dict = field(default_factory=dict)
    flanked: list[str] | None = None

    def arrays(self, split: str) -> tuple[list[str], np.ndarray]:
        examples = getattr(self, split)
        return [e.seq for e in examples], np.array([e.label for e in examples], dtype=np.int64)

    def training_windows(self) -> tuple[list[str], np.ndarray]:
        """What training shows the model: the flanked windows where there are, else the
        training windows."""
        seqs, labels = self.arrays("train")
        return (self.flanked or seqs), labels


def prepare_data(options: DataOptions, flank: int = 0) -> PreparedData:
    """Gather, de-duplicate and split the labelled windows (module docstring, first steps);
    with ``flank``, also cut the training windows ``flank`` bases wider on each side."""
    from enhscan.training import prepare

    extraction: dict = {}
    if options.genome:
        examples, extraction = _examples_from_genome(options)
    else:
        examples = _examples_from_sequences(options)
    prepare.check_two_classes(examples)
    kept, dedup = prepare.deduplicate(examples)
    prepare.check_two_classes(kept, dedup)
    if options.holdout_chroms:
        splits = prepare.split_by_chroms(
            kept, options.holdout_chroms, options.val_chroms, options.val_fraction, options.seed
        )
    else:
        splits = prepare.split_stratified(
            kept, options.val_fraction, options.test_fraction, options.seed
        )
    summary = prepare.summarize(splits, dedup, extraction)
    flanked = _flanked(options, splits.train, flank) if flank else None
    return PreparedData(splits.train, splits.val, splits.test, summary, flanked)


def _flanked(options: DataOptions, examples: list, flank: int) -> list[str]:
    """Each window with ``flank`` more bases each side, moved inside its chromosome where it
    would cross an end."""
    from enhscan.io.fasta import open_genomes

    if not options.genome:
        raise EnhscanError(
            "--shift-augment needs windows cut from a genome (--genome): ready-made "
            "sequences have no flanking bases"
        )
    wide = options.window + 2 * flank
    out = []
    with open_genomes(options.genome) as genome:
        for e in examples:
            length = genome.lengths[e.chrom]
            if length < wide:
                raise EnhscanError(
                    f"{e.chrom} ({length:,} bp) is shorter than a window and its flanks "
                    f"({wide:,} bp); lower --shift-augment"
                )
            start = min(max(e.start - flank, 0), length - wide)
            out.append(genome.fetch(e.chrom, start, start + wide))
    return out


def _examples_from_genome(options: DataOptions) -> tuple[list, dict]:
    from enhscan.io.fasta import open_genomes
    from enhscan.io.peaks import read_peaks
    from enhscan.training import prepare

    if not options.positives:
        raise EnhscanError("--genome needs --positives (a BED or narrowPeak of enhancers)")
    with open_genomes(options.genome) as genome:
        peaks = read_peaks(options.positives, genome.lengths)
        positives, extraction = prepare.extract_windows(
            genome, peaks, options.window, label=1, at_edge=options.at_edge, max_n=options.max_n
        )
        extraction = {"positives": extraction}
        negatives: list = []
        if options.negatives:
            negative_peaks = read_peaks(options.negatives, genome.lengths)
            negatives, extraction["negatives"] = prepare.extract_windows(
                genome,
                negative_peaks,
                options.window,
                label=0,
                at_edge=options.at_edge,
                max_n=options.max_n,
            )
        ratio = options.add_background if options.negatives else options.background_ratio
        if ratio > 0:
            sampled = _sampled_background(genome, positives, negatives, ratio, options)
            negatives += sampled
            extraction["background_sampled"] = len(sampled)
            extraction["background"] = "GC-matched random windows avoiding the labelled windows"
    return positives + negatives, extraction


def _sampled_background(genome, positives: list, negatives: list, ratio: float, options):
    """``ratio`` GC-matched random windows per distinct positive window, clear of every
    labelled window and of ``--exclude``, each chromosome getting its own positives' share
    (:func:`enhscan.training.background.allot_background`; a full chromosome hands its share
    to the others of its split)."""
    from enhscan.io.bed import read_bed
    from enhscan.naming import match_chrom
    from enhscan.training import prepare
    from enhscan.training.background import allot_background

    avoid: dict[str, list[tuple[int, int]]] = {}
    for example in positives + negatives:
        avoid.setdefault(example.chrom, []).append((example.start, example.start + options.window))
    exclude = (
        read_bed(options.exclude, genome.lengths, clip=True).by_chrom if options.exclude else None
    )
    gc_by_chrom: dict[str, list[float]] = {}
    for (chrom, _), seq in {(e.chrom, e.start): e.seq for e in positives}.items():
        gc_by_chrom.setdefault(chrom, []).append(prepare.gc_content(seq))
    groups = {}
    for split, wanted in (("val", options.val_chroms), ("test", options.holdout_chroms)):
        for name in wanted or []:
            if (chrom := match_chrom(name, genome.lengths)) is not None:
                groups[chrom] = split
    n = max(1, round(sum(map(len, gc_by_chrom.values())) * ratio))
    return allot_background(
        genome, gc_by_chrom, n, options.window, avoid, exclude, groups, options.max_n, options.seed
    )


def _examples_from_sequences(options: DataOptions) -> list:
    from enhscan.io.sequences import read_fasta_sequences, read_labelled_table

    if options.sequences:
        examples = read_labelled_table(options.sequences)
    elif options.positives and options.negatives:
        examples = read_fasta_sequences(options.positives, 1)
        examples += read_fasta_sequences(options.negatives, 0)
    elif options.positives:
        raise EnhscanError(
            "--positives without --genome must be a FASTA of sequences and needs --negatives "
            "(a FASTA too); or give --genome to extract windows around BED intervals"
        )
    else:
        raise EnhscanError(
            "no training data: give --genome with --positives, or --sequences, or --positives and "
            "--negatives as FASTA files"
        )
    if options.holdout_chroms:
        raise EnhscanError("--holdout-chroms needs windows from a genome (--genome)")
    # Ready-made sequences longer than the window are centre-cropped to it; shorter ones are
    # kept as they are (DNABERT-2 reads any length; the CNN pools over whatever length it gets).
    cropped = []
    for e in examples:
        if len(e.seq) > options.window:
            cut = (len(e.seq) - options.window) // 2
            e = type(e)(e.seq[cut : cut + options.window], e.label, e.chrom, e.start, e.source)
        cropped.append(e)
    return cropped


def build_model(
    options: ModelOptions, data: PreparedData, window: int, seed: int, genome: str | None
) -> Classifier:
    """A fresh model of ``options.arch``, or the ``--base`` folder with a new classifier head."""
    if options.base:
        classifier = load_classifier(options.base, require_head=False)
        if classifier.metadata.task_type == "multilabel":
            # A multi-task model (enhscan pretrain --targets): its body, a new enhancer head.
            base_tasks = len(classifier.metadata.labels)
            replace_head(classifier, ["background", "enhancer"], seed)
            classifier.metadata.provenance["base_tasks"] = base_tasks
        classifier.metadata.window = window
        set_pooling(classifier, options.pooling)
        return classifier
    family = family_of_arch(options.arch)
    overrides = {"k": options.k} if family.name == "dnabert" else {}
    tokenizer_json = _tokenizer_json(options, data, genome, seed) if family.bpe else None
    classifier = new_classifier(
        options.arch, tokenizer_json=tokenizer_json, window=window, seed=seed, **overrides
    )
    if options.front_end:
        start_front_end(classifier, options.front_end)
    set_pooling(classifier, options.pooling)
    return classifier


def _tokenizer_json(
    options: ModelOptions, data: PreparedData, genome: str | None, seed: int
) -> str | None:
    if options.tokenizer == "dnabert2":
        return None
    if options.tokenizer != "train":
        path = Path(options.tokenizer)
        if not path.is_file():
            raise EnhscanError(
                f"--tokenizer {path}: not a file; give dnabert2, train, or a tokenizer.json"
            )
        return path.read_text()
    from enhscan.training.bpe import sample_genome_sequences, train_bpe_tokenizer

    if genome:
        from enhscan.io.fasta import open_genomes

        with open_genomes(genome) as g:
            sequences = list(sample_genome_sequences(g, n_bases=20_000_000, seed=seed))
    else:
        sequences = [e.seq for e in data.train]
    log.info("training a BPE tokenizer with %d tokens", options.vocab_size)
    return train_bpe_tokenizer(sequences, vocab_size=options.vocab_size)


def evaluate(
    classifier: Classifier, data: PreparedData, batch_size: int = 64, device: str = "cpu"
) -> tuple[dict, np.ndarray]:
    """Validation-chosen threshold and test metrics; returns (metrics dict, test scores)."""
    from enhscan.backend import ComputeOptions
    from enhscan.engine import WindowScorer
    from enhscan.metrics import binary_metrics

    scorer = WindowScorer(classifier, ComputeOptions(device=str(device), batch_size=batch_size))
    val_seqs, val_labels = data.arrays("val")
    test_seqs, test_labels = data.arrays("test")
    val = binary_metrics(val_labels, scorer.score(val_seqs))
    test_scores = scorer.score(test_seqs)
    at_val_threshold = binary_metrics(test_labels, test_scores, threshold=val.threshold)
    best_on_test = binary_metrics(test_labels, test_scores)
    return {
        "validation": val.to_dict(),
        "test": at_val_threshold.to_dict(),
        "test_best_f1_threshold": best_on_test.to_dict(),
    }, test_scores


def train_model(
    data_options: DataOptions,
    model_options: ModelOptions,
    settings: TrainSettings,
    out_dir: str | os.PathLike,
    *,
    trials: int = 0,
    resume: bool = False,
    force: bool = False,
    progress: bool = True,
    keep_checkpoints: bool = False,
    null_windows: int = DEFAULT_NULL_WINDOWS,
    auxiliary: AuxiliaryOptions | None = None,
) -> dict:
    """Run the whole pipeline (see the module docstring) and return the metrics report.

    With ``auxiliary``, the ``--base`` multi-task model keeps learning its tasks on windows
    of the training chromosomes while it is fine-tuned (:mod:`enhscan.training.auxiliary`).

    With a genome, the finished model then scores ``null_windows`` random windows of the
    held-out chromosomes (test and validation; all chromosomes with a stratified split) and
    stores them as its background null (:mod:`enhscan.model.null`); 0 skips that.

    Under ``accelerate launch`` every process prepares the same data and trains its share of
    each batch; only the main process writes files.
    """
    from accelerate import PartialState

    from enhscan.processes import on_cpu

    if settings.learning_rate is None:
        family = family_of_arch(model_options.arch).name
        rate = default_learning_rate(family, bool(model_options.base))
        settings = replace(settings, learning_rate=rate)
    state = PartialState(cpu=on_cpu(settings.cpu))
    main = state.is_main_process
    if trials > 0 and state.num_processes > 1:
        raise EnhscanError(
            "--trials runs the search in one process; drop accelerate launch, or train the "
            "chosen settings without --trials"
        )
    if auxiliary is not None:
        read = _check_auxiliary(auxiliary, data_options, model_options, trials)
    out_dir = Path(out_dir)
    _check_out(out_dir, resume, force, main)
    state.wait_for_everyone()
    data = prepare_data(data_options, flank=settings.shift_augment)
    tasks = None
    if auxiliary is not None:
        flank = settings.shift_augment
        tasks = _auxiliary_tasks(auxiliary, read, data, data_options, model_options, flank)
    report_dir = out_dir / REPORT_DIR
    if main:
        _write_summary(report_dir, data.summary, progress)

    def make() -> Classifier:
        return build_model(
            model_options, data, data_options.window, settings.seed, data_options.genome
        )

    search = None
    if trials > 0:
        from enhscan.training.search import search_hyperparameters

        search = search_hyperparameters(
            make, data, settings, report_dir / "search", trials, progress=progress
        )
        classifier, result = search.best_classifier, search.best_result
        settings = search.best_settings
    else:
        classifier = make()
        result = _fit(classifier, data, settings, report_dir / "work", resume, progress, tasks)

    metrics, test_scores = evaluate(classifier, data)
    classifier.metadata.threshold = float(metrics["validation"]["threshold"])
    classifier.metadata.metrics = {"test": metrics["test"], "validation": metrics["validation"]}
    earlier = classifier.metadata.provenance
    classifier.metadata.provenance = _provenance(data_options, model_options, settings, trials)
    if model_options.base:
        classifier.metadata.provenance["base"] = earlier
        # --arch means nothing with --base: record the architecture the base has.
        base_arch = earlier.get("arch") or earlier.get("model", {}).get("arch")
        classifier.metadata.provenance["model"]["arch"] = base_arch or classifier.metadata.family
    if model_options.front_end:
        classifier.metadata.provenance["front_end"] = earlier["front_end"]
    if auxiliary is not None:
        classifier.metadata.provenance["auxiliary"] = asdict(auxiliary)
    labels = data.arrays("test")[1]
    curves = {classifier.metadata.family: (labels, test_scores)}
    report = {"model": _model_report(classifier, model_options, settings, result, metrics)}
    baseline_scores = None
    if model_options.baseline and classifier.metadata.family != "cnn":
        baseline, report["baseline_cnn"], baseline_scores = _train_baseline(
            data, data_options, settings, report_dir, resume, progress
        )
        curves["cnn baseline"] = (labels, baseline_scores)
        if main:
            save_classifier(baseline, out_dir / BASELINE_DIR)
    report["baseline_gc_cpg"], gc_scores = _gc_cpg_baseline(data, settings.seed)
    curves["GC/CpG logistic regression"] = (labels, gc_scores)
    classifier.metadata.metrics["baselines_test"] = {
        name: report[key]["test"]
        for name, key in (("cnn", "baseline_cnn"), ("gc_cpg", "baseline_gc_cpg"))
        if key in report
    }
    report["data"] = data.summary
    if tasks is not None:
        report["data"]["auxiliary"] = {
            "windows": len(tasks.windows.seqs),
            "positives": dict(
                zip(tasks.windows.tasks, tasks.windows.targets.sum(0).tolist(), strict=True)
            ),
        }
    report["processes"] = state.num_processes
    report["search"] = search.summary if search else None
    if main:
        from enhscan.plots import plot_pr_roc

        plot_pr_roc(curves, report_dir, title="held-out test set")
        _write_predictions(
            report_dir / "test_predictions.tsv", data.test, test_scores, baseline_scores
        )
        save_classifier(classifier, out_dir)
        if null_windows and data_options.genome:
            report["background_null"] = _store_null(
                classifier, data_options, null_windows, out_dir, progress, state.device
            )
        write_json(report_dir / "metrics.json", report)
        if not keep_checkpoints:
            shutil.rmtree(report_dir / "work" / "checkpoint", ignore_errors=True)
            shutil.rmtree(report_dir / "baseline_work" / "checkpoint", ignore_errors=True)
    state.wait_for_everyone()
    return report


def _check_auxiliary(
    auxiliary: AuxiliaryOptions, data: DataOptions, model: ModelOptions, trials: int
) -> tuple[TaskElements, TargetOptions]:
    """Refuse --aux-targets where it cannot work, before anything slow; its elements."""
    from enhscan.io.fasta import open_genomes

    if not model.base:
        raise EnhscanError(
            "--aux-targets keeps a --base multi-task model learning its tasks; give --base"
        )
    if not data.genome:
        raise EnhscanError("--aux-targets draws its windows from a genome; give --genome")
    if trials:
        raise EnhscanError("--aux-targets does not go with --trials; train without a search")
    with open_genomes(data.genome) as genome:
        return auxiliary_elements(model.base, auxiliary.targets, genome.lengths)


def _auxiliary_tasks(
    auxiliary: AuxiliaryOptions,
    read: tuple[TaskElements, TargetOptions],
    data: PreparedData,
    options: DataOptions,
    model: ModelOptions,
    flank: int,
) -> AuxiliaryTasks:
    """The auxiliary windows and head: no window on a held-out chromosome, none touching a
    validation or test window (a random split puts those on every chromosome) or
    ``--exclude``."""
    elements, targets = read
    return auxiliary_tasks(
        model.base,
        elements,
        targets,
        auxiliary.windows,
        options.genome,
        options.window + 2 * flank,
        held_out=[*(options.holdout_chroms or []), *(options.val_chroms or [])],
        avoid=[(e.chrom, e.start, e.start + len(e.seq)) for e in (*data.val, *data.test)],
        exclude=options.exclude,
        max_n=options.max_n,
        seed=options.seed,
    )


def _store_null(
    classifier: Classifier,
    options: DataOptions,
    windows: int,
    out_dir: Path,
    progress: bool,
    device,
) -> dict:
    """Score random windows of the held-out chromosomes (on ``device``) and store them as the
    model's background null; its provenance."""
    from enhscan.backend import ComputeOptions
    from enhscan.calibration import compute_null
    from enhscan.engine import WindowScorer
    from enhscan.io.bed import read_bed
    from enhscan.io.fasta import open_genomes
    from enhscan.model.null import save_null

    chroms = None
    if options.holdout_chroms:
        chroms = [*options.holdout_chroms, *(options.val_chroms or [])]
    log.info(
        "scoring %d random windows of %s for the background null", windows, chroms or "the genome"
    )
    with open_genomes(options.genome) as genome:
        exclude = (
            read_bed(options.exclude, genome.lengths, clip=True).by_chrom
            if options.exclude
            else None
        )
        null = compute_null(
            classifier,
            genome,
            windows=windows,
            chroms=chroms,
            exclude=exclude,
            max_n=options.max_n,
            seed=options.seed,
            scorer=WindowScorer(classifier, ComputeOptions(device=str(device))),
            progress=progress,
        )
    save_null(out_dir, null)
    return {k: v for k, v in null.info.items() if k != "versions"}


def _write_summary(report_dir: Path, summary: dict, progress: bool) -> None:
    from enhscan.training.prepare import format_summary

    report_dir.mkdir(parents=True, exist_ok=True)
    write_json(report_dir / "data_summary.json", summary)
    text = format_summary(summary)
    with atomic_output(report_dir / "data_summary.txt") as tmp:
        tmp.write_text(text + "\n")
    if progress:
        print(text, file=sys.stderr)


def _check_out(out_dir: Path, resume: bool, force: bool, main: bool) -> None:
    check_out_folder(out_dir, resume, force, METADATA_NAME)
    if main and force and not resume and (out_dir / REPORT_DIR).exists():
        shutil.rmtree(out_dir / REPORT_DIR)


def _fit(
    classifier: Classifier,
    data: PreparedData,
    settings: TrainSettings,
    work: Path,
    resume: bool,
    progress: bool,
    auxiliary: AuxiliaryTasks | None = None,
) -> TrainResult:
    train_seqs, train_labels = data.training_windows()
    val_seqs, val_labels = data.arrays("val")
    return fit(
        classifier,
        train_seqs,
        train_labels,
        val_seqs,
        val_labels,
        settings,
        work,
        resume=resume,
        progress=progress,
        auxiliary=auxiliary,
    )


def _train_baseline(
    data: PreparedData,
    data_options: DataOptions,
    settings: TrainSettings,
    report_dir: Path,
    resume: bool,
    progress: bool,
):
    log.info("training the CNN baseline on the same split")
    cnn = new_classifier("cnn", window=data_options.window, seed=settings.seed)
    cnn_settings = replace(settings, dropout=None, **CNN_DEFAULTS)
    result = _fit(cnn, data, cnn_settings, report_dir / "baseline_work", resume, progress)
    metrics, scores = evaluate(cnn, data)
    cnn.metadata.threshold = float(metrics["validation"]["threshold"])
    cnn.metadata.metrics = {"test": metrics["test"], "validation": metrics["validation"]}
    cnn.metadata.provenance = _provenance(data_options, ModelOptions(arch="cnn"), cnn_settings, 0)
    report = _model_report(cnn, ModelOptions(arch="cnn"), cnn_settings, result, metrics)
    return cnn, report, scores


def _gc_cpg_baseline(data: PreparedData, seed: int) -> tuple[dict, np.ndarray]:
    from enhscan.metrics import binary_metrics
    from enhscan.training.baselines import GcCpgBaseline

    baseline = GcCpgBaseline(seed).fit(*data.arrays("train"))
    val_seqs, val_labels = data.arrays("val")
    test_seqs, test_labels = data.arrays("test")
    val = binary_metrics(val_labels, baseline.score(val_seqs))
    scores = baseline.score(test_seqs)
    return {
        "family": "logistic regression on GC fraction, CpG o/e and CpG density",
        "validation": val.to_dict(),
        "test": binary_metrics(test_labels, scores, threshold=val.threshold).to_dict(),
        "test_best_f1_threshold": binary_metrics(test_labels, scores).to_dict(),
    }, scores


def _model_report(
    classifier: Classifier,
    options: ModelOptions,
    settings: TrainSettings,
    result: TrainResult,
    metrics: dict,
) -> dict:
    return {
        "family": classifier.metadata.family,
        "arch": options.arch if not options.base else f"base:{options.base}",
        "parameters": sum(p.numel() for p in classifier.network.parameters()),
        "settings": asdict(settings),
        "best_epoch": result.best_epoch,
        "stopped_early": result.stopped_early,
        "history": result.history,
        **metrics,
    }


def _provenance(
    data_options: DataOptions, model_options: ModelOptions, settings: TrainSettings, trials: int
) -> dict:
    return {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "data": asdict(data_options),
        "model": asdict(model_options),
        "training": asdict(settings),
        "optuna_trials": trials,
        "versions": package_versions("scikit-learn", "optuna"),
    }


def _write_predictions(
    path: Path, examples: list, scores: np.ndarray, baseline: np.ndarray | None
) -> None:
    with atomic_output(path) as tmp, open(tmp, "w") as out:
        out.write(
            "source\tchrom\tstart\tlabel\tscore"
            + ("\tcnn_score" if baseline is not None else "")
            + "\n"
        )
        for i, e in enumerate(examples):
            row = [
                e.source,
                e.chrom or "",
                "" if e.start is None else str(e.start),
                str(e.label),
                f"{scores[i]:.6f}",
            ]
            if baseline is not None:
                row.append(f"{baseline[i]:.6f}")
            out.write("\t".join(row) + "\n")
