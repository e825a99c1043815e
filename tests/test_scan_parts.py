"""The parts of a scan at their own level, without a model: the plan, the shard store and its
identity, and the outputs assembled from shards of known scores."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from enhscan.backend import Backend
from enhscan.calling import CallRule
from enhscan.errors import EnhscanError
from enhscan.io.bed import read_bed, read_calls
from enhscan.io.fasta import open_genome
from enhscan.scan.outputs import decide_calling, write_outputs
from enhscan.scan.plan import plan_scan, plan_with_shards
from enhscan.scan.resume import open_store, scan_identity
from enhscan.scan.settings import RunOptions, ScanSpec
from enhscan.scan.shards import Piece, ShardStore

# c1: 9 windows of 200 at stride 100 (starts 0..800); c2: too short for one window.
SCORES = np.array([0.1, 0.2, 0.9, 0.95, 0.3, np.nan, 0.8, 0.1, 0.1], dtype=np.float32)


@pytest.fixture
def genome(tmp_path: Path):
    fasta = tmp_path / "g.fa"
    fasta.write_text(">c1\n" + "ACGT" * 250 + "\n>c2\n" + "ACGT" * 25 + "\n")
    with open_genome(fasta) as opened:
        yield opened


def test_the_plan_leaves_out_short_sequences_and_cuts_out_excluded_ones(genome, tmp_path):
    plan = plan_scan(genome, 200, 100)
    assert plan.stretches == {"c1": [(0, 1000)]} and plan.too_short == ["c2"]
    assert plan.n_windows == 9
    bed = tmp_path / "x.bed"
    bed.write_text("c1\t400\t500\n")
    cut = plan_scan(genome, 200, 100, exclude=read_bed(str(bed), genome.lengths, clip=True))
    assert cut.stretches == {"c1": [(0, 400), (500, 1000)]}
    spec = ScanSpec(stride=100, regions=str(bed))
    plan, shards, regions, exclude = plan_with_shards(genome, 200, spec, shard_windows=4)
    assert plan.stretches == {"c1": [(350, 550)]}  # widened to one window
    assert [s.pieces for s in shards] == [(Piece("c1", 0, 1),)]
    assert regions.count == 1 and exclude is None


def test_outputs_from_shards_of_known_scores(genome, tmp_path):
    plan, shards, _, _ = plan_with_shards(genome, 200, ScanSpec(stride=100), shard_windows=4)
    assert [s.count for s in shards] == [1, 1, 2, 4, 1]  # the first shards smaller
    store = ShardStore(tmp_path / "out")
    store.create({"format": 1})
    for shard in shards:
        (piece,) = shard.pieces
        store.save(shard, SCORES[piece.first : piece.first + piece.count])
    calling = decide_calling(shards, store, CallRule("threshold", 0.7), None, "probability")
    assert calling.windows_called == 3  # NaN (skipped for N) is never called
    results, scored = write_outputs(
        genome, plan, shards, store, tmp_path / "out", calling, ("bigwig", "bedgraph")
    )
    assert scored == {0: 1, 1: 1, 2: 2, 3: 3, 4: 1} and results["c1"].skipped_n == 1
    # Each window owns the bases nearest its centre: window 2 (centre 300) owns [250, 350).
    calls = [(c.chrom, c.start, c.end) for c in read_calls(tmp_path / "out" / "calls.narrowPeak")]
    assert calls == [("c1", 250, 450), ("c1", 650, 750)]
    lines = (tmp_path / "out" / "scores.bedGraph").read_text().splitlines()
    assert lines[0] == "c1\t0\t150\t0.1" and lines[2] == "c1\t250\t350\t0.9"
    assert len(lines) == 8 and "c1\t550\t650" not in "\n".join(lines)  # the skipped window


def test_the_store_starts_resumes_and_refuses_another_scan(genome, tmp_path):
    plan = plan_scan(genome, 200, 100)
    backend = Backend(torch.device("cpu"), torch.float32, 32)
    spec = ScanSpec(window=200, stride=100)
    store = ShardStore(tmp_path)

    def identity(**changes):
        return scan_identity(genome, _Model(), plan, ScanSpec(**{**vars(spec), **changes}),
                             backend, RunOptions())  # fmt: skip

    assert open_store(store, identity(), RunOptions()) == []
    assert identity()["batch_size"] == 32 and identity()["stride"] == 100
    with pytest.raises(EnhscanError, match="holds an unfinished scan .* --resume"):
        open_store(store, identity(), RunOptions())
    with pytest.raises(EnhscanError, match=r"--max-n \(0 then, 3 now\)"):
        open_store(store, identity(max_n=3), RunOptions(resume=True))
    assert open_store(store, identity(), RunOptions(resume=True)) == []
    assert open_store(store, identity(max_n=3), RunOptions(force=True)) == []


class _Model:
    """What the identity reads of a model."""

    identity = "sha256:test"
