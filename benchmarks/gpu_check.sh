#!/usr/bin/env bash
# On a lent GPU machine, from the repository root (after benchmarks/gpu_prepare.sh here):
#   bash benchmarks/gpu_check.sh [gpu_check.py options]
# Installs the carried wheels, points the benchmarks at the carried chr20 piece and runs
# benchmarks/gpu_check.py; its summary.md, results.json and logs.tar.gz land in $OUT (the
# device tool's output folder), or in gpu_check_out/ elsewhere.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu_check_out}
mkdir -p "$out"
if [ ! -d .whl ] || [ ! -f .gpu/chr20_40M.fa ]; then
    echo "missing .whl/ or .gpu/: run benchmarks/gpu_prepare.sh here first and carry both" >&2
    exit 2
fi
python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade \
    --target /tmp/site .whl/*.whl || exit 2
export PYTHONPATH=/tmp/site:$PWD${PYTHONPATH:+:$PYTHONPATH}
export ENHSCAN_CHR20=$PWD/.gpu/chr20_40M.fa ENHSCAN_CHR20_START=0
nvidia-smi > "$out/nvidia-smi.txt" 2>&1
python3 benchmarks/gpu_check.py --out "$out" "$@"
