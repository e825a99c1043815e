"""The Python API on the example FASTA: score windows, scan a region, score the known enhancers.

    python examples/api_score_and_scan.py [OUT_DIR]

Runs in under a minute on a 2-core CPU with the shipped default model; the tests run it.
"""

from __future__ import annotations

import sys
from pathlib import Path

import enhscan
from enhscan.io.fasta import open_genome

HERE = Path(__file__).parent
FASTA = HERE / "hg38_chr2_0-600k.fa.gz"
KNOWN = HERE / "hg38_chr2_0-600k.known_enhancers.bed"


def main(out: Path) -> None:
    model = enhscan.load_model()  # the default model shipped in the package
    print(
        f"model: {model.metadata.family}, window {model.metadata.window} bp, "
        f"threshold {model.metadata.threshold:.3f}"
    )

    # 1. Score a few 1 kb windows directly, both strands averaged.
    with open_genome(FASTA, index_dir=out) as genome:
        windows = [genome.fetch("chr2", s, s + 1000) for s in range(300_000, 305_000, 1000)]
    probs = enhscan.score_sequences(windows, model, rc="mean")
    print("windows at chr2:300,000-305,000:", " ".join(f"{p:.3f}" for p in probs))

    # 2. Scan 50 kb of the region into a track, calls and browser files.
    region = out / "region.bed"
    region.write_text("chr2\t380000\t430000\n")
    record = enhscan.scan_genome(
        FASTA, out / "tracks", model, regions=str(region), stride=200, force=True
    )
    print(
        f"scanned {record['windows']['scored']} windows, {record['calls']} calls, "
        f"files: {', '.join(sorted(record['outputs'].values()))}"
    )

    # 3. Score the six known FANTOM5 enhancers of the region (1 kb around each centre).
    summary = enhscan.predict_file(KNOWN, out / "known.tsv", model, genome_path=FASTA, force=True)
    print(
        f"known enhancers: {summary['at_or_above_threshold']} of {summary['inputs']} at or "
        "above the model's threshold"
    )


if __name__ == "__main__":
    target = Path(sys.argv[1] if len(sys.argv) > 1 else "api_example_out")
    target.mkdir(parents=True, exist_ok=True)
    main(target)
