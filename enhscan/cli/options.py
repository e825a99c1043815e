"""Options shared by several subcommands, each defined once as a decorator."""

from __future__ import annotations

import logging
from collections.abc import Callable

import click

F = Callable


def _stack(*decorators: Callable[[F], F]) -> Callable[[F], F]:
    def apply(func: F) -> F:
        for decorator in reversed(decorators):
            func = decorator(func)
        return func

    return apply


def comma_list(
    ctx: click.Context, param: click.Parameter, value: tuple[str, ...]
) -> list[str] | None:
    """Callback for repeatable options that also take comma-separated items."""
    items = [item.strip() for chunk in value for item in chunk.split(",") if item.strip()]
    return items or None


def track_formats(ctx: click.Context, param: click.Parameter, value: str) -> tuple[str, ...]:
    """``bigwig,bedgraph`` -> ("bigwig", "bedgraph"), each known and given once."""
    from enhscan.scan.settings import TRACK_FORMATS

    formats = tuple(dict.fromkeys(v.strip().lower() for v in value.split(",") if v.strip()))
    unknown = [f for f in formats if f not in TRACK_FORMATS]
    if unknown or not formats:
        raise click.BadParameter(
            f"{value!r}: give {' and/or '.join(TRACK_FORMATS)}, comma-separated"
        )
    return formats


model_option = click.option(
    "-m",
    "--model",
    "model",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="enhscan model folder (or a fine-tuned DNABERT-2 folder)  [default: the model "
    "shipped with enhscan]",
)

max_n_option = click.option(
    "--max-n",
    type=click.IntRange(min=0),
    default=0,
    help="Skip windows with more than this many N (non-ACGT) bases.",
)

window_option = click.option(
    "--window",
    type=click.IntRange(min=1),
    default=None,
    help="Window width in bases  [default: the model's, normally 1000]",
)


def reference_option(what: str):
    """``-g/--genome``, required: the reference FASTA ``what`` lie on."""
    return click.option(
        "-g",
        "--genome",
        "genome_path",
        required=True,
        type=click.Path(dir_okay=False, path_type=str),
        help=f"Reference FASTA (or .2bit) {what}.",
    )


window_options = _stack(
    window_option,
    click.option(
        "--stride",
        type=click.IntRange(min=1),
        default=200,
        help="Distance between window starts in bases.",
    ),
    max_n_option,
)

device_options = _stack(
    click.option(
        "--device",
        default="auto",
        help="auto, cpu, cuda or cuda:N (auto: a GPU if PyTorch sees one).",
    ),
    click.option(
        "--dtype",
        type=click.Choice(["auto", "fp32", "bf16", "fp16"]),
        default="auto",
        help="Compute precision (auto: bf16 on GPU, fp32 on CPU).",
    ),
    click.option(
        "--batch-size",
        type=click.IntRange(min=1),
        default=None,
        help="Windows per forward pass  [default: on the CPU 32 (8 for wide models), on a "
        "GPU what half the free memory holds]",
    ),
)

quantize_option = click.option(
    "--quantize",
    is_flag=True,
    help="CPU only: int8 dynamic quantization of the model's Linear layers; 1.6-1.9x "
    "faster for DNABERT-2 models, no faster for the hybrid default; scores move by up to "
    "about 0.02.",
)

kernels_option = click.option(
    "--kernels",
    type=click.Choice(["auto", "fused", "plain"]),
    default="auto",
    show_default=True,
    help="fp32 on the CPU: fused oneDNN kernels (matmuls with the GELU, gate and residual "
    "folded in; scores move in the last bits only) or PyTorch's plain ones. auto: fused "
    "where they apply and pass a start-up check.",
)

rc_option = click.option(
    "--rc",
    type=click.Choice(["mean", "max"]),
    is_flag=False,
    flag_value="mean",
    default=None,
    help="Score both strands: each sequence and its reverse complement, keeping their mean "
    "(--rc or --rc mean) or max (--rc max). Twice the work.",
)

