"""``enhscan genome``: scan a reference genome into a bigWig track and enhancer calls."""

from __future__ import annotations

import click

from enhscan.cli.options import (
    comma_list,
    device_options,
    force_option,
    model_option,
    window_options,
)


@click.command(short_help="Scan a genome: bigWig track + BED calls.")
@click.argument("fasta", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(path_type=str),
    help="Output folder (created if missing).",
)
@model_option
@window_options
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Call threshold on the enhancer probability  [default: the model's]",
)
@click.option(
    "--chroms",
    multiple=True,
    callback=comma_list,
    help="Sequences to scan: names or shell patterns, comma-separated or repeated "
    "(chr20 matches 20).",
)
@click.option(
    "--regions",
    type=click.Path(dir_okay=False, path_type=str),
    help="BED of regions to scan instead of whole chromosomes.",
)
@click.option(
    "--exclude",
    type=click.Path(dir_okay=False, path_type=str),
    help="BED of regions never to score (e.g. the ENCODE blacklist).",
)
@device_options
@force_option
@click.pass_context
def genome(ctx: click.Context, fasta: str, out: str, model: str | None, **options) -> None:
    """Slide windows over every chromosome of FASTA and score each with the model.

    Writes OUT/scores.bw (enhancer probability track), OUT/calls.narrowPeak (regions at or
    above the threshold) and OUT/run.json (parameters, counts, timing, versions).
    FASTA may be plain or bgzip-compressed (a missing .fai is built), or .2bit.
    """
    from enhscan.scan import ScanSettings, scan_genome

    if model is None:
        from enhscan.model import default_model_path

        model = default_model_path()
        if model is None:
            raise click.UsageError(
                "this enhscan build ships no default model; pass --model DIR (a folder "
                "written by enhscan train)"
            )
    settings = ScanSettings(progress=not ctx.obj.get("quiet", False), **options)
    record = scan_genome(fasta, model, out, settings)
    if not ctx.obj.get("quiet", False):
        windows = record["windows"]
        click.echo(
            f"scored {windows['scored']:,} windows ({windows['skipped_n']:,} skipped for N) in "
            f"{record['wall_seconds']:.1f} s; {record['calls']:,} calls; outputs in {out}",
            err=True,
        )
