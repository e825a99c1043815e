"""``enhscan genome``: scan a reference genome into a bigWig track and enhancer calls."""

from __future__ import annotations

import click

from enhscan.cli.options import (
    comma_list,
    device_options,
    force_option,
    model_option,
    quantize_option,
    window_options,
)


@click.command(short_help="Scan a genome: bigWig track + BED calls.")
@click.argument("fasta", type=click.Path(dir_okay=False, path_type=str))
@click.option(
    "-o",
    "--out",
    type=click.Path(path_type=str),
    help="Output folder (created if missing); required unless --dry-run.",
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
@quantize_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count the windows and time a short calibration on this device, print the "
    "projected run time, and write nothing.",
)
@force_option
@click.pass_context
def genome(
    ctx: click.Context, fasta: str, out: str | None, model: str | None, dry_run: bool, **options
) -> None:
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
    if dry_run:
        from enhscan.dryrun import project_scan

        click.echo(format_projection(project_scan(fasta, model, settings), settings.stride))
        return
    if out is None:
        raise click.UsageError("Missing option '-o' / '--out' (a folder for the outputs).")
    record = scan_genome(fasta, model, out, settings)
    if not ctx.obj.get("quiet", False):
        windows = record["windows"]
        click.echo(
            f"scored {windows['scored']:,} windows ({windows['skipped_n']:,} skipped for N) in "
            f"{record['wall_seconds']:.1f} s; {record['calls']:,} calls; outputs in {out}",
            err=True,
        )


def format_projection(p, stride: int) -> str:
    """The dry-run report, a few lines of text."""
    skipped = p.sampled_skipped_n / p.sampled if p.sampled else 0.0
    how = f"{p.device}, {p.dtype}, batch {p.batch_size}" + (", int8" if p.quantize else "")
    return "\n".join(
        [
            f"windows to scan:  {p.windows:,} over {p.chromosomes:,} sequences "
            f"({p.bases:,} bp, stride {stride})",
            f"calibration:      {p.windows_per_second:,.1f} windows/s on {how} "
            f"({p.sampled:,} windows sampled, {skipped:.0%} skipped for N)",
            f"projected time:   {format_duration(p.projected_seconds)} of scoring "
            "(plus a few seconds to start)",
        ]
    )


def format_duration(seconds: float) -> str:
    """3725 -> '1 h 2 min'; 42 -> '42 s'."""
    if seconds != seconds:  # NaN: nothing to score
        return "nothing"
    seconds = round(seconds)
    if seconds < 60:
        return f"{seconds} s"
    minutes, secs = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {secs} s"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h"
