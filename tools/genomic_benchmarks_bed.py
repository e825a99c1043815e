#!/usr/bin/env python3
"""Turn a Genomic Benchmarks coordinate table (lifted to GRCh37) into BED files per class.

    GB=../shared/data/labels/genomic_benchmarks_grch37_chr20_chrX
    python tools/genomic_benchmarks_bed.py \\
        $GB/human_enhancers_cohn.hg38_lifted_to_GRCh37_chr20_chrX70M.csv.gz --out-dir data/cohn

writes OUT_DIR/positive.bed and OUT_DIR/negative.bed (BED6: chrom, start, end, id, 0, strand;
0-based half-open, GRCh37, chromosome names as in the table, `chr20`/`chrX`) for
`enhscan train --genome ... --positives positive.bed --negatives negative.bed`. The table's
columns are `split,label,gb_id,...,grch37_chrom,grch37_start,grch37_end,...` (see the shared
data README); the benchmark's own train/test split is ignored (enhscan makes its own).
"""

from __future__ import annotations

import csv
import gzip
from pathlib import Path

import click


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("table", type=click.Path(exists=True, dir_okay=False))
@click.option("--out-dir", required=True, type=click.Path(file_okay=False))
@click.option(
    "--min-length",
    type=int,
    default=50,
    show_default=True,
    help="Drop intervals shorter than this (the Ensembl set has a few 2 bp ones).",
)
def main(table: str, out_dir: str, min_length: int) -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    opener = gzip.open if table.endswith(".gz") else open
    rows: dict[str, list[tuple[str, int, int, str, str]]] = {}
    with opener(table, "rt") as handle:
        for row in csv.DictReader(handle):
            start, end = int(row["grch37_start"]), int(row["grch37_end"])
            if end - start < min_length:
                continue
            rows.setdefault(row["label"], []).append(
                (row["grch37_chrom"], start, end, row["gb_id"], row["strand"])
            )
    for label, intervals in rows.items():
        intervals.sort(key=lambda r: (r[0], r[1]))
        path = out / f"{label}.bed"
        with open(path, "w") as bed:
            for chrom, start, end, name, strand in intervals:
                bed.write(f"{chrom}\t{start}\t{end}\t{name}\t0\t{strand}\n")
        click.echo(f"{path}: {len(intervals)} intervals")


if __name__ == "__main__":
    main()
