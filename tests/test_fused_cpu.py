"""Fused CPU kernels: oneDNN matmuls with the gated GELU and residual adds folded in, the
scorer's choice of them, and how scans, the run record and resuming treat the choice."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from enhscan.backend import ComputeOptions
from enhscan.cli import cli
from enhscan.engine import FUSED_TOLERANCE, WindowScorer
from enhscan.errors import EnhscanError
from enhscan.model.fused_cpu import fused_cpu_kernels, fused_kernels_apply
from enhscan.scan import scan_genome
from enhscan.scan.shards import ShardStore
from tests.conftest import quick_settings, tiny_dnabert2

pytestmark = pytest.mark.skipif(
    not torch.backends.mkldnn.is_available(), reason="this PyTorch has no oneDNN"
)

RNG = np.random.default_rng(11)
SEQS = ["".join(RNG.choice(list("ACGT"), size=n)) for n in (1000, 640, 1000, 310, 990, 1000)]


@pytest.fixture(scope="module")
def two_layer_classifier():
    """Two layers, so the fused kernels run in a full layer and in a [CLS]-only last one."""
    return tiny_dnabert2(
        seed=5, initializer_range=0.3, num_hidden_layers=2, hidden_size=48, intermediate_size=96
    )


def forward(network, ids, mask, first_only):
    with torch.inference_mode():
        return network(input_ids=ids, attention_mask=mask, first_only=first_only).logits


@pytest.mark.parametrize("first_only", [False, True])
def test_fused_kernels_give_the_plain_logits(two_layer_classifier, first_only) -> None:
    network = two_layer_classifier.network.eval()
    torch.manual_seed(0)
    ids = torch.randint(5, 4096, (5, 37))
    mask = torch.ones(5, 37, dtype=torch.bool)
    mask[1, 30:] = False  # a padded batch ...
    mask[3, 12:] = False
    for m in (mask, None):  # ... and an unpadded one
        plain = forward(network, ids, m, first_only)
        with fused_cpu_kernels(network):
            fused = forward(network, ids, m, first_only)
        torch.testing.assert_close(fused, plain, rtol=1e-5, atol=1e-5)


def test_fused_kernels_replace_the_forwards_only_within_the_block(two_layer_classifier) -> None:
    from enhscan.model.dnabert2 import DNABert2MLP, DNABert2SelfOutput

    network = two_layer_classifier.network
    kinds = (torch.nn.Linear, DNABert2MLP, DNABert2SelfOutput)
    modules = [m for m in network.modules() if type(m) in kinds]
    assert len(modules) == 2 * (4 + 2) + 2  # per layer 4 Linears, MLP, output; pooler, head
    with fused_cpu_kernels(network):
        assert all("forward" in m.__dict__ for m in modules)
    assert not any("forward" in m.__dict__ for m in modules)
    with pytest.raises(RuntimeError), fused_cpu_kernels(network):
        raise RuntimeError("a failed batch")
    assert not any("forward" in m.__dict__ for m in modules)


def test_fused_kernels_bound_onednn_kernel_caches(two_layer_classifier, monkeypatch) -> None:
    """oneDNN keeps a compiled kernel per matrix shape, 1,024 by default, which grew a
    scan's memory with its length; enhscan keeps a few, unless the user says otherwise."""
    import os

    from enhscan.model.fused_cpu import CACHE_VARIABLES, PRIMITIVE_CACHE

    monkeypatch.delenv("ONEDNN_PRIMITIVE_CACHE_CAPACITY", raising=False)
    monkeypatch.setenv("LRU_CACHE_CAPACITY", "100")
    with fused_cpu_kernels(two_layer_classifier.network):
        pass
    assert CACHE_VARIABLES == ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")
    assert os.environ["ONEDNN_PRIMITIVE_CACHE_CAPACITY"] == str(PRIMITIVE_CACHE) == "16"
    assert os.environ["LRU_CACHE_CAPACITY"] == "100"


