#!/usr/bin/env bash
# The heavy steps of the default-model recipe (tools/make_default_model.sh) at GPU scale, in
# one command of at most about 8 minutes on a lent GPU, for the device tool's 15-minute lease.
#
#   bash tools/gpu_models.sh prepare        # here, once: .gpu/ (genomes, atlas, labels), .whl/
#                                           # (the wheels of benchmarks/gpu_prepare.sh)
#   then, with the device tool: run(command="bash tools/gpu_models.sh run",
#                                   carry=[".gpu", ".whl"], timeout_s=590)
#   DRY=1 bash tools/gpu_models.sh run      # the same steps on the CPU at tiny sizes
#
# Steps of `run` (each an enhscan command; the log says where and how long each ran):
# 1. smoke: a tiny atlas pretraining on the GPU, so a broken CUDA path fails in seconds;
# 2. atlas-cnn: the cnn-deep CNN pretrained on the REMO atlas (160,000 chr20 windows, 10 epochs;
#    the CPU recipe: 80,000 windows, 6 epochs), chr22 validates, chrX held out;
# 3. at the same time:
#    atlas-hybrid: hybrid-large pretrained on the same atlas tasks, its convolutions from step 2
#      (supervised multi-task pretraining of the DNABERT-2-family model itself);
#    fine-tunes from step 2's front end (make_default_model.sh's step 3): hybrid and
#      hybrid-large, seeds 0, 1 and 2;
# 4. fine-tunes of hybrid-large from step 3's atlas model (`train --base`), seeds 0, 1 and 2.
# Out ($OUT, or gpu_models_out/): log.txt, steps.tsv, and tar files of the model folders (the
# fine-tuned ones with fp16 weights, to fit the device tool's 64 MB of returned files; the
# atlas CNN whole). Score them here with benchmarks/model_quality.py.
set -uo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
cd "$here"
data=${GPU_DATA:-.gpu}  # what prepare writes and run reads

prepare() {
    set -e
    local shared=${SHARED_DATA:-$here/../shared/data}
    if [ "$data" = .gpu ]; then
        for folder in /.whl/ /.gpu/; do
            grep -qxF "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >> .git/info/exclude
        done
    fi
    if [ "${WHEELS:-1}" = 1 ] && [ ! -d .whl ]; then bash benchmarks/gpu_prepare.sh; fi
    rm -rf "$data" && mkdir -p "$data"
    cp "$shared"/genomes/grch37_chr{20,22}.fa.gz* "$shared"/genomes/grch37_chrX_0-70M.fa.gz* "$data/"
    cp "$shared/labels/remo_v1/remo_v1.grch37_chr20_chr22_chrX.bed.gz" "$data/"
    tail -n +2 "$shared/labels/remo_v1/cell_types.tsv" | cut -f2,3 > "$data/remo_cell_type_tissues.tsv"
    bash tools/enhancer_labels.sh "$data/labels" > /dev/null
    du -sh "$data" $([ -d .whl ] && echo .whl)
}

if [ "${1:-}" = prepare ]; then prepare; exit; fi
[ "${1:-}" = run ] || { echo "usage: bash tools/gpu_models.sh prepare|run" >&2; exit 2; }

machine=$(python3 -c "import torch; print(torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'CPU')")
machine="$machine, $(nproc) cores"
if [ "${DRY:-0}" != 1 ] && [ "${machine#CPU}" != "$machine" ]; then
    echo "no GPU here: DRY=1 runs these steps at tiny sizes; tools/make_default_model.sh is the CPU recipe" >&2
    exit 2
fi
out=${OUT:-gpu_models_out}
work=${WORK:-/tmp/gpu_models}
mkdir -p "$out" "$work"
log="$out/log.txt"
exec > >(tee -a "$log") 2>&1
began=$SECONDS
echo "machine: $machine; torch $(python3 -c 'import torch; print(torch.__version__)')"
deadline=${DEADLINE:-530}
if [ "${DRY:-0}" = 1 ]; then
    deadline=${DEADLINE:-7200}
    cpu=(--cpu); atlas=(--windows 600 --val-windows 200 --test-windows 200 --epochs 1 --batch-size 32)
    atlas_h=(--windows 300 --val-windows 100 --test-windows 100 --epochs 1 --batch-size 16)
    tune=(--epochs 1 --patience 1); smoke_windows=200; seeds=${SEEDS:-0}
