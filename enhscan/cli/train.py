"""``enhscan train``: fine-tune an enhancer classifier from labelled regions or sequences."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

import click
from click.core import ParameterSource

from enhscan.cli.interrupts import ON_INTERRUPT, training_hint
from enhscan.cli.options import (
    HYBRID_ARCH_NAMES,
    NUCLEOTIDE_ARCHS,
    comma_list,
    force_option,
    front_end_option,
    max_n_option,
    pooling_option,
    shift_augment_option,
)

if TYPE_CHECKING:
    from enhscan.training.auxiliary import AuxiliaryOptions

_file = click.Path(dir_okay=False, path_type=str)


@click.command(short_help="Train an enhancer classifier (DNABERT-2, hybrid or CNN).")
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(path_type=str),
    help="Model folder to write (scan it with `enhscan genome --model OUT`).",
)
@click.option(
    "--genome",
    type=_file,
    multiple=True,
    help="Reference FASTA (or 2bit) the BED files refer to; repeat for a genome split "
    "over several files.",
)
@click.option(
    "--positives",
    type=_file,
    help="Enhancers: BED/narrowPeak (with --genome) or FASTA of sequences.",
)
@click.option(
    "--negatives",
    type=_file,
    help="Background: BED (with --genome) or FASTA. Default with --genome: "
    "GC-matched random windows.",
)
@click.option("--sequences", type=_file, help="CSV/TSV with sequence and label columns.")
@click.option("--exclude", type=_file, help="BED of regions background is never drawn from.")
@click.option(
    "--background-ratio",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="Without --negatives: GC-matched random background windows per distinct positive "
    "window, on each positive's own chromosome.",
)
@click.option(
    "--add-background",
    type=click.FloatRange(min=0),
    default=0.0,
    show_default=True,
    help="With --genome and --negatives: also this many GC-matched random windows per "
    "distinct positive window, on each positive's own chromosome (clear of every labelled "
    "window), so the model cannot lean on GC content.",
)
@click.option(
    "--window",
    type=click.IntRange(min=1),
    default=1000,
    show_default=True,
    help="Window width in bases, centred on each summit.",
)
@max_n_option
@click.option(
    "--at-edge",
    type=click.Choice(["shift", "drop"]),
    default="shift",
    show_default=True,
    help="A window crossing a chromosome end is shifted inside it, or dropped.",
)
@click.option(
    "--holdout-chroms",
    multiple=True,
    callback=comma_list,
    help="Test on these chromosomes (others train): no leakage between overlapping "
    "windows. Default: a class-stratified random split.",
)
@click.option(
    "--val-chroms",
    multiple=True,
    callback=comma_list,
    help="Validation chromosomes (with --holdout-chroms); default a random share.",
)
@click.option(
    "--val-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
)
@click.option(
    "--test-fraction",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.1,
    show_default=True,
)
@click.option(
    "--arch",
    type=click.Choice(
        ["tiny", "small", "base", *HYBRID_ARCH_NAMES, "cnn", "cnn-deep", "dnabert-kmer"]
    ),
    default="small",
    show_default=True,
    help="Model from scratch: DNABERT-2 architecture (base = the 117M shape), hybrid "
    "(convolutions on bases, then the DNABERT-2 encoder; hybrid-large: a deeper, wider "
    "encoder), cnn (cnn-deep: a fourth block), or dnabert-kmer (DNABERT, k-mer tokens; see --k).",
)
@click.option(
    "--k",
    type=click.IntRange(3, 6),
    default=6,
    show_default=True,
    help="k-mer size of --arch dnabert-kmer (windows of at most 509 + k bases).",
)
@click.option(
    "--base",
    type=click.Path(file_okay=False, path_type=str),
    help="Start from this DNABERT-2, DNABERT (k-mer) or enhscan model folder instead of --arch.",
)
@front_end_option
@click.option(
    "--tokenizer",
    default="dnabert2",
    show_default=True,
    help="dnabert2 (shipped), train (BPE on the genome or training sequences), or a "
    "tokenizer.json path.",
)
@click.option(
    "--vocab-size",
    type=click.IntRange(min=16),
    default=4096,
    show_default=True,
    help="Vocabulary of a trained BPE tokenizer.",
)
@click.option("--epochs", type=click.IntRange(min=1), default=10, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--lr",
    "learning_rate",
    type=click.FloatRange(min=0, min_open=True),
    default=None,
    help="Peak learning rate  [default: 5e-5; 5e-4 for hybrid, 1e-3 for cnn]",
)
@click.option(
    "--warmup",
    "warmup_ratio",
    type=click.FloatRange(0, 1),
    default=0.1,
    show_default=True,
    help="Share of steps spent warming up.",
)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.01, show_default=True)
@click.option(
    "--dropout",
    type=click.FloatRange(0, 1, max_open=True),
    default=None,
    help="Dropout probability  [default: the model's]",
)
@click.option(
    "--grad-accum",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Batches per optimizer step.",
)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="Epochs without better validation PR-AUC before stopping; 0: train every epoch and "
    "keep the last.",
)
@click.option(
    "--class-weights/--no-class-weights",
    default=True,
    show_default=True,
    help="Weight the loss by inverse class frequency.",
)
@click.option(
    "--mixed-precision",
    type=click.Choice(["auto", "no", "bf16", "fp16"]),
    default="auto",
    show_default=True,
)
@click.option("--cpu", is_flag=True, help="Train on the CPU even if a GPU is there.")
@click.option(
    "--rc-augment",
    is_flag=True,
    help="Show each training window as its reverse complement half the time (seeded by epoch).",
)
@shift_augment_option("--genome")
@click.option(
    "--ema-decay",
    type=click.FloatRange(min=0, max=1, max_open=True),
    default=0.0,
    show_default=True,
    help="Above 0: validate and keep a moving average of the weights (this decay per step; "
    "0.99 averages about the last 100 steps) rather than the weights themselves.",
)
@click.option(
    "--aux-targets",
    multiple=True,
    type=click.Path(exists=True, path_type=str),
    help="With a --base from `enhscan pretrain --targets`: keep it learning those tasks, read "
    "from these files as pretrain reads --targets, on as many windows of the training "
    "chromosomes as there are labelled ones in each batch.",
)
@click.option(
    "--aux-label-column",
    type=click.IntRange(min=4),
    default=None,
    help="With --aux-targets: 1-based column of the label lists (pretrain's --label-column).",
)
@click.option(
    "--aux-task-groups",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="With --aux-targets: the label-to-task file pretrain's --task-groups had.",
)
@click.option(
    "--aux-windows",
    type=click.IntRange(min=1),
    default=30_000,
    show_default=True,
    help="With --aux-targets: windows to draw for those tasks (half centred on an element).",
)
@click.option(
    "--aux-weight",
    type=click.FloatRange(min=0, min_open=True),
    default=1.0,
    show_default=True,
    help="With --aux-targets: weight of those tasks' loss beside the classifier's.",
)
@pooling_option
@click.option("--seed", type=int, default=0, show_default=True)
@click.option(
    "--trials",
    type=click.IntRange(min=0),
    default=0,
    show_default=True,
    help="Optuna trials (learning rate, batch size, warm-up, weight decay, dropout).",
)
@click.option(
    "--baseline/--no-baseline",
    default=True,
    show_default=True,
    help="Also train the CNN baseline on the same split and compare.",
)
@click.option(
    "--null-windows",
    type=click.IntRange(min=0),
    default=20_000,
    show_default=True,
    help="With --genome: random windows of the held-out chromosomes to score as the model's "
    "background null (p- and q-values in scans); 0: none (add one later with enhscan "
    "calibrate).",
)
@click.option("--resume", is_flag=True, help="Continue a stopped run or search in OUT.")
@click.option("--keep-checkpoints", is_flag=True, help="Keep training checkpoints in OUT.")
@force_option
@click.pass_context
def train(ctx: click.Context, **o) -> None:
    """Fine-tune a classifier that tells enhancer windows from background.

    \b
    From regions on a genome:
      enhscan train --genome ref.fa --positives peaks.narrowPeak --out model/
    From ready-made sequences:
      enhscan train --sequences labelled.csv --out model/

    Writes the model to OUT (config.json, model.safetensors, tokenizer.json, enhscan.json with
    the best-F1 call threshold), a report in OUT/training/ (data summary, metrics.json, PR and
    ROC curves, test predictions) and the CNN baseline in OUT/baseline_cnn/.
    """
    from enhscan.training.pipeline import DataOptions, ModelOptions, train_model
    from enhscan.training.trainer import TrainSettings

    ctx.meta[ON_INTERRUPT] = partial(training_hint, o["out"])
    if o["base"] and o["arch"] in NUCLEOTIDE_ARCHS:
        raise click.BadParameter(
            f"--base starts from its folder's own model; drop --arch {o['arch']}",
            param_hint="--base",
        )
    if o["front_end"] and (o["base"] or o["arch"] not in HYBRID_ARCH_NAMES):
        raise click.BadParameter(
            "--front-end starts a new hybrid's convolutions; give --arch hybrid or hybrid-large, "
            "not --base",
            param_hint="--front-end",
        )
    if o["add_background"] and not (o["genome"] and o["negatives"]):
        raise click.BadParameter(
            "--add-background adds to --negatives on a --genome; without --negatives, "
            "--background-ratio sets how much background is sampled",
            param_hint="--add-background",
        )
    data = DataOptions(
        genome=o["genome"],
        positives=o["positives"],
        negatives=o["negatives"],
        sequences=o["sequences"],
        exclude=o["exclude"],
        background_ratio=o["background_ratio"],
        add_background=o["add_background"],
        window=o["window"],
        max_n=o["max_n"],
        at_edge=o["at_edge"],
        holdout_chroms=o["holdout_chroms"],
        val_chroms=o["val_chroms"],
        val_fraction=o["val_fraction"],
        test_fraction=o["test_fraction"],
        seed=o["seed"],
    )
    model = ModelOptions(
        arch=o["arch"],
        base=o["base"],
        front_end=o["front_end"],
        k=o["k"],
        tokenizer=o["tokenizer"],
        vocab_size=o["vocab_size"],
        baseline=o["baseline"],
        pooling=o["pooling"],
    )
    settings = TrainSettings(
        epochs=o["epochs"],
        batch_size=o["batch_size"],
        learning_rate=o["learning_rate"],  # None: the model's default
        warmup_ratio=o["warmup_ratio"],
        weight_decay=o["weight_decay"],
        dropout=o["dropout"],
        grad_accum=o["grad_accum"],
        patience=o["patience"],
        class_weighting=o["class_weights"],
        mixed_precision=o["mixed_precision"],
        seed=o["seed"],
        cpu=o["cpu"],
        rc_augment=o["rc_augment"],
        shift_augment=o["shift_augment"],
        ema_decay=o["ema_decay"],
        auxiliary_weight=o["aux_weight"],
    )
    quiet = ctx.obj.get("quiet", False)
    report = train_model(
        data,
        model,
        settings,
        o["out"],
        trials=o["trials"],
        resume=o["resume"],
        force=o["force"],
        progress=not quiet,
        keep_checkpoints=o["keep_checkpoints"],
        null_windows=o["null_windows"],
        auxiliary=_auxiliary(ctx, o),
    )
    if not quiet:
        click.echo(_summary_table(report), err=True)
        click.echo(f"model written to {o['out']}", err=True)


def _auxiliary(ctx: click.Context, o: dict) -> AuxiliaryOptions | None:
    """The --aux-* options, or None without --aux-targets (any other of them is refused)."""
    from enhscan.training.auxiliary import AuxiliaryOptions
    from enhscan.training.multitask import TargetOptions

    if not o["aux_targets"]:
        for name in ("aux_label_column", "aux_task_groups", "aux_windows", "aux_weight"):
            if ctx.get_parameter_source(name) is not ParameterSource.DEFAULT:
                option = "--" + name.replace("_", "-")
                raise click.BadParameter(
                    "goes with --aux-targets; give --aux-targets too, or leave it out",
                    param_hint=option,
                )
        return None
    targets = TargetOptions(
        paths=list(o["aux_targets"]),
        label_column=o["aux_label_column"],
        groups=o["aux_task_groups"],
    )
    return AuxiliaryOptions(targets, windows=o["aux_windows"])


def _summary_table(report: dict) -> str:
    rows = [("model", report["model"])]
    if report.get("baseline_cnn"):
        rows.append(("cnn baseline", report["baseline_cnn"]))
    rows.append(("GC/CpG logreg", report["baseline_gc_cpg"]))
    lines = [f"{'held-out test':14} {'PR-AUC':>7} {'ROC-AUC':>8} {'F1':>6} {'thresh':>7}"]
    for name, r in rows:
        t = r["test"]
        lines.append(
            f"{name:14} {t['pr_auc']:7.3f} {t['roc_auc']:8.3f} {t['f1']:6.3f} {t['threshold']:7.3f}"
        )
    return "\n".join(lines)
