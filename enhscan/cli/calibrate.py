"""``enhscan calibrate``: store a model's background null (the scores of random genome windows)."""

from __future__ import annotations

import click

from enhscan.cli.options import comma_list, max_n_option


@click.command(short_help="Store a model's background null, for p- and q-values in scans.")
@click.argument("model_dir", type=click.Path(file_okay=False, path_type=str))
@click.option(
    "-g",
    "--genome",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="Genome to draw random windows from (FASTA, bgzip FASTA or 2bit); best the species "
    "you will scan, on sequences the model was not trained on.",
)
@click.option(
    "--chroms",
    multiple=True,
    callback=comma_list,
    help="Sequences to draw from: names or shell patterns  [default: all]",
)
@click.option(
    "--windows",
    type=click.IntRange(min=100),
    default=20_000,
    show_default=True,
    help="Random windows to score (each on both strands); the smallest p-value is 1/(windows+1).",
)
@click.option(
    "--exclude",
    type=click.Path(dir_okay=False, path_type=str),
    help="BED of regions no window may touch (e.g. the ENCODE blacklist).",
)
@max_n_option
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random draw.")
@click.option(
    "--task",
    default=None,
    metavar="NAME",
    help="For a multi-task model: the task the null is of (scans of that task use it)  "
    "[default: any]",
)
@click.option("--device", default="auto", help="auto, cpu, cuda or cuda:N.")
@click.option(
    "--batch-size", type=click.IntRange(min=1), default=None, help="Windows per forward pass."
)
@click.pass_context
def calibrate(ctx: click.Context, model_dir: str, genome: str, **options) -> None:
    """Score random N-free windows of GENOME with the model in MODEL_DIR and store their scores
    in it (background_null.npz and .json), replacing any stored before.

    `enhscan genome` then gives every window a p-value against them and calls at a
    false-discovery rate. `enhscan train` does this itself on its held-out sequences; use
    calibrate for a model trained elsewhere or taken to another species.
    """
    from enhscan.calibration import calibrate_model

    quiet = ctx.obj.get("quiet", False)
    null = calibrate_model(model_dir, genome, progress=not quiet, **options)
    if not quiet:
        q = null.info["quantiles"]["forward"]
        click.echo(
            f"stored a null of {null.windows:,} windows of {', '.join(null.info['sequences'][:5])} "
            f"in {model_dir} (median score {q['0.5']:.3f}, 99th percentile {q['0.99']:.3f})",
            err=True,
        )
