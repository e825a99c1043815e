"""The hybrid family (enhscan.model.hybrid): convolutions on one-hot bases feeding the
DNABERT-2 encoder, CPU only, small models."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from enhscan.backend import ComputeOptions
from enhscan.cli import cli
from enhscan.engine import WindowScorer
from enhscan.model import load_classifier, new_classifier, save_classifier
from enhscan.model.cnn import PAD_CODE, NucleotideEncoder, one_hot
from enhscan.model.dnabert2 import DNABert2Encoder
from enhscan.model.encoding import pad_batch
from enhscan.model.families import FAMILIES
from enhscan.model.hybrid import (
    MODEL_SIZES,
    HybridClassifier,
    HybridConfig,
    copy_front_end,
    pool,
    set_pooling,
)
from tests.conftest import atlas_genome, busy, remo_like

DATA = Path(__file__).parent / "data"
TINY = MODEL_SIZES["tiny"]
LENGTHS = [1, 37, 250, 999, 1000, 1003]


def random_dna(n: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


def batch(seqs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Encoded and right-padded as the scanning engine does: ids int64 [B, L], mask [B, L]."""
    ids, mask = pad_batch(NucleotideEncoder().encode(seqs), PAD_CODE)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def busy_model(seed: int = 0, **overrides) -> HybridClassifier:
    """A tiny model in eval mode whose padding leaks would show (:func:`tests.conftest.busy`)."""
    torch.manual_seed(seed)
    config = HybridConfig.from_size("tiny", initializer_range=0.3, **overrides)
    return busy(HybridClassifier(config))


def test_config_sizes_and_validation() -> None:
    small = HybridConfig()
    assert small.channels == [128, 128, 128] and small.hidden_size == 192
    assert HybridConfig.from_size("tiny", num_labels=3).num_labels == 3
    encoder = small.encoder_config()
    assert (encoder.hidden_size, encoder.num_hidden_layers, encoder.pooling) == (192, 2, "mean")
    with pytest.raises(ValueError, match="same length"):
        HybridConfig(channels=(8, 8), kernel_sizes=(3,))
    with pytest.raises(ValueError, match="multiple of"):
        HybridConfig(hidden_size=30, num_attention_heads=4)
    with pytest.raises(ValueError, match="unknown hybrid size"):
        HybridConfig.from_size("huge")