def test_where_fused_kernels_apply(tiny_classifier) -> None:
    cpu = torch.device("cpu")
    network = tiny_classifier.network
    assert fused_kernels_apply(network, cpu, torch.float32) is None
    assert "fp32" in fused_kernels_apply(network, cpu, torch.bfloat16)
    assert "CPU" in fused_kernels_apply(network, torch.device("cuda"), torch.float32)
    assert "Linear" in fused_kernels_apply(torch.nn.Conv1d(4, 4, 3), cpu, torch.float32)
    half = torch.nn.Sequential(torch.nn.Linear(4, 4)).to(torch.bfloat16)
    assert "not fp32" in fused_kernels_apply(half, cpu, torch.float32)


def test_the_scorer_uses_fused_kernels_on_the_cpu_in_fp32(tiny_classifier) -> None:
    fused = WindowScorer(tiny_classifier, ComputeOptions(batch_size=4))
    plain = WindowScorer(tiny_classifier, ComputeOptions(batch_size=4, kernels="plain"))
    assert (fused.kernels, plain.kernels) == ("fused", "plain")
    np.testing.assert_allclose(fused.score(SEQS), plain.score(SEQS), atol=1e-6)
    # Batch size 1 against 64, with the fused kernels too.
    alone = np.array(
        [WindowScorer(tiny_classifier, ComputeOptions(batch_size=1)).score([s])[0] for s in SEQS]
    )
    together = WindowScorer(tiny_classifier, ComputeOptions(batch_size=64)).score(SEQS)
    np.testing.assert_allclose(together, alone, atol=1e-6)


@pytest.mark.parametrize(
    "options, why",
    [
        ({"quantize": True}, "not with --quantize"),
        ({"batch_invariant": True}, "not with --batch-invariant"),
        ({"dtype": "bf16"}, "they compute in fp32"),
    ],
)
def test_other_modes_use_plain_kernels_and_refuse_fused_ones(tiny_classifier, options, why):
    assert WindowScorer(tiny_classifier, ComputeOptions(**options)).kernels == "plain"
    with pytest.raises(EnhscanError, match=f"--kernels fused: {why}; use --kernels auto or plain"):
        WindowScorer(tiny_classifier, ComputeOptions(kernels="fused", **options))
    with pytest.raises(EnhscanError, match="--kernels takes auto, fused, plain, not 'fast'"):
        WindowScorer(tiny_classifier, ComputeOptions(kernels="fast"))


def test_a_dnabert_kmer_model_runs_its_linears_fused() -> None:
    """A transformers BERT (DNABERT k-mer): every nn.Linear goes through oneDNN."""
    from enhscan.model import new_classifier

    classifier = new_classifier("dnabert-kmer", window=200, k=3, size="tiny", seed=4)
    seqs = [s[:200] for s in SEQS]
    fused = WindowScorer(classifier)
    assert fused.kernels == "fused"
    plain = WindowScorer(classifier, ComputeOptions(kernels="plain")).score(seqs)
    np.testing.assert_allclose(fused.score(seqs), plain, atol=1e-6)


def test_kernels_that_disagree_at_start_up_are_not_used(
    tiny_classifier, monkeypatch, caplog
) -> None:
    """Fault injection: a oneDNN linear that gets its weights wrong. ``auto`` warns and
    falls back to plain kernels; ``fused`` refuses to start."""
    import enhscan.model.fused_cpu as fused_cpu

    real = fused_cpu._ops()

    class WrongWeights:
        binary = real.binary

        def __call__(self, x, weight, *args):
            return real(x, 1.5 * weight, *args)

    monkeypatch.setattr(fused_cpu, "_ops", WrongWeights)
    with caplog.at_level(logging.WARNING, logger="enhscan.engine"):
        assert WindowScorer(tiny_classifier).kernels == "plain"
    assert "fused CPU kernels not used: their probe scores differ from plain ones" in caplog.text
    with pytest.raises(EnhscanError, match="--kernels fused: their probe scores differ"):
        WindowScorer(tiny_classifier, ComputeOptions(kernels="fused"))

    def failing():
        def op(*args):
            raise RuntimeError("unsupported post-op")

        return op

    monkeypatch.setattr(fused_cpu, "_ops", failing)
    assert WindowScorer(tiny_classifier).kernels == "plain"
    with pytest.raises(EnhscanError, match=r"they failed on this machine \(RuntimeError: unsup"):
        WindowScorer(tiny_classifier, ComputeOptions(kernels="fused"))
    assert FUSED_TOLERANCE == 1e-4


