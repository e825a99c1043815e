"""Tests for the CNN baseline family (enhscan.model.cnn), CPU only, small models."""

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoConfig, AutoModelForSequenceClassification

from enhscan.engine import WindowScorer
from enhscan.model.cnn import (
    N_CODE,
    PAD_CODE,
    CNNConfig,
    EnhancerCNN,
    NucleotideEncoder,
    one_hot,
)
from enhscan.model.encoding import pad_batch
from enhscan.model.folder import save_network
from enhscan.model.hf_interop import CNNHFConfig, EnhancerCNNHF
from tests.conftest import busy

LENGTHS = [37, 250, 999, 1000, 1003]


def random_dna(n: int, rng: np.random.Generator) -> str:
    return "".join(rng.choice(list("ACGT"), size=n))


def batch(seqs: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
    """Encode and right-pad as the scanning engine does: ids int64 [B, L], mask bool [B, L]."""
    ids, mask = pad_batch(NucleotideEncoder().encode(seqs), PAD_CODE)
    return torch.from_numpy(ids), torch.from_numpy(mask)


def busy_model(size: str = "tiny", seed: int = 0, **overrides) -> EnhancerCNN:
    """A model in eval mode whose padding leaks would show (:func:`tests.conftest.busy`)."""
    torch.manual_seed(seed)
    return busy(EnhancerCNN(CNNConfig.from_size(size, initializer_range=0.3, **overrides)))


# --- encoder -------------------------------------------------------------------------------


def test_encoder_codes() -> None:
    enc = NucleotideEncoder()
    out = enc.encode(["ACGTN", "acgtn", "RYKMSWBDHV-.", "", "GaTtaca"])
    assert [a.tolist() for a in out] == [
        [0, 1, 2, 3, 4],
        [0, 1, 2, 3, 4],
        [N_CODE] * 12,
        [],
        [2, 0, 3, 3, 0, 1, 0],
    ]
    assert all(a.dtype == np.int64 for a in out)
    # a non-ASCII character is one N, not several bytes
    assert enc.encode(["AéC"])[0].tolist() == [0, N_CODE, 1]
    assert (enc.pad_id, enc.vocab_size, enc.cls_id, enc.sep_id) == (5, 6, None, None)


def test_encoder_pickles() -> None:
    enc = pickle.loads(pickle.dumps(NucleotideEncoder()))
    assert enc.pad_id == PAD_CODE and enc.encode(["TG"])[0].tolist() == [3, 2]


def test_one_hot_of_n_and_pad_is_zero() -> None:
    x = one_hot(torch.tensor([[0, 1, 2, 3, N_CODE, PAD_CODE]]))
    assert x.shape == (1, 4, 6) and x.dtype == torch.float32
    torch.testing.assert_close(x[0, :, :4], torch.eye(4))
    assert (x[0, :, 4:] == 0).all()


# --- config --------------------------------------------------------------------------------


def test_config_sizes_and_validation() -> None:
    base = CNNConfig.from_size("base")
    assert base.channels == [128, 128, 128] and base.kernel_sizes == [15, 9, 9]
    assert base.num_labels == 2 and base.model_type == "enhscan-cnn"
    tiny = CNNConfig.from_size("tiny", pool_size=3)
    assert tiny.channels == [16, 16] and tiny.pool_size == 3
    assert CNNConfig(model_type="bert").model_type == "enhscan-cnn"
    with pytest.raises(ValueError, match="same length"):
        CNNConfig(channels=(8, 8), kernel_sizes=(3,))
    with pytest.raises(ValueError, match="same length"):
        CNNConfig(channels=(), kernel_sizes=())
    with pytest.raises(ValueError, match=">= 1"):
        CNNConfig(pool_size=0)
    with pytest.raises(ValueError, match="num_labels"):
        CNNConfig(num_labels=1)
    with pytest.raises(ValueError, match="unknown CNN size"):
        CNNConfig.from_size("huge")


def test_the_deep_cnn_is_a_cnn_folder_with_a_fourth_block(tmp_path) -> None:
    from enhscan.model import load_classifier, new_classifier, save_classifier

    deep = new_classifier("cnn-deep", seed=0, window=1000)
    assert deep.metadata.family == "cnn" and len(deep.network.cnn.blocks) == 4
    loaded = load_classifier(save_classifier(deep, tmp_path / "deep"))
    assert loaded.network.config.channels == [128, 128, 128, 128]
    seq = "ACGT" * 250
    deep_score = WindowScorer(deep).score([seq])
    assert np.allclose(deep_score, WindowScorer(loaded).score([seq]), atol=1e-6)


# --- model ---------------------------------------------------------------------------------


def test_state_dict_holds_parameters_and_batchnorm_buffers_only() -> None:
    model = EnhancerCNN(CNNConfig.from_size("tiny"))
    params = {name for name, _ in model.named_parameters()}
    buffers = set(model.state_dict()) - params
    assert buffers == {
        f"cnn.blocks.{i}.norm.{b}"
        for i in range(2)
        for b in ("running_mean", "running_var", "num_batches_tracked")
    }
    assert model.state_dict()["cnn.blocks.0.conv.weight"].shape == (16, 4, 9)
    assert model.state_dict()["dense.weight"].shape == (16, 32)
    assert model.state_dict()["classifier.weight"].shape == (2, 16)


def test_init_weights() -> None:
    torch.manual_seed(0)
    model = EnhancerCNN(CNNConfig.from_size("base", initializer_range=0.05))
    assert abs(model.cnn.blocks[1].conv.weight.std().item() - 0.05) < 0.005
    assert (model.cnn.blocks[1].conv.bias == 0).all() and (model.dense.bias == 0).all()
    norm = model.cnn.blocks[0].norm
    assert (norm.weight == 1).all() and (norm.bias == 0).all()
    assert (norm.running_mean == 0).all() and (norm.running_var == 1).all()


@pytest.mark.parametrize("length", [1, 2, 5, 37, 1000])
def test_output_shapes(length: int) -> None:
    model = busy_model(num_labels=3)
    ids, mask = batch([random_dna(length, np.random.default_rng(length))] * 2)
    out = model(input_ids=ids, attention_mask=mask)
    assert out.logits.shape == (2, 3) and out.logits.dtype == torch.float32
    assert out.loss is None and torch.isfinite(out.logits).all()
    # no mask means all positions are real
    torch.testing.assert_close(model(ids).logits, out.logits)


# torch warns that "same" padding with an even kernel copies the input; harmless here.
@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel")
@pytest.mark.parametrize(
    "size, overrides",
    [("tiny", {}), ("tiny", {"pool_size": 3, "kernel_sizes": (8, 4)}), ("base", {})],
)
def test_logits_invariant_to_batching_and_padding(size: str, overrides: dict) -> None:
    model = busy_model(size, **overrides)
    rng = np.random.default_rng(1)
    # Ns inside and at the end of a sequence, too: their one-hot is zero like padding
    seqs = [random_dna(n, rng) for n in LENGTHS] + ["NN" + random_dna(40, rng) + "NNN"]
    with torch.no_grad():
        alone = torch.cat([model(*batch([s])).logits for s in seqs])
        assert alone.std(0).min() > 1e-3  # the check below has something to compare
        for order in ([0, 1, 2, 3, 4, 5], [5, 4, 3, 2, 1, 0], [0, 4], [2, 5, 3], [1, 0]):
            together = model(*batch([seqs[i] for i in order])).logits
            torch.testing.assert_close(together, alone[order], atol=1e-5, rtol=1e-5)


def test_fully_padded_row_gives_finite_logits() -> None:
    model = busy_model()
    ids, mask = batch(["ACGT" * 10, ""])
    with torch.no_grad():
        logits = model(input_ids=ids, attention_mask=mask).logits
    assert torch.isfinite(logits).all()


def test_bf16_autocast_runs_close_to_fp32() -> None:
    model = busy_model()
    rng = np.random.default_rng(2)
    ids, mask = batch([random_dna(n, rng) for n in (300, 1000)])
    labels = torch.tensor([0, 1])
    with torch.no_grad():
        ref = model(input_ids=ids, attention_mask=mask).logits
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = model(input_ids=ids, attention_mask=mask, labels=labels)
    assert out.logits.dtype == torch.bfloat16 and out.loss.dtype == torch.float32
    torch.testing.assert_close(out.logits.float(), ref, atol=0.1, rtol=0.05)


# --- saving, and transformers' Auto classes -----------------------------------------------


def test_save_and_from_pretrained_roundtrip(tmp_path: Path) -> None:
    model = busy_model(num_labels=3)
    ids, mask = batch(["ACGTTGCA" * 20, "GATAAGATAAN"])
    with torch.no_grad():
        before = model(ids, mask).logits
    save_network(model, tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "enhscan-cnn" and saved["channels"] == [16, 16]

    reloaded = EnhancerCNN(CNNConfig.from_dict(saved)).eval()
    reloaded.load_state_dict(load_file(tmp_path / "model.safetensors"))
    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(auto) is EnhancerCNNHF
    config = AutoConfig.from_pretrained(tmp_path)
    assert isinstance(config, CNNHFConfig) and config.num_labels == 3
    for name, tensor in model.state_dict().items():
        assert torch.equal(auto.state_dict()[name], tensor), name
    with torch.no_grad():
        assert torch.equal(reloaded(ids, mask).logits, before)
        assert torch.equal(auto(ids, mask).logits, before)


def toy_data(n: int, length: int, rng: np.random.Generator) -> tuple[list[str], torch.Tensor]:
    """Random windows; every other one (label 1) carries the motif GATAAGATAA somewhere."""
    seqs, labels = [], []
    for i in range(n):
        s = random_dna(length, rng)
        if i % 2:
            at = int(rng.integers(0, length - 10))
            s = s[:at] + "GATAAGATAA" + s[at + 10 :]
        seqs.append(s)
        labels.append(i % 2)
    return seqs, torch.tensor(labels)


def test_training_on_planted_motif_reduces_loss() -> None:
    torch.manual_seed(0)
    model = EnhancerCNN(CNNConfig.from_size("tiny", dropout=0.0)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-2)
    # A low learning rate at the end lets the BatchNorm running statistics catch up with the
    # weights, so the eval-mode check below does not depend on the seed.
    schedule = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: 1.0 if step < 25 else 0.1)
    rng = np.random.default_rng(3)
    losses = []
    for _ in range(40):
        seqs, labels = toy_data(32, 200, rng)
        out = model(*batch(seqs), labels=labels)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        schedule.step()
        losses.append(out.loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])

    model.eval()
    seqs, labels = toy_data(200, 200, np.random.default_rng(4))
    with torch.no_grad():
        predicted = model(*batch(seqs)).logits.argmax(-1)
    assert (predicted == labels).float().mean() > 0.9
