"""``enhscan genome``: scan a reference genome into a bigWig track and enhancer calls."""

from __future__ import annotations

from functools import partial

import click

from enhscan.cli.interrupts import ON_INTERRUPT, shards_hint
from enhscan.cli.options import (
    comma_list,
    device_options,
    force_option,
    kernels_option,
    model_option,
    processes_option,
    quantize_option,
    rc_option,
    resume_options,
    task_option,
    track_formats,
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
@click.option(
    "--format",
    "formats",
    default="bigwig",
    show_default=True,
    callback=track_formats,
    help="Track file(s): bigwig (scores.bw), bedgraph (scores.bedGraph, text), or bigwig,bedgraph.",
)
@click.option(
    "--assembly",
    metavar="NAME",
    help="UCSC assembly name for the track hub (hg38, hg19, mm10, ...)  [default: guessed "
    "from the FASTA's file name]",
)
@click.option(
    "--track",
    type=click.Choice(["log10p", "probability"]),
    default="log10p",
    show_default=True,
    help="What the track holds: -log10 p of each window against the model's background null "
    "(2 = as high as 1 random genome window in 100), or the model's enhancer probability.",
)
@model_option
@task_option
@window_options
@click.option(
    "--fdr",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    metavar="RATE",
    help="Call windows at this false-discovery rate (Benjamini-Hochberg over all scored "
    "windows)  [default: 0.05 unless --threshold or --call-top]",
)
@click.option(
    "--threshold",
    type=click.FloatRange(0, 1),
    default=None,
    help="Instead of --fdr, call windows whose enhancer probability is at least this.",
)
@click.option(
    "--call-top",
    type=click.FloatRange(0, 1, min_open=True),
    default=None,
    metavar="FRACTION",
    help="Instead of --fdr, call the best-scoring FRACTION of the scored windows "
    "genome-wide (0.02: the top 2%).",
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
@rc_option
@device_options
@click.option(
    "--batch-invariant",
    is_flag=True,
    help="Scores identical to the last bit whatever --batch-size (and so on GPUs with other "
    "free memory); up to about half as fast on the CPU.",
)
@quantize_option
@kernels_option
@click.option(
    "--compile",
    is_flag=True,
    help="Run the model through torch.compile, for GPUs: compiling takes up to a minute at "
    "start-up; on the CPU it was measured to gain nothing.",
)
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count the windows and time a short calibration on this device, print the "
    "projected run time, and write nothing.",
)
@resume_options
@click.option(
    "--shard-windows",
    type=click.IntRange(min=1),
    default=20_000,
    show_default=True,
    help="Windows per shard (the first three: an eighth, a quarter, a half): the unit of work "
    "shared out between processes and of --resume.",
)
@processes_option
@force_option
@click.pass_context
def genome(
    ctx: click.Context,
    fasta: str,
    out: str | None,
    model: str | None,
    dry_run: bool,
    processes: int,
    **options,
) -> None:
    """Slide windows over every chromosome of FASTA and score each with the model.

    Writes OUT/scores.bw (the track: -log10 p of each window against the model's background
    null), OUT/calls.narrowPeak (regions called at FDR 0.05, with p- and q-values) and
    OUT/run.json (parameters, calling rule, counts, timing, versions).
    FASTA may be plain or bgzip-compressed (a missing .fai is built), or .2bit.
    """
    from enhscan.scan import ScanSettings, scan_genome

    if processes > 1 and not dry_run:
        from enhscan.cli.launch import launch_processes

        ctx.exit(launch_processes(processes, options["device"]))
    if model is None:
        from enhscan.model import required_default_model_path

        model = str(required_default_model_path())
    settings = ScanSettings.of(progress=not ctx.obj.get("quiet", False), **options)
    if dry_run:
        from enhscan.scan.dryrun import project_scan

        click.echo(format_projection(project_scan(fasta, model, settings), settings.scan.stride))
        return
    if out is None:
        raise click.UsageError("Missing option '-o' / '--out' (a folder for the outputs).")
    ctx.meta[ON_INTERRUPT] = partial(_interrupted_scan, out)
    record = scan_genome(fasta, out, model, settings)
    if record is not None and not ctx.obj.get("quiet", False):
        windows = record["windows"]
        click.echo(
            f"scored {windows['scored']:,} windows ({windows['skipped_n']:,} skipped for N) in "
            f"{record['wall_seconds']:.1f} s; {record['calls']:,} calls; outputs in {out}",
            err=True,
        )


def _interrupted_scan(out: str) -> str:
    """What an interrupted scan kept, and the command that continues it."""
    from enhscan.scan.shards import ShardStore

    return shards_hint(ShardStore(out))


def format_projection(p, stride: int) -> str:
    """The dry-run report, a few lines of text."""
    skipped = p.sampled_skipped_n / p.sampled if p.sampled else 0.0
    how = p.backend.describe() + (f", both strands ({p.rc})" if p.rc else "")
    return "\n".join(
        [
            f"windows to scan:  {p.windows:,} over {p.chromosomes:,} sequences "
            f"({p.bases:,} bp, stride {stride})",
            f"calibration:      {p.windows_per_second:,.1f} windows/s on {how} "
            f"({p.sampled:,} windows sampled, {skipped:.0%} skipped for N)",
            f"stages:           tokenizing {p.tokenize_windows_per_second:,.1f} windows/s on "
            f"{p.cpu_cores} CPU core{'' if p.cpu_cores == 1 else 's'}, "
            f"model {p.model_windows_per_second:,.1f} windows/s: " + pace_note(p),
            f"projected time:   {format_duration(p.projected_seconds)} of scoring "
            "(plus a few seconds to start)",
        ]
    )


def pace_note(p) -> str:
    """Which stage will set the scan's pace, and what to do when it is not the model."""
    if p.pace_setter == "model":
        return "the model sets the pace"
    if p.backend.device.type == "cpu":
        return "tokenizing takes the larger share of the CPU"
    return "tokenizing sets the pace; more CPU cores for this process would speed it up"


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
