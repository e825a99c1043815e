"""``enhscan pretrain``: masked-language-model pretraining on reference sequence."""

from __future__ import annotations

from functools import partial

import click

from enhscan.cli.interrupts import ON_INTERRUPT, training_hint
from enhscan.cli.options import (
    HYBRID_ARCH_NAMES,
    NUCLEOTIDE_ARCHS,
    comma_list,
    force_option,
    front_end_option,
    pooling_option,
    shift_augment_option,
)


@click.command(
    short_help="Pretrain on a genome: masked LM, or supervised multi-task with --targets."
)
@click.argument("genomes", nargs=-1, required=True, type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(path_type=str),
    help="Folder for the pretrained model (give it to `enhscan train --base`).",
)
@click.option(
    "--arch",
    type=click.Choice(["tiny", "small", "base", *HYBRID_ARCH_NAMES, "cnn", "cnn-deep"]),
    default="small",
    show_default=True,
    help="Model shape; base is DNABERT-2-117M; hybrid (convolutions, then the DNABERT-2 "
    "encoder; hybrid-large: a deeper, wider encoder), cnn (the CNN baseline) and cnn-deep (a "
    "fourth block) with --targets only.",
)
@click.option(
    "--tokenizer",
    default="dnabert2",
    show_default=True,
    help="dnabert2 (shipped), train (BPE on these genomes), or a tokenizer.json path.",
)
@click.option("--vocab-size", type=click.IntRange(min=16), default=4096, show_default=True)
@click.option(
    "--chroms",
    multiple=True,
    callback=comma_list,
    help="Draw windows only from these sequences (names or patterns).",
)
@click.option(
    "--targets",
    multiple=True,
    type=click.Path(exists=True, path_type=str),
    help="Supervised multi-task mode: a BED with a label-list column (--label-column), or "
    "BED/narrowPeak files or folders, one task per file (repeatable).",
)
@click.option(
    "--label-column",
    type=click.IntRange(min=4),
    default=None,
    help="With --targets: 1-based column of the label lists (REMO: 6).",
)
@click.option("--label-sep", default=",", show_default=True, help="Between labels.")
@click.option(
    "--task-groups",
    type=click.Path(exists=True, dir_okay=False, path_type=str),
    help="label<TAB>group[,group] file merging labels into tasks (cell types into tissues).",
)
@click.option(
    "--any-task/--no-any-task",
    default=True,
    show_default=True,
    help="Add the task 'any': an element of any task, or of none, at the window's centre.",
)
@click.option(
    "--centre-bin",
    type=click.IntRange(min=1),
    default=200,
    show_default=True,
    help="A window's target for a task is 1 when one of its elements overlaps this many "
    "bases around the window's centre.",
)
@click.option("--window", type=click.IntRange(min=16), default=1000, show_default=True)
@click.option(
    "--windows",
    "train_windows",
    type=click.IntRange(min=1),
    default=40_000,
    show_default=True,
    help="Training windows (with --targets).",
)
@click.option("--val-windows", type=click.IntRange(min=1), default=2_000, show_default=True)
@click.option("--test-windows", type=click.IntRange(min=1), default=5_000, show_default=True)
@click.option(
    "--element-share",
    type=click.FloatRange(0, 1),
    default=0.5,
    show_default=True,
    help="Share of windows centred on an element; the rest are random background.",
)
@click.option(
    "--shift",
    type=click.IntRange(min=0),
    default=200,
    show_default=True,
    help="Element-centred windows move by a random shift of at most this many bases.",
)
@click.option("--val-chroms", multiple=True, callback=comma_list, help="Validation sequences.")
@click.option("--test-chroms", multiple=True, callback=comma_list, help="Held-out test sequences.")
@click.option(
    "--exclude",
    type=click.Path(dir_okay=False, path_type=str),
    help="BED of regions no window may touch.",
)
@click.option("--max-n", type=click.IntRange(min=0), default=0, show_default=True)
@click.option(
    "--rc-augment/--no-rc-augment",
    default=True,
    show_default=True,
    help="With --targets: show each window reversed half the time; evaluate both strands.",
)
@shift_augment_option("--targets")
@pooling_option
@front_end_option
@click.option(
    "--null-windows",
    type=click.IntRange(min=0),
    default=20_000,
    show_default=True,
    help="With --targets: random windows of the test sequences scored as the 'any' task's "
    "background null (p- and q-values in scans); 0: none.",
)
@click.option(
    "--mlm-weight",
    type=click.FloatRange(0, 1, max_open=True),
    default=0.0,
    show_default=True,
    help="With --targets and a DNABERT-2 --arch: also train masked-token prediction on the "
    "same windows, this share of the loss (--mask-prob of the tokens).",
)
@click.option("--epochs", type=click.IntRange(min=1), default=5, show_default=True)
@click.option(
    "--patience",
    type=click.IntRange(min=0),
    default=2,
    show_default=True,
    help="Epochs without a better validation PR-AUC before stopping; 0: train every epoch "
    "and keep the last.",
)
@click.option("--steps", type=click.IntRange(min=1), default=2000, show_default=True)
@click.option("--batch-size", type=click.IntRange(min=1), default=32, show_default=True)
@click.option(
    "--seq-bases",
    type=click.IntRange(min=16),
    default=1000,
    show_default=True,
    help="Bases per training window.",
)
@click.option(
    "--lr",
    "learning_rate",
    type=click.FloatRange(min=0, min_open=True),
    default=5e-4,
    show_default=True,
)
@click.option(
    "--warmup", "warmup_ratio", type=click.FloatRange(0, 1), default=0.06, show_default=True
)
@click.option("--weight-decay", type=click.FloatRange(min=0), default=0.01, show_default=True)
@click.option(
    "--mask-prob",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=0.15,
    show_default=True,
    help="Share of tokens to predict (with --targets: for --mlm-weight).",
)
@click.option(
    "--max-n-fraction",
    type=click.FloatRange(0, 1),
    default=0.01,
    show_default=True,
    help="Draw again windows with more N than this share.",
)
@click.option("--checkpoint-every", type=click.IntRange(min=1), default=200, show_default=True)
@click.option(
    "--mixed-precision",
    type=click.Choice(["auto", "no", "bf16", "fp16"]),
    default="auto",
    show_default=True,
)
@click.option("--cpu", is_flag=True, help="Stay on the CPU even if a GPU is there.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--resume", is_flag=True, help="Continue a stopped run from its checkpoint.")
@force_option
@click.pass_context
def pretrain(
    ctx: click.Context,
    genomes: tuple[str, ...],
    out: str,
    arch: str,
    tokenizer: str,
    vocab_size: int,
    chroms: list[str] | None,
    resume: bool,
    force: bool,
    **settings,
) -> None:
    """Pretrain by masked-token prediction on random windows of GENOMES (FASTA or 2bit), or,
    with --targets, on many labelled element sets at once (one binary target per task).

    \b
    Masked LM: the folder has the parameter names of a DNABERT-2 masked-LM checkpoint.
    Multi-task: enhscan pretrain GRCh37.fa --targets remo.bed.gz --label-column 6
      --val-chroms chr22 --test-chroms chrX --out atlas/
    Fine-tune either with `enhscan train --base OUT`; scan a multi-task folder's tasks with
    `enhscan genome --model OUT --task NAME`.
    """
    from enhscan.training.pretrain import PretrainSettings
    from enhscan.training.pretrain import pretrain as run

    quiet = ctx.obj.get("quiet", False)
    ctx.meta[ON_INTERRUPT] = partial(training_hint, out)
    supervised = {k: settings.pop(k) for k in SUPERVISED_OPTIONS}
    _refuse_other_mode(ctx, bool(supervised["targets"]))
    if supervised["targets"]:
        report = _pretrain_multitask(
            ctx, genomes, out, arch, chroms, resume, force, supervised, settings
        )
        if not quiet:
            click.echo(_multitask_summary(report, out), err=True)
        return
    if arch in NUCLEOTIDE_ARCHS:
        raise click.BadParameter(
            f"--arch {arch} reads bases, not tokens: it pretrains with --targets only",
            param_hint="--arch",
        )
    summary = run(
        list(genomes),
        out,
        arch=arch,
        tokenizer=tokenizer,
        vocab_size=vocab_size,
        chroms=chroms,
        settings=PretrainSettings(**settings),
        resume=resume,
        force=force,
        progress=not quiet,
    )
    if not quiet and summary["final"]:
        final = summary["final"]
        click.echo(
            f"pretrained {summary['steps']} steps: loss {final['train_loss']:.4f}, masked-token "
            f"accuracy {final['masked_accuracy']:.4f}; model in {out}",
            err=True,
        )


