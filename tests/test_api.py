"""The Python API, and the example in examples/ that uses it."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np

import enhscan
from enhscan.engine import WindowScorer

EXAMPLES = Path(__file__).parents[1] / "examples"


def test_api_functions_match_the_engine(tmp_path, tiny_classifier, tiny_model_dir, mini_fasta):
    seqs = ["ACGT" * 250, "GATTACA" * 140]
    np.testing.assert_allclose(
        enhscan.score_sequences(seqs, tiny_classifier),
        WindowScorer(tiny_classifier).score(seqs),
        atol=1e-6,
    )
    assert enhscan.load_model(tiny_model_dir).identity.startswith("sha256:")
    record = enhscan.scan_genome(mini_fasta, tmp_path / "t", tiny_model_dir, chroms=["chr22*"])
    assert record["windows"]["scored"] > 0 and (tmp_path / "t" / "scores.bw").exists()
    again = enhscan.scan_genome(mini_fasta, tmp_path / "u", tiny_model_dir, chroms="chr22*")
    assert again["windows"] == record["windows"]  # one string, as on the command line


def test_api_refuses_what_it_cannot_score(tiny_classifier, tmp_path) -> None:
    import pytest

    from enhscan.errors import EnhscanError

    with pytest.raises(TypeError, match="give a list of sequences"):
        enhscan.score_sequences("ACGT" * 250, tiny_classifier)
    with pytest.raises(EnhscanError, match="sequence 1 of seqs is empty"):
        enhscan.score_sequences(["ACGT" * 250, ""], tiny_classifier)
    with pytest.raises(EnhscanError, match="--top must be at least 1"):
        enhscan.explain(tmp_path, "genome.fa", tmp_path / "x", tiny_classifier, top=0)


def test_import_enhscan_stays_light() -> None:
    code = "import sys, enhscan; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_the_api_example_runs(tmp_path) -> None:
    out = subprocess.run(
        [sys.executable, str(EXAMPLES / "api_score_and_scan.py"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    lines = out.stdout.splitlines()
    assert lines[0].startswith("model: hybrid, window 1000 bp")
    assert len(lines[1].split(":")[-1].split()) == 5
    assert "calls, files: calls.narrowPeak, scores.bw" in lines[2]
    assert lines[3].startswith("known enhancers: ") and " of 6 at or above" in lines[3]


def test_both_strands_of_a_palindrome_score_as_one(tiny_classifier) -> None:
    """A window that is its own reverse complement scores the same with --rc, any model."""
    from enhscan.sequence import reverse_complement

    palindrome = "ACGT" * 250
    assert reverse_complement(palindrome) == palindrome
    seqs = [palindrome, "GATTACA" * 140]
    forward = enhscan.score_sequences(seqs, tiny_classifier)
    both = enhscan.score_sequences(seqs, tiny_classifier, rc="mean")
    assert abs(both[0] - forward[0]) < 1e-6 and abs(both[1] - forward[1]) > 1e-4


def test_variants_and_explain_through_the_api(tmp_path, tiny_model_dir, mini_fasta) -> None:
    table = tmp_path / "in.tsv"
    table.write_text("chr22_32000000\t15001\tA\tG\nchr22_32000000\t15101\tC\tT\n")
    record = enhscan.score_variants(
        table, mini_fasta, tmp_path / "v.vcf.gz", tiny_model_dir, on_mismatch="skip",
        tsv=True, batch_size=4, device="cpu",
    )  # fmt: skip
    assert record["records"] == 2 and (tmp_path / "v.tsv").exists()
    bed = tmp_path / "r.bed"
    bed.write_text("chr22_32000000\t15000\t15100\tsite\n")
    record = enhscan.explain(bed, mini_fasta, tmp_path / "x", tiny_model_dir, method="gradient",
                             motifs=None, batch_size=4)  # fmt: skip
    assert record["regions"] == 1 and record["method"] == "gradient"


def test_api_names_survive_their_modules_being_imported() -> None:
    # A submodule of the same name as an API function would replace it on the package.
    import enhscan.calibration  # noqa: F401
    import enhscan.explanation  # noqa: F401
    import enhscan.variants  # noqa: F401

    for name in enhscan.__all__[1:]:
        assert callable(getattr(enhscan, name)), name
