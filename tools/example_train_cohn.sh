#!/usr/bin/env bash
# The README's worked example of `enhscan train` on real labels: the Genomic Benchmarks
# human_enhancers_cohn set lifted to GRCh37, chromosome 20 and the first 70 Mb of chrX from
# ../shared/data. Trains on chr20 (with a random validation share), tests on chrX.
#   bash tools/example_train_cohn.sh [OUT_DIR] [extra enhscan train options...]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DATA:-$here/../shared/data}
out=${1:-cohn_model}
shift || true
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
python "$here/tools/genomic_benchmarks_bed.py" \
    "$shared/labels/genomic_benchmarks_grch37_chr20_chrX/human_enhancers_cohn.hg38_lifted_to_GRCh37_chr20_chrX70M.csv.gz" \
    --out-dir "$work"
enhscan train \
    --genome "$shared/genomes/grch37_chr20.fa.gz" --genome "$shared/genomes/grch37_chrX_0-70M.fa.gz" \
    --positives "$work/positive.bed" --negatives "$work/negative.bed" \
    --holdout-chroms chrX --arch small --epochs 8 --batch-size 32 --lr 3e-4 \
    --out "$out" "$@"