else
    cpu=(); atlas=(--windows 160000 --val-windows 8000 --test-windows 10000 --epochs 10 --batch-size 256)
    atlas_h=(--windows 160000 --val-windows 8000 --test-windows 10000 --epochs 4 --batch-size 128)
    tune=(--epochs 12 --patience 4); smoke_windows=2000; seeds=${SEEDS:-0 1 2}
    if [ -d .whl ]; then
        python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
            --target /tmp/site .whl/*.whl || exit 2
        export PYTHONPATH=/tmp/site
    fi
fi
export PYTHONPATH=$here${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
enhscan=(python3 -m enhscan)
genomes=("$data/grch37_chr20.fa.gz" "$data/grch37_chr22.fa.gz" "$data/grch37_chrX_0-70M.fa.gz")
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>/dev/null || true

step() {  # step NAME COMMAND...: run it, log its time and exit status to steps.tsv
    local name=$1 t0=$SECONDS status
    shift
    echo "== $name (at $((t0 - began)) s)"
    "$@" > "$work/$name.log" 2>&1
    status=$?
    printf '%s\t%s\t%s\t%s\t%s\n' "$name" "$status" $((SECONDS - t0)) "$machine" "$*" >> "$out/steps.tsv"
    tail -n 4 "$work/$name.log"
    echo "== $name: exit $status, $((SECONDS - t0)) s"
    return $status
}

# LIMIT (seconds, 0: none) bounds the two commands below.
pretrain() {  # pretrain OUT_DIR ARGS...: multi-task pretraining on the atlas
    local dir=$1
    shift
    timeout "${LIMIT:-0}" "${enhscan[@]}" pretrain "${genomes[@]}" --targets "$data/remo_v1.grch37_chr20_chr22_chrX.bed.gz" \
        --label-column 6 --task-groups "$data/remo_cell_type_tissues.tsv" \
        --val-chroms 22 --test-chroms X --patience 0 --seed 0 --shift-augment 50 \
        --null-windows 0 --out "$dir" --force -q "${cpu[@]}" "$@"
}

source tools/finetune_recipe.sh
finetune() {  # finetune OUT_DIR SEED ARGS...: make_default_model.sh's step 4
    local dir=$1 seed=$2
    shift 2
    OMP_NUM_THREADS=2 timeout "${LIMIT:-0}" "${enhscan[@]}" train --genome "${genomes[0]}" --genome "${genomes[1]}" \
        --genome "${genomes[2]}" --positives "$data/labels/positive.bed" --negatives "$data/labels/negative.bed" \
        "${finetune_recipe[@]}" "${tune[@]}" --seed "$seed" --no-baseline --null-windows 0 \
        --out "$dir" --force -q "${cpu[@]}" "$@"
}

step smoke pretrain "$work/smoke" --arch cnn-deep --windows "$smoke_windows" --val-windows 200 \
    --test-windows 200 --epochs 1 --batch-size 64 || exit 3
LIMIT=$((deadline - 150)) step atlas-cnn pretrain "$work/atlas_cnn" --arch cnn-deep --lr 1e-3 "${atlas[@]}" || exit 4

# Steps 3 and 4 end by the deadline (seconds from the start), so the packing below always runs
# inside the device tool's limit; a step cut short leaves no model folder and is logged 124.
left() { local n=$((deadline - (SECONDS - began))); echo $((n > 1 ? n : 1)); }
pids=()
LIMIT=$(left) step atlas-hybrid pretrain "$work/atlas_hybrid" --arch hybrid-large --front-end "$work/atlas_cnn" \
    --lr 3e-4 "${atlas_h[@]}" & pids+=($!)
for seed in $seeds; do
    LIMIT=$(left) step "small-s$seed" finetune "$work/small_s$seed" $seed --arch hybrid \
        --front-end "$work/atlas_cnn" & pids+=($!)
    LIMIT=$(left) step "large-s$seed" finetune "$work/large_s$seed" $seed --arch hybrid-large \
        --front-end "$work/atlas_cnn" & pids+=($!)
done
wait "${pids[@]}"

if [ -f "$work/atlas_hybrid/pretraining/metrics.json" ] && [ "$(left)" -gt 60 ]; then
    pids=()
    for seed in $seeds; do
        LIMIT=$(left) step "base-s$seed" finetune "$work/base_s$seed" $seed --base "$work/atlas_hybrid" & pids+=($!)
    done
    wait "${pids[@]}"
fi

# Pack: the fine-tuned folders with fp16 weights (the scores move by rounding only), the
# atlas folders' reports, the logs. At most 16 MB a file, 8 files.
python3 - "$work" "$out" <<'PY'
import json, shutil, sys, tarfile
from pathlib import Path

from safetensors.torch import load_file, save_file

work, out = Path(sys.argv[1]), Path(sys.argv[2])
packed = work / "packed"
shutil.rmtree(packed, ignore_errors=True)
for folder in sorted(work.iterdir()):
    if not (folder / "enhscan.json").exists() or folder.name == "smoke":
        continue
    target = packed / folder.name
    shutil.copytree(folder, target, ignore=shutil.ignore_patterns("work", "checkpoint*"))
    if folder.name != "atlas_cnn":  # the CNN is small: kept whole, a front end to reuse
        weights = load_file(target / "model.safetensors")
        half = {k: v.half() if v.is_floating_point() else v for k, v in weights.items()}
        save_file(half, target / "model.safetensors", metadata={"format": "pt"})
groups = {"atlas": ["atlas_cnn", "atlas_hybrid"], "small": ["small_s0", "small_s1", "small_s2"],
          "large_a": ["large_s0", "large_s1"], "large_b": ["large_s2", "base_s0"],
          "base": ["base_s1", "base_s2"]}
for name, members in groups.items():
    present = [m for m in members if (packed / m).exists()]
    if present:
        with tarfile.open(out / f"{name}.tar", "w") as tar:
            for m in present:
                tar.add(packed / m, arcname=m)
with tarfile.open(out / "logs.tar.gz", "w:gz") as tar:
    for path in work.glob("*.log"):
        tar.add(path, arcname=path.name)
for path in sorted(out.iterdir()):
    print(f"{path.name}\t{path.stat().st_size / 1e6:.1f} MB")
print("held-out chrX: atlas 'any' / enhancer test split; PR-AUC, ROC-AUC, best epoch")
for folder in sorted(packed.iterdir()):
    for report in ("pretraining", "training"):
        path = folder / report / "metrics.json"
        if path.exists():
            m = json.loads(path.read_text())["model"]
            test = m["per_task"]["any"] if "per_task" in m else m["test"]
            print(f"{folder.name}\t{test['pr_auc']:.3f}\t{test['roc_auc']:.3f}\t"
                  f"{m.get('best_epoch', json.loads(path.read_text()).get('best_epoch'))}")
PY
echo "done in $((SECONDS - began)) s"