def test_the_encoder_is_dnabert2s_own() -> None:
    model = busy_model()
    assert type(model.encoder) is DNABert2Encoder
    ids, mask = batch(["ACGT" * 50])
    assert model.embed(ids, mask).shape == (1, 200 // 4 // 4 + 1, TINY["hidden_size"])


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(
    "overrides", [{}, {"pool_size": 3, "kernel_sizes": (8, 4)}, {"pooling": "mean+max"}]
)
def test_logits_invariant_to_batching_and_padding(overrides: dict) -> None:
    model = busy_model(**overrides)
    rng = np.random.default_rng(1)
    seqs = [random_dna(n, rng) for n in LENGTHS] + ["NN" + random_dna(40, rng) + "NNN"]
    with torch.no_grad():
        alone = torch.cat([model(*batch([s])).logits for s in seqs])
        unmasked = torch.cat([model(batch([s])[0]).logits for s in seqs])
        assert alone.std(0).min() > 1e-3  # the check below has something to compare
        torch.testing.assert_close(unmasked, alone, atol=1e-5, rtol=1e-5)
        for order in ([0, 1, 2, 3, 4, 5, 6], [6, 5, 4, 3, 2, 1, 0], [0, 4], [2, 6, 3], [1, 5]):
            together = model(*batch([seqs[i] for i in order])).logits
            torch.testing.assert_close(together, alone[order], atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pooling", ["mean", "mean+max"])
def test_fully_padded_row_gives_finite_logits(pooling: str) -> None:
    ids, mask = batch(["ACGT" * 10, ""])
    with torch.no_grad():
        model = busy_model(pooling=pooling)
        assert torch.isfinite(model(input_ids=ids, attention_mask=mask).logits).all()
    real = torch.tensor([[True, False], [False, False]])
    assert pool(torch.full((2, 2, 3), -7.0), real, "mean+max")[1].abs().max() == 0


def test_folder_roundtrip_and_engine_batch_invariance(tmp_path: Path) -> None:
    classifier = new_classifier("hybrid", seed=2, window=300, initializer_range=0.3, **TINY)
    save_classifier(classifier, tmp_path / "m")
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["model_type"] == "enhscan-hybrid" and saved["channels"] == [16, 16]
    loaded = load_classifier(tmp_path / "m")
    assert loaded.metadata.family == "hybrid" and isinstance(loaded.network, HybridClassifier)
    rng = np.random.default_rng(3)
    seqs = [random_dna(300, rng) for _ in range(9)] + [random_dna(120, rng)]
    one = WindowScorer(loaded, ComputeOptions(device="cpu", batch_size=1)).score(seqs)
    many = WindowScorer(classifier, ComputeOptions(device="cpu", batch_size=64)).score(seqs)
    assert one.std() > 1e-4
    np.testing.assert_allclose(one, many, atol=1e-5)


def test_mean_max_pooling_round_trips_and_old_folders_pool_the_mean(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="pooling must be one of"):
        HybridConfig(pooling="max")
    classifier = new_classifier("hybrid", seed=2, pooling="mean+max", **TINY)
    assert classifier.network.pooler.in_features == 2 * TINY["hidden_size"]
    save_classifier(classifier, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config["pooling"] == "mean+max"
    ids, mask = batch(["ACGTTGCA" * 30, "GATTACA" * 11])
    loaded = load_classifier(tmp_path / "m").network
    with torch.no_grad():
        torch.testing.assert_close(loaded(ids, mask).logits, classifier.network(ids, mask).logits)
    # A folder written before the field existed reads as mean pooling, its pooler as saved.
    old = new_classifier("hybrid", seed=3, **TINY)
    save_classifier(old, tmp_path / "old")
    config = json.loads((tmp_path / "old" / "config.json").read_text())
    del config["pooling"]
    (tmp_path / "old" / "config.json").write_text(json.dumps(config))
    reread = load_classifier(tmp_path / "old").network
    assert reread.config.pooling == "mean"
    with torch.no_grad():
        torch.testing.assert_close(reread(ids, mask).logits, old.network(ids, mask).logits)


def test_the_max_half_of_the_pooling_reads_real_positions_only() -> None:
    h = torch.tensor([[[1.0, -5.0], [3.0, -4.0], [9.0, 9.0]]])  # [1, 3, 2]; position 3 padded
    real = torch.tensor([[True, True, False]])
    torch.testing.assert_close(pool(h, real, "mean"), torch.tensor([[2.0, -4.5]]))
    torch.testing.assert_close(pool(h, real, "mean+max"), torch.tensor([[2.0, -4.5, 3.0, -4.0]]))


def test_set_pooling_gives_a_wider_pooler_only_when_the_width_changes() -> None:
    network = new_classifier("hybrid", seed=0, **TINY).network
    before = network.pooler
    set_pooling(network, "mean")
    assert network.pooler is before
    set_pooling(network, "mean+max")
    assert network.config.pooling == "mean+max"
    assert network.pooler.in_features == 2 * TINY["hidden_size"]
    with pytest.raises(ValueError, match="the hybrid pools mean or mean\\+max, not 'cls'"):
        set_pooling(network, "cls")


def test_gradient_times_input_matches_a_finite_difference() -> None:
    model = busy_model(hidden_dropout_prob=0.0).double()
    encoder = NucleotideEncoder()
    seq = random_dna(120, np.random.default_rng(5))
    ids = torch.from_numpy(encoder.encode([seq])[0])[None]

    def score(logits: torch.Tensor) -> torch.Tensor:
        return logits[0, 1] - logits[0, 0]

    attribution = FAMILIES["hybrid"].input_gradients(model, encoder, seq, score)
    assert attribution.shape == (120,) and np.abs(attribution).max() > 0

    def scaled(position: int, eps: float) -> float:
        """The score with base ``position``'s one-hot scaled by 1 + eps: d/d eps at 0 is that
        base's gradient x input."""

        def scale(module, args):
            x = args[0].clone()
            x[:, :, position] *= 1 + eps
            return (x, *args[1:])

        handle = model.cnn.blocks[0].register_forward_pre_hook(scale)
        try:
            with torch.no_grad():
                return float(score(model(ids).logits))
        finally:
            handle.remove()

    for position in (0, 37, 119):
        numeric = (scaled(position, 1e-5) - scaled(position, -1e-5)) / 2e-5
        assert numeric == pytest.approx(attribution[position], rel=1e-4, abs=1e-8)


def test_training_on_planted_motif_learns_it() -> None:
    torch.manual_seed(0)
    model = HybridClassifier(HybridConfig.from_size("tiny", classifier_dropout=0.0)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=5e-3)
    rng = np.random.default_rng(3)

    def toy(n: int) -> tuple[list[str], torch.Tensor]:
        seqs = [random_dna(200, rng) for _ in range(n)]
        for i in range(1, n, 2):
            at = int(rng.integers(0, 190))
            seqs[i] = seqs[i][:at] + "GATAAGATAA" + seqs[i][at + 10 :]
        return seqs, torch.tensor([i % 2 for i in range(n)])

    losses = []
    for _ in range(60):
        seqs, labels = toy(32)
        out = model(*batch(seqs), labels=labels)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
    model.eval()
    seqs, labels = toy(200)
    with torch.no_grad():
        predicted = model(*batch(seqs)).logits.argmax(-1)
    assert (predicted == labels).float().mean() > 0.85


def run(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, ["-q", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def test_train_and_predict_through_the_cli(tmp_path: Path) -> None:
    out = tmp_path / "model"
    run("train", "--sequences", str(DATA / "cohn_sample.csv"), "--out", str(out),
        "--arch", "hybrid", "--epochs", "1", "--batch-size", "32", "--window", "200",
        "--no-baseline")  # fmt: skip
    assert json.loads((out / "enhscan.json").read_text())["family"] == "hybrid"
    assert load_classifier(out).network.config.hidden_size == 192
    fasta = tmp_path / "q.fa"
    fasta.write_text(">a\n" + "ACGT" * 50 + "\n")
    table = tmp_path / "scores.tsv"
    run("predict", str(fasta), "-m", str(out), "-o", str(table))
    assert len(table.read_text().splitlines()) == 2
    result = run("train", "--sequences", str(DATA / "cohn_sample.csv"), "--out",
                 str(tmp_path / "p"), "--arch", "hybrid", "--pooling", "cls", expect=1)  # fmt: skip
    assert "the hybrid pools mean or mean+max, not cls" in result.output


def test_pretrain_refuses_what_the_hybrid_cannot_do(tmp_path: Path, mini_fasta: Path) -> None:
    out = str(tmp_path / "o")
    result = run("pretrain", str(mini_fasta), "--out", out, "--arch", "hybrid", expect=2)
    assert "--arch hybrid reads bases, not tokens: it pretrains with --targets only" in (
        result.output
    )
    bed = tmp_path / "t.bed"
    bed.write_text("chr2\t20000\t20300\n")
    args = ["--targets", str(bed), "--arch", "hybrid", "--mlm-weight", "0.5"]
    result = run("pretrain", str(mini_fasta), "--out", out, *args, expect=2)
    assert "--arch hybrid has no masked-LM head" in result.output


def test_front_end_copies_a_cnns_blocks_and_refuses_other_shapes() -> None:
    cnn = busy(new_classifier("cnn-deep", seed=1).network)
    hybrid = new_classifier("hybrid", seed=2).network
    assert copy_front_end(hybrid, cnn) == 3
    for mine, theirs in zip(hybrid.cnn.blocks, cnn.cnn.blocks, strict=False):
        theirs_state = theirs.state_dict()
        for name, tensor in mine.state_dict().items():
            assert torch.equal(tensor, theirs_state[name]), name
    # The front end now computes what the CNN's first three blocks compute.
    ids, mask = batch(["ACGT" * 100])
    with torch.no_grad():
        features, _ = hybrid.eval().cnn(ids, mask)
        x, real = one_hot(ids), torch.ones(1, 1, 400)
        for block in cnn.cnn.blocks[:3]:
            x, real = block(x, real)
    torch.testing.assert_close(features, x)
    with pytest.raises(ValueError, match="block 1 is"):
        copy_front_end(hybrid, new_classifier("cnn", seed=0, channels=(64, 64, 64)).network)
    two_blocks = new_classifier("cnn", seed=0, channels=(128, 128), kernel_sizes=(15, 9))
    with pytest.raises(ValueError, match="the CNN has 2 blocks"):
        copy_front_end(hybrid, two_blocks.network)


def test_train_with_a_cnn_front_end(tmp_path: Path) -> None:
    common = ["--sequences", str(DATA / "cohn_sample.csv"), "--epochs", "1", "--batch-size",
              "32", "--window", "200", "--no-baseline"]  # fmt: skip
    cnn = tmp_path / "cnn"
    run("train", *common, "--arch", "cnn-deep", "--out", str(cnn))
    out = tmp_path / "hybrid"
    run("train", *common, "--arch", "hybrid", "--front-end", str(cnn), "--out", str(out))
    front = json.loads((out / "enhscan.json").read_text())["provenance"]["front_end"]
    assert front["path"] == str(cnn) and front["blocks"] == 3
    assert front["provenance"]["model"]["arch"] == "cnn-deep"
    large = tmp_path / "large"  # the larger encoder takes the same front end
    run("train", *common, "--arch", "hybrid-large", "--front-end", str(cnn), "--out", str(large))
    config = json.loads((large / "config.json").read_text())
    assert (config["hidden_size"], config["num_hidden_layers"]) == (256, 4)
    assert config["channels"] == json.loads((out / "config.json").read_text())["channels"]
    assert load_classifier(large).metadata.family == "hybrid"
    assert (
        json.loads((large / "enhscan.json").read_text())["provenance"]["front_end"]["blocks"] == 3
    )
    result = run("train", *common, "--arch", "hybrid", "--front-end", str(out),
                 "--out", str(tmp_path / "x"), expect=1)  # fmt: skip
    assert "holds a hybrid model; give a CNN folder" in result.output
    result = run("train", *common, "--arch", "small", "--front-end", str(cnn),
                 "--out", str(tmp_path / "y"), expect=2)  # fmt: skip
    assert "--front-end starts a new hybrid's convolutions" in result.output
    result = run("train", *common, "--arch", "hybrid", "--front-end", str(tmp_path / "nope"),
                 "--out", str(tmp_path / "z"), expect=2)  # fmt: skip
    assert "does not exist" in result.output


def test_pretrain_a_hybrid_on_targets_from_a_cnn_front_end(
    tmp_path: Path, mini_fasta: Path
) -> None:
    atlas = remo_like(mini_fasta, tmp_path)
    genome = str(atlas_genome(mini_fasta, atlas))
    common = ["--targets", str(atlas), "--label-column", "6", "--window", "300",
              "--windows", "64", "--val-windows", "16", "--test-windows", "16",
              "--val-chroms", "chrB", "--test-chroms", "chr22_32000000", "--epochs", "1",
              "--batch-size", "16", "--null-windows", "0", "--patience", "0"]  # fmt: skip
    cnn = tmp_path / "cnn"
    run("pretrain", genome, *common, "--arch", "cnn-deep", "--out", str(cnn))
    out = tmp_path / "hybrid"
    run("pretrain", genome, *common, "--arch", "hybrid", "--pooling", "mean+max", "--lr",
        "1e-12", "--front-end", str(cnn), "--out", str(out))  # fmt: skip
    front = json.loads((out / "enhscan.json").read_text())["provenance"]["front_end"]
    assert front["path"] == str(cnn) and front["blocks"] == 3
    hybrid, source = load_classifier(out).network, load_classifier(cnn).network
    assert hybrid.config.pooling == "mean+max"
    # Trained at a vanishing rate, its convolutions are still the CNN's: copied, and kept.
    for mine, theirs in zip(hybrid.cnn.blocks, source.cnn.blocks, strict=False):
        torch.testing.assert_close(mine.conv.weight, theirs.conv.weight, atol=1e-6, rtol=0)
    result = run("pretrain", genome, *common, "--arch", "cnn",
                 "--front-end", str(cnn), "--out", str(tmp_path / "x"), expect=2)  # fmt: skip
    assert "--front-end starts a new hybrid's convolutions; give --arch hybrid" in result.output
    result = run("pretrain", str(mini_fasta), "--front-end", str(cnn),
                 "--out", str(tmp_path / "y"), expect=2)  # fmt: skip
    assert "--front-end is an option of --targets; drop it" in result.output


def test_auto_kernels_are_plain_for_the_hybrid_and_fused_can_be_asked() -> None:
    from enhscan.engine import resolve_backend

    classifier = new_classifier("hybrid", seed=0, **TINY)
    assert resolve_backend(classifier, ComputeOptions(device="cpu")).kernels == "plain"
    asked = resolve_backend(classifier, ComputeOptions(device="cpu", kernels="fused"))
    assert asked.kernels == "fused"


def test_the_clis_one_hot_archs_are_the_cnn_and_hybrid_families() -> None:
    from enhscan.cli.options import HYBRID_ARCH_NAMES, NUCLEOTIDE_ARCHS

    assert set(NUCLEOTIDE_ARCHS) == set(FAMILIES["cnn"].archs) | set(FAMILIES["hybrid"].archs)
    assert set(HYBRID_ARCH_NAMES) == set(FAMILIES["hybrid"].archs)