#: Options of the supervised mode (``--targets``).
SUPERVISED_OPTIONS = (
    "targets",
    "label_column",
    "label_sep",
    "task_groups",
    "any_task",
    "centre_bin",
    "window",
    "train_windows",
    "val_windows",
    "test_windows",
    "element_share",
    "shift",
    "val_chroms",
    "test_chroms",
    "exclude",
    "max_n",
    "epochs",
    "patience",
    "rc_augment",
    "shift_augment",
    "pooling",
    "front_end",
    "null_windows",
    "mlm_weight",
)


def _pretrain_multitask(ctx, genomes, out, arch, chroms, resume, force, o: dict, mlm: dict):
    from enhscan.training.multitask import TargetOptions
    from enhscan.training.multitask_pipeline import WindowOptions, pretrain_multitask
    from enhscan.training.trainer import TrainSettings

    if o["front_end"] and arch not in HYBRID_ARCH_NAMES:
        raise click.BadParameter(
            "--front-end starts a new hybrid's convolutions; give --arch hybrid or hybrid-large",
            param_hint="--front-end",
        )
    if o["mlm_weight"] and arch in NUCLEOTIDE_ARCHS:
        raise click.BadParameter(
            f"--arch {arch} has no masked-LM head; use a DNABERT-2 --arch (tiny, small, base)",
            param_hint="--mlm-weight",
        )
    targets = TargetOptions(
        paths=list(o["targets"]),
        label_column=o["label_column"],
        label_separator=o["label_sep"],
        groups=o["task_groups"],
        any_task=o["any_task"],
        centre_bin=o["centre_bin"],
    )
    windows = WindowOptions(
        window=o["window"],
        train_windows=o["train_windows"],
        val_windows=o["val_windows"],
        test_windows=o["test_windows"],
        element_share=o["element_share"],
        shift=o["shift"],
        max_n=o["max_n"],
        exclude=o["exclude"],
        chroms=chroms,
        val_chroms=o["val_chroms"],
        test_chroms=o["test_chroms"],
        seed=mlm["seed"],
    )
    settings = TrainSettings(
        epochs=o["epochs"],
        batch_size=mlm["batch_size"],
        learning_rate=mlm["learning_rate"],
        warmup_ratio=mlm["warmup_ratio"],
        weight_decay=mlm["weight_decay"],
        patience=o["patience"],
        rc_augment=o["rc_augment"],
        shift_augment=o["shift_augment"],
        mlm_weight=o["mlm_weight"],
        mask_prob=mlm["mask_prob"],
        mixed_precision=mlm["mixed_precision"],
        seed=mlm["seed"],
        cpu=mlm["cpu"],
    )
    return pretrain_multitask(
        list(genomes),
        out,
        targets,
        windows,
        settings,
        arch=arch,
        pooling=o["pooling"],
        front_end=o["front_end"],
        null_windows=o["null_windows"],
        resume=resume,
        force=force,
        progress=not ctx.obj.get("quiet", False),
    )


