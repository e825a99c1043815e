"""``enhscan evaluate``: score a scan against known enhancers."""

from __future__ import annotations

import click

from enhscan.cli.options import force_option


@click.command(short_help="Score a scan against known enhancers (PR-AUC, calls by overlap).")
@click.argument("tracks_dir", type=click.Path(exists=True, file_okay=False, path_type=str))
@click.option(
    "--positives",
    required=True,
    type=click.Path(dir_okay=False, path_type=str),
    help="BED of known enhancers.",
)
@click.option(
    "--negatives",
    type=click.Path(dir_okay=False, path_type=str),
    help="BED of known non-enhancers (adds the region-level view).",
)
@click.option(
    "--region-score",
    type=click.Choice(["centre", "max", "mean"]),
    default="centre",
    show_default=True,
    help="A region's score: the track at its centre (the window centred nearest to "
    "it), or the max or mean over it.",
)
@click.option(
    "-o",
    "--out",
    type=click.Path(file_okay=False, path_type=str),
    default=None,
    help="Report folder  [default: TRACKS_DIR/evaluation]",
)
@force_option
@click.pass_context
def evaluate(
    ctx: click.Context,
    tracks_dir: str,
    positives: str,
    negatives: str | None,
    region_score: str,
    out: str | None,
    force: bool,
) -> None:
    """Compare the track and calls in TRACKS_DIR (from `enhscan genome`) with known regions.

    Writes evaluation.json, pr_curve.png, roc_curve.png, score_distributions.png and
    precision_by_calls.png.
    """
    from enhscan.evaluate import evaluate_scan

    report = evaluate_scan(
        tracks_dir, positives, negatives, region_score=region_score, out_dir=out, force=force
    )
    if ctx.obj.get("quiet", False):
        return
    for level in ("region_level", "window_level"):
        m = report.get(level)
        if m:
            click.echo(
                f"{level.replace('_', ' ')}: n={m['n']} ({m['n_positive']} enhancers) "
                f"PR-AUC {m['pr_auc']:.3f} ROC-AUC {m['roc_auc']:.3f} best F1 "
                f"{m['f1']:.3f} at {m['threshold']:.3f}"
            )
    calls = report.get("calls")
    if calls and calls["calls"]:
        click.echo(
            f"calls ({calls['rule'] or 'rule not recorded'}): {calls['calls']}, precision "
            f"{calls['precision']:.3f}, recall {calls['recall']:.3f} (by overlap); "
            f"{calls['called_fraction']:.1%} of scored bases called, enhancer bases "
            f"{_fold(calls['fold_enrichment'])} enriched in them"
        )
    left = report["truth_left_out"]
    if any(left.values()):
        names = ", ".join(sorted(report["truth_unknown_chromosomes"])[:8])
        click.echo(
            f"left out: {left['unknown_chromosome']} regions on sequences the scan lacks"
            f"{' (' + names + ')' if names else ''}, {left['past_chromosome_end']} past a "
            f"chromosome end, {left['duplicates']} listed twice, {left['conflicting_labels']} "
            "with both labels",
            err=True,
        )
    unscored = report.get("truth_unscored")
    if unscored and any(unscored.values()):
        click.echo(f"unscored (no track value: not scanned or N): {unscored}", err=True)


def _fold(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}x"
