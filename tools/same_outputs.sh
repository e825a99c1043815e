#!/usr/bin/env bash
# Do two source trees of enhscan write the same files? For a change that must not change
# results (a refactor). Four scans of the example genome with each tree (a plain one, two
# processes, batch-invariant at batch size 7, and one interrupted and resumed: half its shards
# deleted, then --resume), then every output file but run.json compared byte for byte.
#
#   git worktree add /tmp/old <commit>      # the tree before the change
#   bash tools/same_outputs.sh /tmp/old . [WORK_DIR]
#
# About 2 minutes per tree on 2 CPU cores. Exits 1 if any file differs.
set -euo pipefail
old=$(cd "$1" && pwd); new=$(cd "$2" && pwd)
work=${3:-$(mktemp -d)}
fasta=$new/examples/hg38_chr2_0-600k.fa.gz

scans() {  # tree out
  local tree=$1 out=$2
  rm -rf "$out"; mkdir -p "$out"
  run() { PYTHONPATH=$tree python -m enhscan -q genome "$fasta" "$@"; }
  run --out "$out/plain"
  run --out "$out/two" --processes 2 --device cpu --shard-windows 500
  run --out "$out/invariant" --batch-invariant --batch-size 7
  run --out "$out/resumed" --shard-windows 500 --keep-shards
  find "$out/resumed/.enhscan-shards" -name 'shard-*.npy' | sort | awk 'NR % 2 == 0' | xargs rm
  find "$out/resumed" -maxdepth 1 -type f -delete
  run --out "$out/resumed" --shard-windows 500 --resume
}

scans "$old" "$work/old"
scans "$new" "$work/new"
status=0
for scan in plain two invariant resumed; do
  for file in "$work/new/$scan"/*; do
    name=$(basename "$file")
    [ "$name" = run.json ] && continue
    if cmp -s "$file" "$work/old/$scan/$name"; then
      echo "same     $scan/$name"
    else
      echo "DIFFERS  $scan/$name"; status=1
    fi
  done
done
exit $status