def _multitask_summary(report: dict, out: str) -> str:
    lines = [
        f"{'held-out test':16} {'mean ROC-AUC':>12} {'mean PR-AUC':>11} {'any ROC-AUC':>11} "
        f"{'open vs closed':>14}"
    ]
    for name, key in (("model", "model"), ("GC/CpG logreg", "baseline_gc_cpg")):
        r = report[key]
        any_auc = r["per_task"].get("any", {}).get("roc_auc")
        closed = r.get("elements_vs_closed", {}).get("roc_auc")
        lines.append(
            f"{name:16} {r['roc_auc']:12.3f} {r['pr_auc']:11.3f} {_auc(any_auc):>11} "
            f"{_auc(closed):>14}"
        )
    return "\n".join(lines) + f"\nmulti-task model written to {out}"


def _auc(value: float | None) -> str:
    return "" if value is None else f"{value:.3f}"


#: Options of the masked-LM mode only.
MLM_OPTIONS = (
    "steps",
    "seq_bases",
    "max_n_fraction",
    "checkpoint_every",
    "tokenizer",
    "vocab_size",
)


def _refuse_other_mode(ctx: click.Context, supervised: bool) -> None:
    """An option of the other mode, given on the command line, is an error: it would be
    ignored."""
    from click.core import ParameterSource

    others = MLM_OPTIONS if supervised else SUPERVISED_OPTIONS[1:]
    given = [
        name for name in others if ctx.get_parameter_source(name) == ParameterSource.COMMANDLINE
    ]
    if given:
        option = "--" + given[0].replace("_", "-")
        if option == "--train-windows":
            option = "--windows"
        mode = "masked-LM pretraining (without --targets)" if supervised else "--targets"
        raise click.UsageError(f"{option} is an option of {mode}; drop it")