task_option = click.option(
    "--task",
    default=None,
    metavar="NAME",
    help="For a multi-task model (enhscan pretrain --targets): the task to score, or 'all' "
    "(genome: every task's track and calls in OUT/tasks/NAME/)  [default: any]",
)


def shift_augment_option(needs: str):
    """``--shift-augment``: per-epoch shifts of the training windows (``needs``: the option
    that gives windows a genome to widen them from)."""
    return click.option(
        "--shift-augment",
        type=click.IntRange(min=0),
        default=0,
        show_default=True,
        help=f"With {needs}: each epoch, show each training window moved by a random amount of "
        "at most this many bases (cut from the genome this much wider on each side).",
    )


#: ``--arch`` names of networks that read one-hot bases: no tokenizer, no masked-LM head (the
#: CNN and hybrid families' ``archs``, listed here so the CLI imports no torch; a test keeps
#: the two in step).
HYBRID_ARCH_NAMES = ("hybrid", "hybrid-large")
NUCLEOTIDE_ARCHS = ("cnn", "cnn-deep", *HYBRID_ARCH_NAMES)

pooling_option = click.option(
    "--pooling",
    type=click.Choice(["cls", "mean", "mean+max"]),
    default=None,
    help="DNABERT-2 models: classify from the [CLS] token (DNABERT-2's own) or the mean of "
    "all tokens; --arch hybrid: the mean, or the mean and the maximum of its positions  "
    "[default: cls for DNABERT-2, mean for the hybrid, or the --base folder's own]",
)


front_end_option = click.option(
    "--front-end",
    type=click.Path(exists=True, file_okay=False, path_type=str),
    help="--arch hybrid: start its convolution blocks from this CNN folder's (cnn-deep, e.g. "
    "pretrained on an atlas with `enhscan pretrain --targets`).",
)


resume_options = _stack(
    click.option(
        "--resume",
        is_flag=True,
        help="Continue the unfinished run for --out (killed, interrupted or failed), skipping "
        "its finished shards.",
    ),
    click.option(
        "--keep-shards", is_flag=True, help="Keep the finished shards after the run completes."
    ),
)

processes_option = click.option(
    "--processes",
    type=click.IntRange(min=1),
    default=1,
    show_default=True,
    help="Run this many processes through `accelerate launch` on this machine (one per GPU, "
    "or all on the one GPU --device cuda:N names; on the CPU, the cores are shared out), "
    "each with its share of the shards.",
)

force_option = click.option(
    "-f", "--force", is_flag=True, help="Overwrite outputs that already exist."
)


def set_verbosity(ctx: click.Context, verbose: int, quiet: bool) -> None:
    """Record -q / -v in ``ctx.obj`` (added to what was given before the subcommand) and set
    the log level: errors only with -q, else warnings, info (-v) or debug (-vv)."""
    ctx.obj["verbose"] = verbose = max(verbose, ctx.obj.get("verbose", 0))
    ctx.obj["quiet"] = quiet = quiet or ctx.obj.get("quiet", False)
    level = (
        logging.ERROR if quiet else (logging.WARNING, logging.INFO, logging.DEBUG)[min(verbose, 2)]
    )
    logging.basicConfig(level=level, format="enhscan: %(levelname)s: %(message)s", force=True)
    # transformers and accelerate are chatty at INFO; keep them at WARNING unless -vv.
    for noisy in ("transformers", "accelerate", "optuna", "urllib3"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if verbose >= 2 else logging.WARNING)


def verbosity_options() -> list[click.Option]:
    """-q and -v for a subcommand, doing what they do before it."""

    def apply(ctx: click.Context, param: click.Parameter, value) -> None:
        if value:
            root = ctx.find_root()
            root.ensure_object(dict)
            quiet, verbose = (True, 0) if param.name == "quiet" else (False, value)
            set_verbosity(root, verbose, quiet)

    return [
        click.Option(["-v", "--verbose"], count=True, expose_value=False, callback=apply,
                     help="More log messages (-vv for debug).", is_eager=True),
        click.Option(["-q", "--quiet"], is_flag=True, expose_value=False, callback=apply,
                     help="Only errors: no progress bar, no warnings.", is_eager=True),
    ]  # fmt: skip
