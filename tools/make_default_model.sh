#!/usr/bin/env bash
# Rebuild enhscan's shipped default model from the real data in ../shared/data, with
# enhscan's own commands, and measure it on a chromosome training never saw.
#
#   bash tools/make_default_model.sh [WORK_DIR]          (about an hour on a 2-core CPU)
#
# 1. Labels: the Genomic Benchmarks human_enhancers_cohn and human_enhancers_ensembl
#    (FANTOM5) sets lifted to GRCh37, each enhancer against its own background.
# 2. `enhscan pretrain` (masked LM) on GRCh37 chr20 only: the test chromosome's sequence is
#    never seen, not even unlabelled.
# 3. `enhscan train --base` on chr20 windows, chrX held out for testing, with the CNN and the
#    GC/CpG baselines on the same windows; the same training from scratch for comparison.
#    Training ends by scoring 20,000 random chrX windows as the model's background null
#    (p- and q-values, and calls at a false-discovery rate, in scans).
# 4. Scan the held-out chrX labelled regions with `enhscan genome` and score the scan with
#    `enhscan evaluate`.
# 5. Copy the model into enhscan/data/default_model (only with INSTALL=1).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DATA:-$here/../shared/data}
work=${1:-$here/build/default_model}
G=$shared/genomes
GB=$shared/labels/genomic_benchmarks_grch37_chr20_chrX
mkdir -p "$work/labels"

for set in cohn ensembl; do
    python "$here/tools/genomic_benchmarks_bed.py" \
        "$GB/human_enhancers_$set.hg38_lifted_to_GRCh37_chr20_chrX70M.csv.gz" \
        --out-dir "$work/labels/$set"
done
for class in positive negative; do
    sort -k1,1 -k2,2n "$work"/labels/{cohn,ensembl}/$class.bed > "$work/labels/$class.bed"
done
grep -P '^chrX\t' "$work/labels/positive.bed" > "$work/labels/chrX_positive.bed"
grep -P '^chrX\t' "$work/labels/negative.bed" > "$work/labels/chrX_negative.bed"

enhscan pretrain "$G/grch37_chr20.fa.gz" --out "$work/pretrained" --arch small \
    --steps 1500 --batch-size 32 --seq-bases 500 --lr 1e-3 --checkpoint-every 100 --seed 0 \
    --resume

common=(--genome "$G/grch37_chr20.fa.gz" --genome "$G/grch37_chrX_0-70M.fa.gz"
        --positives "$work/labels/positive.bed" --negatives "$work/labels/negative.bed"
        --holdout-chroms chrX --epochs 4 --batch-size 32 --lr 2e-4 --patience 2 --seed 0)
enhscan train "${common[@]}" --base "$work/pretrained" --out "$work/model" --resume
enhscan train "${common[@]}" --arch small --no-baseline --null-windows 0 --out "$work/scratch" \
    --resume

cat "$work/labels/chrX_positive.bed" "$work/labels/chrX_negative.bed" > "$work/labels/chrX_all.bed"
enhscan genome "$G/grch37_chrX_0-70M.fa.gz" --model "$work/model" --out "$work/chrX_scan" \
    --regions "$work/labels/chrX_all.bed" --force
enhscan evaluate "$work/chrX_scan" --positives "$work/labels/chrX_positive.bed" \
    --negatives "$work/labels/chrX_negative.bed"

python - "$work" <<'PY'
import json, sys
work = sys.argv[1]
model = json.load(open(f"{work}/model/training/metrics.json"))
scratch = json.load(open(f"{work}/scratch/training/metrics.json"))
rows = [("DNABERT-2 small, pretrained on chr20 (shipped)", model["model"]),
        ("DNABERT-2 small, from scratch", scratch["model"]),
        ("CNN baseline", model["baseline_cnn"]),
        ("GC/CpG logistic regression", model["baseline_gc_cpg"])]
print("| model | PR-AUC | ROC-AUC | best F1 | its threshold |")
print("|---|---|---|---|---|")
for name, r in rows:
    t, b = r["test"], r["test_best_f1_threshold"]
    print(f"| {name} | {t['pr_auc']:.3f} | {t['roc_auc']:.3f} | {b['f1']:.3f} | {b['threshold']:.3f} |")
PY

if [ "${INSTALL:-0}" = 1 ]; then
    target="$here/enhscan/data/default_model"
    rm -rf "$target" && mkdir -p "$target"
    cp "$work"/model/{config.json,model.safetensors,tokenizer.json,enhscan.json} "$target/"
    cp "$work"/model/background_null.{npz,json} "$target/"
    echo "installed the model in $target"
fi
