"""``enhscan predict``: score given sequences or regions into a TSV."""

from __future__ import annotations

import click

from enhscan.cli.options import (
    device_options,
    force_option,
    kernels_option,
    model_option,
    quantize_option,
    rc_option,
)


@click.command(short_help="Score sequences or regions: FASTA, BED + genome, or a table.")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-g",
    "--genome",
    "genome_path",
    type=click.Path(dir_okay=False, path_type=str),
    help="Reference FASTA (or .2bit) for a BED INPUT.",
)
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(path_type=str),
    help="Output TSV file.",
)
@model_option
@click.option(
    "--as-is",
    is_flag=True,
    help="Score BED regions exactly as given, not as the model's window (1 kb) centred on "
    "each summit.",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Threshold for the label column  [default: the model's]",
)
@click.option(
    "--task",
    default=None,
    metavar="NAME",
    help="For a multi-task model (enhscan pretrain --targets): the task to score, or all (a "
    "column per task)  [default: any]",
)
@rc_option
@device_options
@quantize_option
@kernels_option
@force_option
@click.pass_context
def predict(ctx: click.Context, input_path: str, out: str, model: str | None, **options) -> None:
    """Score each sequence of INPUT with the model and write OUT as a TSV: id, chrom, start,
    end, length, non_acgt, probability, label.

    INPUT is a FASTA (each record), a BED or narrowPeak with --genome (the model's window
    centred on each summit, or the region itself with --as-is), or a CSV/TSV table with a
    'sequence' column (and optionally 'id' or 'name'). Plain or gzip.
    """
    from enhscan.model import required_default_model_path
    from enhscan.predict import predict as run_predict

    model = model or str(required_default_model_path())
    summary = run_predict(input_path, model, out, **options)
    if not ctx.obj.get("quiet", False):
        click.echo(
            f"scored {summary['inputs']:,} sequences; {summary['at_or_above_threshold']:,} at or "
            f"above the threshold {summary['threshold']:.3g}; wrote {out}",
            err=True,
        )
