#!/usr/bin/env bash
# Rebuild enhscan's shipped default model (v4, hybrid-large) from the real data in
# ../shared/data, with enhscan's own commands, and score it on the held-out GRCh37 chrX and on
# hg38 chr2:0-2,333,275.
#
#   bash tools/make_default_model.sh [WORK_DIR]     (about 1 hour 40 minutes on 2 CPU cores)
#   INSTALL=1 bash tools/make_default_model.sh      (then copy it into enhscan/data/default_model)
#   EXTRA_MODELS="NAME=DIR ..." adds rows to the scorecard (step 5).
#   ATLAS_WINDOWS=N pretrains step 3 on N windows (default 80,000; 160,000 was measured and
#   did not move the fine-tuned model: README, "What more compute buys").
#
# Resumable: each step is skipped when its output is complete and resumed when it was
# interrupted, so run the same command again after a stop. Steps:
# 1. Labels (tools/enhancer_labels.sh): the Genomic Benchmarks human_enhancers_cohn and
#    human_enhancers_ensembl sets, lifted to GRCh37, on chr20, chr22 and chrX; each enhancer
#    against its own background.
# 2. Supervised multi-task pretraining of a CNN on the REMO atlas (tools/make_atlas_model.sh:
#    cnn-deep, 80,000 chr20 windows, one target per tissue plus "any", shift augmentation of
#    50 bp, 6 epochs; chr22 validates, chrX is held out). About 40 minutes.
# 3. The same atlas tasks for the whole hybrid-large (convolutions feeding a 4-layer DNABERT-2
#    encoder, mean pooling): its convolutions start from step 2's CNN (`--front-end`), and it
#    learns the same 80,000 windows for 2 epochs. About 17 minutes.
# 4. Fine-tuning of step 3's model (`train --base`) on the enhancer labels of chr20 + chr22
#    together, each set's own background plus as many GC-matched random windows, allotted per
#    chromosome (`--add-background 1`: composition alone cannot tell those from enhancers),
#    reverse-complement and 20 bp shift augmentation, chrX held out, with the CNN and GC/CpG
#    baselines and a background null of 20,000 random chrX windows. Seed 0. The options every
#    fine-tune of the recipe shares are in tools/finetune_recipe.sh. About 15 minutes.
# 5. The scorecard (benchmarks/model_quality.py): the new model against the installed default,
#    EXTRA_MODELS and the GC/CpG regression. About 10 minutes.
# 6. recipe.json in the model folder: the commands, where and how long each step ran, the
#    package versions and the scorecard.
# On a lent GPU, tools/gpu_models.sh runs steps 2 to 4 at GPU scale (a larger atlas, more
# epochs, several seeds) for this script's scorecard to compare.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED_DATA:-$here/../shared/data}
work=${1:-$here/build/default_model_v4}
G=$shared/genomes
atlas=$shared/labels/remo_v1/remo_v1.grch37_chr20_chr22_chrX.bed.gz
mkdir -p "$work/labels"
steps="$work/steps.tsv"
machine=$(python -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU')")
machine="$machine, $(nproc) cores ($(lscpu | sed -n 's/^Model name: *//p' | head -1))"

step() {  # step NAME DONE_FILE COMMAND...: run COMMAND unless DONE_FILE exists; log its time
    local name=$1 done_file=$2
    shift 2
    if [ -e "$done_file" ]; then
        echo "step $name: done already ($done_file)"
        return
    fi
    local t0=$SECONDS
    "$@"
    printf '%s\t%s\t%s\t%s\n' "$name" $((SECONDS - t0)) "$machine" "$*" >> "$steps"
}

# 1. Labels.
step labels "$work/labels/negative.bed" bash "$here/tools/enhancer_labels.sh" "$work/labels"

# 2. Multi-task pretraining of the CNN on the atlas (itself resumable).
step pretrain "$work/atlas_cnn-deep/pretraining/metrics.json" \
    bash "$here/tools/make_atlas_model.sh" "$work" cnn-deep

# 3. hybrid-large on the same atlas tasks, its convolutions from step 2's CNN.
resume=()
[ -d "$work/atlas_hybrid-large/pretraining/work/checkpoint" ] && resume=(--resume)
step pretrain-hybrid "$work/atlas_hybrid-large/pretraining/metrics.json" \
    enhscan pretrain "$G/grch37_chr20.fa.gz" "$G/grch37_chr22.fa.gz" "$G/grch37_chrX_0-70M.fa.gz" \
    --targets "$atlas" --label-column 6 \
    --task-groups "$work/remo_cell_type_tissues.tsv" --val-chroms 22 --test-chroms X \
    --arch hybrid-large --front-end "$work/atlas_cnn-deep" --windows "${ATLAS_WINDOWS:-80000}" --val-windows 4000 \
    --test-windows 10000 --epochs 2 --patience 0 --batch-size 64 --lr 3e-4 --seed 0 \
    --shift-augment 50 --null-windows 0 --out "$work/atlas_hybrid-large" --force "${resume[@]}"

# 4. Fine-tuned on the enhancer labels.
source "$here/tools/finetune_recipe.sh"
finetune=(--genome "$G/grch37_chr20.fa.gz" --genome "$G/grch37_chr22.fa.gz"
          --genome "$G/grch37_chrX_0-70M.fa.gz"
          --positives "$work/labels/positive.bed" --negatives "$work/labels/negative.bed"
          "${finetune_recipe[@]}" --epochs 12 --patience 4 --seed 0
          --base "$work/atlas_hybrid-large" --out "$work/model")
resume=()
[ -d "$work/model/training/work" ] && resume=(--resume) || resume=(--force)
step finetune "$work/model/training/metrics.json" enhscan train "${finetune[@]}" "${resume[@]}"

# 5. The scorecard, against the model installed now.
read -r -a extra <<< "${EXTRA_MODELS:-}"
step scorecard "$work/scorecard.json" python "$here/benchmarks/model_quality.py" \
    "new default (hybrid-large)=$work/model" "installed default=default" "${extra[@]}" \
    --json "$work/scorecard.json"

# 6. recipe.json.
python - "$work" "$steps" <<'PY'
import json, sys
from importlib.metadata import version
work, steps = sys.argv[1], sys.argv[2]
rows = [line.rstrip("\n").split("\t") for line in open(steps)]
recipe = {
    "script": "tools/make_default_model.sh",
    "steps": [{"step": s, "seconds": int(t), "machine": m, "command": c} for s, t, m, c in rows],
    "versions": {p: version(p) for p in ("enhscan", "torch", "numpy")},
    "scorecard": json.load(open(f"{work}/scorecard.json")),
}
with open(f"{work}/model/recipe.json.tmp", "w") as out:
    json.dump(recipe, out, indent=2)
PY
mv "$work/model/recipe.json.tmp" "$work/model/recipe.json"
echo "the model: $work/model (scorecard: $work/scorecard.json)"

if [ "${INSTALL:-0}" = 1 ]; then
    target="$here/enhscan/data/default_model"
    rm -rf "$target.new" && mkdir -p "$target.new"
    cp "$work"/model/{config.json,model.safetensors,enhscan.json,recipe.json} "$target.new/"
    cp "$work"/model/background_null.{npz,json} "$target.new/"
    rm -rf "$target" && mv "$target.new" "$target"
    echo "installed the model in $target"
fi