def test_scans_record_their_kernels_and_resume_with_them(
    tmp_path, monkeypatch, mini_fasta, tiny_classifier
) -> None:
    from tests.test_sharded_scan import interrupted_scan, same_files

    fused = scan_genome(mini_fasta, tmp_path / "fused", tiny_classifier, quick_settings())
    assert fused["parameters"]["kernels"] == "fused"
    clean = tmp_path / "plain"
    plain = scan_genome(mini_fasta, clean, tiny_classifier, quick_settings(kernels="plain"))
    assert plain["parameters"]["kernels"] == "plain"

    # Interrupted with plain kernels, resumed with the default: the resume keeps plain ones,
    # so the files are those of an uninterrupted plain scan.
    out = tmp_path / "resumed"
    interrupted_scan(monkeypatch, mini_fasta, tiny_classifier, out, after=3, kernels="plain")
    record = scan_genome(mini_fasta, out, tiny_classifier, quick_settings(resume=True))
    assert record["parameters"]["kernels"] == "plain" and record["shards"]["resumed"] == 3
    same_files(clean, out)

    # Interrupted with fused kernels, a resume asking for plain ones is refused.
    out = tmp_path / "refused"
    interrupted_scan(monkeypatch, mini_fasta, tiny_classifier, out, after=2)
    with pytest.raises(EnhscanError, match=r'--kernels \("fused" then, "plain" now\)'):
        scan_genome(mini_fasta, out, tiny_classifier, quick_settings(resume=True, kernels="plain"))

    # A scan interrupted by an enhscan from before --kernels (no such manifest key) ran
    # plain kernels, and resumes with them.
    store = ShardStore(out)
    manifest = json.loads(store.manifest_path.read_text())
    del manifest["kernels"]
    store.manifest_path.write_text(json.dumps(manifest))
    record = scan_genome(mini_fasta, out, tiny_classifier, quick_settings(resume=True))
    assert record["parameters"]["kernels"] == "plain"


def test_cli_kernels_option(tmp_path, mini_fasta, tiny_model_dir) -> None:
    def scan(out, *options):
        args = ["-q", "genome", str(mini_fasta), "--out", str(tmp_path / out), "--track"]
        args += ["probability", "--model", str(tiny_model_dir)]  # scores as they came out
        return CliRunner().invoke(cli, [*args, *options])

    for out, options in (("a", ()), ("b", ("--kernels", "plain"))):
        result = scan(out, *options)
        assert result.exit_code == 0, result.output
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["parameters"]["kernels"] == "fused"
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["parameters"]["kernels"] == "plain"

    import pyBigWig

    with pyBigWig.open(str(tmp_path / "a" / "scores.bw")) as a:
        with pyBigWig.open(str(tmp_path / "b" / "scores.bw")) as b:
            for chrom, length in a.chroms().items():
                np.testing.assert_allclose(
                    np.nan_to_num(a.values(chrom, 0, length, numpy=True), nan=-1),
                    np.nan_to_num(b.values(chrom, 0, length, numpy=True), nan=-1),
                    atol=1e-6,
                )

    result = scan("c", "--kernels", "fused", "--quantize")
    assert result.exit_code != 0
    assert result.output.strip().splitlines()[-1] == (
        "Error: --kernels fused: not with --quantize; use --kernels auto or plain"
    )
    assert not (tmp_path / "c").exists()

    dry = CliRunner().invoke(
        cli, ["-q", "genome", str(mini_fasta), "--dry-run", "--model", str(tiny_model_dir)]
    )
    assert dry.exit_code == 0, dry.output
    assert ", fused kernels (" in dry.output
