#!/usr/bin/env python3
"""Draw the enhscan track and calls over one locus as a PNG (for the README, or a quick look).

    python tools/plot_locus.py TRACKS_DIR chr2:100000-160000 locus.png [--truth known.bed]

Shows the track (scores.bw: -log10 p against the model's background null, or the enhancer
probability, as the scan chose), the cut-off of the run's calls in the same units, the called
regions (calls.narrowPeak) and, with --truth, known enhancers from a BED file. Coordinates
are 0-based, half-open; chromosome names in --truth may be chr20 or 20.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import numpy as np


def _parse_locus(text: str) -> tuple[str, int, int]:
    match = re.fullmatch(r"(.+):([\d,]+)-([\d,]+)", text)
    if not match:
        raise click.BadParameter("use CHROM:START-END, e.g. chr2:100000-160000")
    start, end = (int(x.replace(",", "")) for x in match.group(2, 3))
    if end <= start:
        raise click.BadParameter("END must be larger than START")
    return match.group(1), start, end


def _intervals(path: Path, chrom: str, start: int, end: int) -> list[tuple[int, int]]:
    from enhscan.naming import name_variants

    names = set(name_variants(chrom))
    found = []
    for line in path.read_text().splitlines():
        fields = line.split("\t")
        if len(fields) >= 3 and fields[0] in names:
            s, e = int(fields[1]), int(fields[2])
            if s < end and e > start:
                found.append((max(s, start), min(e, end)))
    return found


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("tracks_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("locus")
@click.argument("out_png", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--truth",
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="BED of known enhancers to draw under the calls.",
)
@click.option("--title", default=None, help="Figure title.")
def main(tracks_dir: Path, locus: str, out_png: Path, truth: Path | None, title: str | None):
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from enhscan.io.bigwig import open_bigwig

    chrom, start, end = _parse_locus(locus)
    with open_bigwig(tracks_dir / "scores.bw") as bw:
        if chrom not in bw.chroms():
            raise click.BadParameter(f"{chrom} is not in the track", param_hint="LOCUS")
        values = np.array(bw.values(chrom, start, min(end, bw.chroms()[chrom])), dtype=float)
    record = tracks_dir / "run.json"
    run = json.loads(record.read_text()) if record.exists() else {}
    kind = run.get("parameters", {}).get("track", "probability")
    calling = run.get("calling", {})
    if kind == "probability":
        threshold, label, top = run.get("parameters", {}).get("threshold"), "probability", 1.0
    else:
        threshold, label = calling.get("log10p_threshold"), "-log10 p"
        top = max(3.0, float(np.nanmax(values)) * 1.1, (threshold or 0) * 1.1)
    rule = calling.get("described", "threshold")
    calls = _intervals(tracks_dir / "calls.narrowPeak", chrom, start, end)
    known = _intervals(truth, chrom, start, end) if truth else []

    fig = Figure(figsize=(10, 3.2), dpi=120)
    ax, lanes = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [3, 1]})
    x = np.arange(start, start + len(values))
    ax.fill_between(x, np.nan_to_num(values), step="post", color="#3b6ea8", alpha=0.35, lw=0)
    ax.plot(x, values, color="#3b6ea8", lw=1, drawstyle="steps-post", label=f"track ({label})")
    if threshold is not None:
        ax.axhline(threshold, color="#c0392b", lw=1, ls="--", label=f"calls: {rule}")
    ax.set_ylim(0, top)
    ax.set_ylabel(label)
    ax.legend(loc="upper right", fontsize=8, frameon=False)
    ax.set_title(title or f"enhscan {chrom}:{start:,}-{end:,}", fontsize=10)
    for y, intervals, colour in ((1, calls, "#c0392b"), (0, known, "#2e8b57")):
        for s, e in intervals:
            lanes.add_patch(Rectangle((s, y + 0.15), e - s, 0.7, color=colour))
    lanes.set_ylim(0, 2)
    lanes.set_yticks([0.5, 1.5], ["known" if truth else "", "calls"])
    lanes.set_xlim(start, end)
    lanes.set_xlabel(f"{chrom} (0-based)")
    fig.tight_layout()
    fig.savefig(out_png)
    click.echo(f"wrote {out_png}: {len(calls)} calls, {len(known)} known regions in the locus")


if __name__ == "__main__":
    main()
