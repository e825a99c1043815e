#!/usr/bin/env bash
# Run here, once, before a session with a lent GPU: gathers what benchmarks/gpu_check.sh needs
# on the bare GPU machine, in two folders git ignores and the device tool carries:
#   .whl/  wheels (CPython 3.12, manylinux x86-64) of enhscan's requirements that the GPU
#          image lacks (its torch, transformers, accelerate, numpy ... are used as they are);
#   .gpu/  GRCh37 chr20:40,000,000-45,000,000 from ../shared/data, as sequence "20".
# Then, with the device tool: run(command="bash benchmarks/gpu_check.sh", carry=[".whl", ".gpu"],
# timeout_s=590).
set -euo pipefail
cd "$(dirname "$0")/.."
for folder in /.whl/ /.gpu/; do
    grep -qxF "$folder" .git/info/exclude 2>/dev/null || echo "$folder" >> .git/info/exclude
done
rm -rf .whl && mkdir -p .whl .gpu
platforms=()
for tag in manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 \
           manylinux2014_x86_64 manylinux1_x86_64; do
    platforms+=(--platform "$tag")
done
# Versions as installed here, so the GPU runs what the tests here ran.
for package in pyfaidx pyBigWig pybigtools biopython pysam; do
    version=$(python3 -c "from importlib.metadata import version; print(version('$package'))")
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
        --implementation cp "${platforms[@]}" -d .whl "$package==$version"
done
python3 - <<'PY'
from pathlib import Path

from enhscan.io.fasta import open_genome

source = Path("../shared/data/genomes/grch37_chr20.fa.gz")
with open_genome(source) as genome:
    seq = genome.fetch("20", 40_000_000, 45_000_000)
lines = "\n".join(seq[i : i + 60] for i in range(0, len(seq), 60))
Path(".gpu/chr20_40M.fa").write_text(f">20\n{lines}\n")
PY
du -sh .whl .gpu
