#!/usr/bin/env bash
# The default model's fine-tuning labels: the Genomic Benchmarks human_enhancers_cohn and
# human_enhancers_ensembl sets, lifted to GRCh37, on chr20, chr22 and chrX (from
# ../shared/data), each enhancer against its own background, as two sorted BED files.
#
#   bash tools/enhancer_labels.sh OUT_DIR     # OUT_DIR/positive.bed, OUT_DIR/negative.bed
#
# Used by tools/make_default_model.sh (step 1) and tools/gpu_models.sh (prepare).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DATA:-$here/../shared/data}
out=${1:?usage: bash tools/enhancer_labels.sh OUT_DIR}
mkdir -p "$out"
for set in cohn ensembl; do
    for table in "$shared/labels/genomic_benchmarks_grch37_chr20_chrX/human_enhancers_$set".*.csv.gz \
                 "$shared/labels/genomic_benchmarks_grch37_chr22/human_enhancers_$set".*.csv.gz; do
        python "$here/tools/genomic_benchmarks_bed.py" "$table" \
            --out-dir "$out/$set/$(basename "$table" .csv.gz)"
    done
done
for class in positive negative; do
    cat "$out"/*/*/$class.bed | sort -k1,1 -k2,2n > "$out/$class.bed.tmp"
    mv "$out/$class.bed.tmp" "$out/$class.bed"
done
