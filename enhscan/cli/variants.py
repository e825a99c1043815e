"""``enhscan variants``: what each variant of a VCF does to the model's enhancer score."""

from __future__ import annotations

from functools import partial

import click

from enhscan.cli.interrupts import ON_INTERRUPT, shards_hint
from enhscan.cli.options import (
    device_options,
    force_option,
    kernels_option,
    model_option,
    processes_option,
    quantize_option,
    rc_option,
    reference_option,
    resume_options,
    task_option,
    window_option,
)


@click.command(short_help="Score variants: reference vs alternate windows, into the VCF.")
@click.argument(
    "variants", required=False, type=click.Path(dir_okay=False, path_type=str), metavar="VARIANTS"
)
@reference_option("the variants were called on")
@click.option(
    "-o",
    "--out",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="Output VCF, bgzipped (X.vcf.gz; X.vcf.gz.tbi, X.json, X.png and with --tsv X.tsv "
    "beside it).",
)
@model_option
@window_option
@task_option
@click.option(
    "--regions",
    type=click.Path(dir_okay=False, path_type=str),
    help="BED: score only the variants in these regions (a scan's calls.narrowPeak, say).",
)
@click.option(
    "--on-mismatch",
    type=click.Choice(["skip", "error"]),
    default="skip",
    show_default=True,
    help="A REF that does not match the genome: skip the record (FILTER EHS_REF_MISMATCH) or "
    "stop with an error.",
)
@click.option("--tsv", is_flag=True, help="Also write a table, one row per allele (X.tsv).")
@click.option(
    "--saturate",
    metavar="REGION",
    help="Instead of VARIANTS, every possible SNV of REGION (chr:start-end, 1-based "
    "inclusive, as a browser shows it): in-silico mutagenesis as variants.",
)
@rc_option
@device_options
@quantize_option
@kernels_option
@resume_options
@click.option(
    "--chunk",
    type=click.IntRange(min=1),
    default=4096,
    show_default=True,
    help="Records per chunk: scored together (a window repeated in a chunk is scored once), "
    "and the unit shared out between processes and of --resume.",
)
@processes_option
@force_option
@click.pass_context
def variants(
    ctx: click.Context,
    variants: str | None,
    genome_path: str,
    out: str,
    model: str | None,
    saturate: str | None,
    processes: int,
    device: str,
    dtype: str,
    batch_size: int | None,
    quantize: bool,
    kernels: str,
    **options,
) -> None:
    """Score each alternate allele of VARIANTS (VCF, bgzipped VCF, BCF, or a chrom/pos/ref/alt
    table with 1-based pos) against its reference, and write OUT: the input VCF with INFO
    fields EHS_P_REF, EHS_P_ALT, EHS_DELTA (p_alt - p_ref), EHS_LOGODDS and, when the model
    holds a background null, EHS_PVAL_REF / EHS_PVAL_ALT. Symbolic alleles, missing ALTs and
    alleles longer than a window are skipped (EHS_SKIP says why); a REF that does not match
    the genome is never scored.
    """
    from enhscan.backend import ComputeOptions
    from enhscan.model import required_default_model_path
    from enhscan.variants import VariantOptions, score_variants

    if (variants is None) == (saturate is None):
        raise click.UsageError("give VARIANTS or --saturate REGION (one of them)")
    if processes > 1:
        from enhscan.cli.launch import launch_processes

        ctx.exit(launch_processes(processes, device))
    model = model or str(required_default_model_path())
    compute = ComputeOptions(device, dtype, batch_size, quantize, kernels=kernels)
    settings = VariantOptions(progress=not ctx.obj.get("quiet", False), **options)
    source = variants if saturate is None else saturation(saturate, genome_path)
    ctx.meta[ON_INTERRUPT] = partial(_interrupted, out)
    record = score_variants(source, genome_path, out, model, settings, compute)
    if record is not None and not ctx.obj.get("quiet", False):
        skipped = sum(record["skipped"].values())
        click.echo(
            f"scored {record['alleles_scored']:,} alleles of {record['records']:,} records "
            f"({skipped:,} skipped, {record['ref_mismatch']:,} REF mismatches) in "
            f"{record['wall_seconds']:.1f} s; wrote {out}",
            err=True,
        )


def saturation(region: str, genome_path: str):
    """The SNV records of ``--saturate REGION``: a function that yields them (each pass over
    the variants calls it again)."""
    from functools import partial

    from enhscan.io.fasta import open_genome
    from enhscan.variants import parse_region, saturation_records

    with open_genome(genome_path) as genome:
        chrom, start, end = parse_region(region, genome)
    records = partial(saturation_records, genome_path, chrom, start, end)
    records.description = f"--saturate {chrom}:{start + 1}-{end}"
    return records


def _interrupted(out: str) -> str:
    """What an interrupted variant scoring kept, and the command that continues it."""
    from enhscan.variants import shard_store

    return shards_hint(shard_store(out))
