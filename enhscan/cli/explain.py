"""``enhscan explain``: which bases make a call (in-silico mutagenesis of each region)."""

from __future__ import annotations

import click

from enhscan.cli.options import (
    device_options,
    force_option,
    kernels_option,
    model_option,
    processes_option,
    quantize_option,
    rc_option,
    reference_option,
    task_option,
    window_option,
)


@click.command(short_help="Explain calls: per-base attributions by in-silico mutagenesis.")
@click.argument("source", type=click.Path(exists=True, path_type=str), metavar="TRACKS_DIR|BED")
@reference_option("of the regions")
@click.option(
    "-o", "--out", required=True, type=click.Path(file_okay=False, path_type=str),
    help="Output folder (created if missing).",
)  # fmt: skip
@model_option
@task_option
@click.option(
    "--top",
    type=click.IntRange(min=1),
    default=10,
    show_default=True,
    help="From a scan's folder: explain its best this many calls (by probability).",
)
@click.option(
    "--method",
    type=click.Choice(["ism", "gradient", "both"]),
    default="ism",
    show_default=True,
    help="ism: in-silico mutagenesis (3 x window forward passes per region); gradient: "
    "gradient x input, one forward and backward pass (an approximation; DNABERT-2, hybrid "
    "and CNN models); both: ISM written, and each region's correlation with gradient x input "
    "reported.",
)
@click.option(
    "--motifs",
    default="jaspar",
    show_default=True,
    metavar="jaspar|none|FILE",
    help="Name the motifs in the stretches of high attribution: JASPAR CORE vertebrates (needs "
    "pyjaspar: pip install 'enhscan[motifs]'), a .jaspar or .meme file, or none.",
)
@click.option(
    "--motif-pvalue",
    type=click.FloatRange(0, 1, min_open=True),
    default=1e-4,
    show_default=True,
    help="The largest p-value of a motif hit kept.",
)
@window_option
@click.option(
    "--dry-run",
    is_flag=True,
    help="Count the regions, time the first region's edits on this device, print the "
    "projected time, and write nothing.",
)
@processes_option
@rc_option
@device_options
@quantize_option
@kernels_option
@force_option
@click.pass_context
def explain(
    ctx: click.Context,
    source: str,
    genome_path: str,
    out: str,
    model: str | None,
    device: str,
    dtype: str,
    batch_size: int | None,
    quantize: bool,
    kernels: str,
    dry_run: bool,
    processes: int,
    **options,
) -> None:
    """Explain the calls of a scan (TRACKS_DIR: its --out folder) or the regions of a BED:
    every base of the model's window centred on each summit is changed to the three others
    and the edited windows are scored; a base's attribution is the window's score minus the
    mean of its three edits (positive: the base supports the call).

    Writes OUT/attribution.bw (per base, beside the scan in IGV), OUT/regions/NAME.png (the
    attribution and a logo of the strongest stretch), OUT/attribution.tsv and
    OUT/explain.json. Costs 3 x window + 1 forward passes per region (3,001 for 1 kb).
    """
    from enhscan.backend import ComputeOptions
    from enhscan.explanation import ExplainOptions
    from enhscan.explanation import explain as run_explain
    from enhscan.model import required_default_model_path

    if processes > 1 and not dry_run:
        from enhscan.cli.launch import launch_processes

        ctx.exit(launch_processes(processes, device))
    model = model or str(required_default_model_path())
    compute = ComputeOptions(device, dtype, batch_size, quantize, kernels=kernels)
    settings = ExplainOptions(progress=not ctx.obj.get("quiet", False), **options)
    if dry_run:
        from enhscan.cli.genome import format_duration
        from enhscan.explanation import project

        cost = project(source, genome_path, model, settings, compute)
        seconds = cost["projected_seconds"]
        click.echo(
            f"regions to explain: {cost['regions']:,}; windows to score: {cost['windows']:,} "
            f"at {cost['windows_per_second']:,.1f} windows/s; projected time: "
            + (format_duration(seconds) if seconds is not None else "seconds (gradient x input)")
        )
        return
    record = run_explain(source, genome_path, out, model, settings, compute)
    if record is not None and not ctx.obj.get("quiet", False):
        click.echo(
            f"explained {record['regions']:,} regions in {record['seconds']:.1f} s "
            f"({record['seconds_per_region'] or 0:.1f} s each); outputs in {out}",
            err=True,
        )
