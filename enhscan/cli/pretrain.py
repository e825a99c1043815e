"""``enhscan pretrain``: masked-language-model pretraining on reference sequence."""

from __future__ import annotations

import click

from enhscan.cli.options import comma_list, force_option


@click.command(short_help="Pretrain a DNABERT-2-architecture model on a genome (masked LM).")
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
    type=click.Choice(["tiny", "small", "base"]),
    default="small",
    show_default=True,
    help="Model shape; base is DNABERT-2-117M.",
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
    help="Share of tokens to predict.",
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
    """Pretrain by masked-token prediction on random windows of GENOMES (FASTA or 2bit).

    The folder written has the parameter names of a DNABERT-2 masked-LM checkpoint
    (bert.* and cls.predictions.*); fine-tune it with `enhscan train --base OUT`.
    """
    from enhscan.training.pretrain import PretrainSettings
    from enhscan.training.pretrain import pretrain as run

    quiet = ctx.obj.get("quiet", False)
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
            f"pretrained {summary['steps']} steps: loss {final['loss']:.4f}, masked-token "
            f"accuracy {final['masked_accuracy']:.4f}; model in {out}",
            err=True,
        )
