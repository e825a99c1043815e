"""`--compile`: the model run through torch.compile gives the eager scores, and a machine that
cannot compile gets a one-line error.

Compiling for the CPU needs a C++ compiler; where there is none, the tests that compile are
skipped (the error path is still tested).
"""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError

from .test_genome_cli import scan

RNG = np.random.default_rng(11)
# Lengths that tokenize to different counts: batches with and without padding.
SEQS = ["".join(RNG.choice(list("ACGT"), size=n)) for n in (1000, 1000, 700, 950, 1000, 400)]

needs_compiler = pytest.mark.skipif(
    not any(shutil.which(c) for c in ("g++", "c++", "clang++")),
    reason="torch.compile for the CPU needs a C++ compiler",
)


@needs_compiler
def test_compiled_scores_match_eager_for_any_batch(tiny_classifier) -> None:
    from torch._dynamo.utils import counters

    eager = WindowScorer(tiny_classifier, ComputeOptions(batch_size=64)).score(SEQS)
    compiled = WindowScorer(tiny_classifier, ComputeOptions(batch_size=4, compile=True))
    assert compiled.backend.compile
    graphs = counters["stats"]["unique_graphs"]
    # batches of 4, 2 and 1 windows, padded and not, all through the compiled code...
    np.testing.assert_allclose(compiled.score(SEQS), eager, atol=1e-5)
    np.testing.assert_allclose(compiled.score(SEQS[:1]), eager[:1], atol=1e-5)
    np.testing.assert_allclose(compiled.score(SEQS[2:5]), eager[2:5], atol=1e-5)
    # ...compiled at start-up: none of them compiles anew mid-scan
    assert counters["stats"]["unique_graphs"] == graphs
    assert not WindowScorer(tiny_classifier).backend.compile


@needs_compiler
def test_genome_compile_scans_as_eager(tmp_path, mini_fasta, tiny_model_dir) -> None:
    import pyBigWig

    probability = ("--track", "probability")  # scores compared as they came out
    scan(mini_fasta, tiny_model_dir, tmp_path / "eager", "--device", "cpu", *probability)
    scan(
        mini_fasta,
        tiny_model_dir,
        tmp_path / "compiled",
        "--device",
        "cpu",
        "--compile",
        *probability,
    )
    record = json.loads((tmp_path / "compiled" / "run.json").read_text())
    assert record["parameters"]["compile"] is True
    with (
        pyBigWig.open(str(tmp_path / "eager" / "scores.bw")) as a,
        pyBigWig.open(str(tmp_path / "compiled" / "scores.bw")) as b,
    ):
        for chrom, length in a.chroms().items():
            np.testing.assert_allclose(
                b.values(chrom, 0, length, numpy=True),
                a.values(chrom, 0, length, numpy=True),
                atol=1e-5,
            )


@pytest.mark.parametrize("other", ["--quantize", "--batch-invariant"])
def test_compile_is_refused_with_options_it_cannot_serve(
    tmp_path, mini_fasta, tiny_model_dir, other
) -> None:
    result = scan(mini_fasta, tiny_model_dir, tmp_path / "o", "--compile", other, expect=1)
    assert f"--compile cannot be combined with {other}" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert not (tmp_path / "o").exists()


def test_a_machine_that_cannot_compile_gets_one_line(monkeypatch, tiny_classifier) -> None:
    """No C++ compiler for the CPU: the error names --compile and the way out."""
    import torch._inductor.config as inductor

    torch = pytest.importorskip("torch")
    torch._dynamo.reset()
    monkeypatch.setattr(inductor.cpp, "cxx", ("enhscan-test-no-such-compiler",))
    monkeypatch.setattr(inductor, "fx_graph_cache", False)
    one_line = r"^--compile failed on this machine \(.*\); drop --compile$"
    with pytest.raises(EnhscanError, match=one_line):
        WindowScorer(tiny_classifier, ComputeOptions(compile=True))
    torch._dynamo.reset()
