"""Tests for the native DNABERT-2 implementation (enhscan.model.dnabert2), CPU only, tiny models."""

import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file
from transformers import AutoConfig, AutoModelForSequenceClassification

from enhscan.model.dnabert2 import (
    DNABert2Config,
    DNABert2ForSequenceClassification,
    alibi_bias,
    alibi_slopes,
    attention_bias,
    probabilities,
    set_pooling,
)
from enhscan.model.folder import save_network
from enhscan.model.hf_interop import DNABert2HFConfig, DNABert2HFForSequenceClassification

CLS, SEP, PAD = 1, 2, 3

REAL_CONFIG_CANDIDATES = [
    Path(__file__).resolve().parents[2] / "shared/data/models/dnabert2/config.json",
    Path("/work/shared/data/models/dnabert2/config.json"),
]


def tiny_config(**overrides) -> DNABert2Config:
    kw = dict(
        vocab_size=4096,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
    )
    kw.update(overrides)
    return DNABert2Config(**kw)


def tiny_model(seed: int = 0, **overrides) -> DNABert2ForSequenceClassification:
    torch.manual_seed(seed)
    return DNABert2ForSequenceClassification(tiny_config(**overrides)).eval()


def random_sequences(lengths: list[int], seed: int = 0) -> list[torch.Tensor]:
    """Token id sequences [CLS] body [SEP] of the given total lengths."""
    g = torch.Generator().manual_seed(seed)
    return [
        torch.cat(
            [
                torch.tensor([CLS]),
                torch.randint(5, 4096, (n - 2,), generator=g),
                torch.tensor([SEP]),
            ]
        )
        for n in lengths
    ]


def pad_batch(seqs: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad with [PAD]; returns input_ids int64 [B, L] and attention_mask int64 [B, L]."""
    L = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), L), PAD, dtype=torch.long)
    mask = torch.zeros(len(seqs), L, dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, : len(s)] = s
        mask[i, : len(s)] = 1
    return ids, mask


# --- ALiBi ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "n_heads, expected",
    [
        (8, [2.0**-k for k in range(1, 9)]),
        # 8 power-of-two slopes, then every other of the 16-head slopes 2**(-k/2): k = 1, 3, 5, 7
        (12, [2.0**-k for k in range(1, 9)] + [2.0**-0.5, 2.0**-1.5, 2.0**-2.5, 2.0**-3.5]),
        # 4-head slopes 1/4 .. 1/256, then every other of the 8-head slopes: 1/2, 1/8
        (6, [1 / 4, 1 / 16, 1 / 64, 1 / 256, 1 / 2, 1 / 8]),
        (1, [1 / 256]),
    ],
)
def test_alibi_slopes(n_heads: int, expected: list[float]) -> None:
    slopes = alibi_slopes(n_heads)
    assert slopes.dtype == torch.float32 and slopes.shape == (n_heads,)
    torch.testing.assert_close(slopes, torch.tensor(expected), rtol=1e-6, atol=0)


def test_alibi_bias_is_minus_slope_times_distance() -> None:
    n_heads, L = 6, 9
    bias = alibi_bias(n_heads, L)
    assert bias.shape == (n_heads, L, L)
    slopes = alibi_slopes(n_heads)
    for h in range(n_heads):
        for i in range(L):
            for j in range(L):
                assert bias[h, i, j].item() == pytest.approx(-slopes[h].item() * abs(i - j))
    torch.testing.assert_close(bias, bias.transpose(1, 2), rtol=0, atol=0)


def test_attention_bias_masks_padded_keys_without_all_masked_rows() -> None:
    mask = torch.tensor([[1, 1, 1, 0, 0], [0, 0, 0, 0, 0]])
    bias = attention_bias(mask, n_heads=4, dtype=torch.float32)
    assert bias.shape == (2, 4, 5, 5)
    torch.testing.assert_close(bias[0, :, :, :3], alibi_bias(4, 5)[:, :, :3])
    assert (bias[0, :, :, 3:] < -1e30).all()
    assert torch.isfinite(bias).all()
    for dtype in (torch.bfloat16, torch.float16):
        assert torch.isfinite(attention_bias(mask, 4, dtype)).all()


# --- parameters ----------------------------------------------------------------------------


def test_state_dict_keys_match_dnabert2_checkpoint() -> None:
    expected = [
        "bert.embeddings.word_embeddings.weight",
        "bert.embeddings.token_type_embeddings.weight",
        "bert.embeddings.LayerNorm.weight",
        "bert.embeddings.LayerNorm.bias",
    ]
    for n in range(2):
        p = f"bert.encoder.layer.{n}."
        expected += [
            p + "attention.self.Wqkv.weight",
            p + "attention.self.Wqkv.bias",
            p + "attention.output.dense.weight",
            p + "attention.output.dense.bias",
            p + "attention.output.LayerNorm.weight",
            p + "attention.output.LayerNorm.bias",
            p + "mlp.gated_layers.weight",
            p + "mlp.wo.weight",
            p + "mlp.wo.bias",
            p + "mlp.layernorm.weight",
            p + "mlp.layernorm.bias",
        ]
    expected += ["bert.pooler.dense.weight", "bert.pooler.dense.bias"]
    expected += ["classifier.weight", "classifier.bias"]
    model = tiny_model()
    assert sorted(model.state_dict()) == sorted(expected)
    assert model.state_dict()["bert.encoder.layer.0.attention.self.Wqkv.weight"].shape == (96, 32)
    assert model.state_dict()["bert.encoder.layer.0.mlp.gated_layers.weight"].shape == (128, 32)


def test_init_weights() -> None:
    model = tiny_model(initializer_range=0.05, hidden_size=64, intermediate_size=128)
    w = model.bert.encoder.layer[0].mlp.gated_layers.weight
    assert abs(w.std().item() - 0.05) < 0.005
    assert (model.bert.encoder.layer[0].attention.self.Wqkv.bias == 0).all()
    assert (model.bert.embeddings.LayerNorm.weight == 1).all()
    assert (model.classifier.bias == 0).all()


# --- numerics ------------------------------------------------------------------------------


def reference_layer(layer, x: torch.Tensor, mask: torch.Tensor, n_heads: int) -> torch.Tensor:
    """One encoder layer written out by hand: explicit softmax attention + gated-GELU MLP."""
    B, L, H = x.shape
    d = H // n_heads
    qkv = x @ layer.attention.self.Wqkv.weight.T + layer.attention.self.Wqkv.bias
    q, k, v = (t.reshape(B, L, n_heads, d).transpose(1, 2) for t in qkv.split(H, dim=-1))
    slopes = alibi_slopes(n_heads)
    pos = torch.arange(L)
    bias = -slopes[:, None, None] * (pos[None, :, None] - pos[None, None, :]).abs()
    scores = q @ k.transpose(-1, -2) / math.sqrt(d) + bias
    scores = scores.masked_fill(~mask.bool()[:, None, None, :], float("-inf"))
    ctx = (scores.softmax(-1) @ v).transpose(1, 2).reshape(B, L, H)
    out = layer.attention.output
    h = F.layer_norm(
        ctx @ out.dense.weight.T + out.dense.bias + x,
        (H,),
        out.LayerNorm.weight,
        out.LayerNorm.bias,
        out.LayerNorm.eps,
    )
    mlp = layer.mlp
    gu = h @ mlp.gated_layers.weight.T
    inter = gu.shape[-1] // 2
    m = F.gelu(gu[..., :inter]) * gu[..., inter:]
    return F.layer_norm(
        m @ mlp.wo.weight.T + mlp.wo.bias + h,
        (H,),
        mlp.layernorm.weight,
        mlp.layernorm.bias,
        mlp.layernorm.eps,
    )


@pytest.mark.parametrize("n_heads, hidden", [(4, 32), (6, 48)])
def test_layer_matches_explicit_softmax_reference(n_heads: int, hidden: int) -> None:
    model = tiny_model(num_attention_heads=n_heads, hidden_size=hidden)
    layer = model.bert.encoder.layer[0]
    torch.manual_seed(1)
    x = torch.randn(3, 11, hidden)
    mask = torch.ones(3, 11, dtype=torch.long)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    with torch.no_grad():
        got = layer(x, attention_bias(mask, n_heads, torch.float32))
        want = reference_layer(layer, x, mask, n_heads)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("pooling", ["cls", "mean"])
@pytest.mark.parametrize("n_heads, hidden", [(4, 32), (6, 48)])
def test_logits_invariant_to_batching_and_padding(n_heads: int, hidden: int, pooling) -> None:
    model = tiny_model(num_attention_heads=n_heads, hidden_size=hidden, pooling=pooling)
    seqs = random_sequences([5, 60, 17, 33, 8, 49, 24], seed=n_heads)
    with torch.no_grad():
        alone = torch.cat([model(s[None]).logits for s in seqs])
        ids, mask = pad_batch(seqs)
        together = model(ids, attention_mask=mask).logits
        by_three = torch.cat(
            [model(*pad_batch(seqs[i : i + 3])).logits for i in range(0, len(seqs), 3)]
        )
        as_bool = model(ids, attention_mask=mask.bool()).logits
    assert together.shape == (7, 2)
    assert (alone - together).abs().max().item() < 1e-5
    assert (alone - by_three).abs().max().item() < 1e-5
    assert torch.equal(together, as_bool)


def test_mean_pooling_reads_every_token_and_can_be_switched() -> None:
    model = tiny_model(num_hidden_layers=2)
    ids, mask = pad_batch(random_sequences([30, 12, 25], seed=4))
    with torch.no_grad():
        cls = model(ids, attention_mask=mask).logits
        hidden, _ = model.bert(ids, mask)
        set_pooling(model, "mean")
        mean = model(ids, attention_mask=mask).logits
        # The pooler's input is the mean of the real tokens' last hidden states.
        real = mask[1].bool()
        want = model.classifier(model.bert.pooler.activation(
            model.bert.pooler.dense(hidden[1][real].mean(dim=0))))  # fmt: skip
        # [CLS]-only scanning is switched off by mean pooling, not silently wrong.
        short = model(ids, attention_mask=mask, first_only=True).logits
        _, pooled = model.bert(ids, mask, first_only=True)
    assert (cls - mean).abs().max().item() > 1e-3
    torch.testing.assert_close(mean[1], want, rtol=1e-5, atol=1e-5)
    assert torch.equal(mean, short) and pooled.shape == (3, 32)
    assert model.config.to_dict()["pooling"] == "mean"
    with pytest.raises(ValueError, match="pooling must be one of cls, mean"):
        set_pooling(model, "max")
    with pytest.raises(ValueError, match="pooling must be one of cls, mean"):
        tiny_config(pooling="max")


@pytest.mark.parametrize("layers", [1, 3])
def test_first_only_gives_the_same_logits(layers: int) -> None:
    """Scanning skips the last layer for all tokens but [CLS]; the logits must not change."""
    model = tiny_model(num_hidden_layers=layers)
    seqs = random_sequences([30, 12, 30, 21], seed=layers)
    with torch.no_grad():
        ids, mask = pad_batch(seqs)
        full = model(ids, attention_mask=mask).logits
        short = model(ids, attention_mask=mask, first_only=True).logits
        hidden, pooled = model.bert(ids, mask, first_only=True)
    assert hidden.shape == (4, 1, 32) and pooled.shape == (4, 32)
    assert (full - short).abs().max().item() < 1e-5


def test_no_mask_equals_an_all_ones_mask() -> None:
    """Batches without padding skip the mask: one ALiBi bias is shared by the batch."""
    model = tiny_model()
    ids, _ = pad_batch(random_sequences([25, 25, 25], seed=9))
    with torch.no_grad():
        without = model(ids, attention_mask=None).logits
        ones = model(ids, attention_mask=torch.ones_like(ids)).logits
    assert attention_bias(None, 4, torch.float32, 25, "cpu").shape == (1, 4, 25, 25)
    assert (without - ones).abs().max().item() < 1e-6


def test_long_sequences_beyond_512_tokens() -> None:
    model = tiny_model()
    seqs = random_sequences([700, 650], seed=3)
    with torch.no_grad():
        alone = model(seqs[0][None]).logits
        batch = model(*pad_batch(seqs)).logits
        hidden = model.embed(seqs[0][None])
    assert hidden.shape == (1, 700, 32)
    assert torch.isfinite(batch).all()
    assert (alone - batch[:1]).abs().max().item() < 1e-5


def test_bf16_and_autocast_close_to_fp32() -> None:
    model = tiny_model()
    ids, mask = pad_batch(random_sequences([40, 25, 12], seed=4))
    with torch.no_grad():
        ref = model.embed(ids, mask)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            auto = model.embed(ids, mask)
        model.to(torch.bfloat16)
        half = model.embed(ids, mask)
        logits = model(ids, mask).logits
    assert half.dtype == torch.bfloat16 and logits.dtype == torch.bfloat16
    valid = mask.bool()
    assert (half.float() - ref)[valid].abs().max().item() < 0.15
    assert (auto.float() - ref)[valid].abs().max().item() < 0.15
    assert torch.isfinite(logits).all()


def test_fully_padded_row_gives_no_nan() -> None:
    model = tiny_model()
    ids, mask = pad_batch(random_sequences([10, 6], seed=5))
    mask[1] = 0
    with torch.no_grad():
        logits = model(ids, attention_mask=mask).logits
    assert torch.isfinite(logits).all()


def test_probabilities() -> None:
    logits = torch.tensor([[0.0, 0.0], [2.0, -1.0]], dtype=torch.bfloat16)
    p = probabilities(logits)
    assert p.dtype == torch.float32 and p.shape == (2,)
    torch.testing.assert_close(p, torch.tensor([0.5, 1 / (1 + math.exp(3.0))]), rtol=1e-2, atol=0)
    torch.testing.assert_close(probabilities(logits, positive_index=0), 1 - p)
    single = probabilities(torch.tensor([[0.0], [1.0]]))
    torch.testing.assert_close(single, torch.sigmoid(torch.tensor([0.0, 1.0])))


# --- transformers integration --------------------------------------------------------------


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_save_and_from_pretrained_roundtrip(tmp_path: Path, pooling: str) -> None:
    model = tiny_model(num_labels=3, pooling=pooling)
    ids, mask = pad_batch(random_sequences([20, 9], seed=6))
    with torch.no_grad():
        before = model(ids, mask).logits
    save_network(model, tmp_path)
    assert (tmp_path / "model.safetensors").exists()
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["model_type"] == "dnabert2" and "auto_map" not in saved

    auto = AutoModelForSequenceClassification.from_pretrained(tmp_path).eval()
    assert type(auto) is DNABert2HFForSequenceClassification
    assert isinstance(AutoConfig.from_pretrained(tmp_path), DNABert2HFConfig)
    assert auto.config.num_labels == 3
    with torch.no_grad():
        assert torch.equal(auto(ids, mask).logits, before)
    # and back: transformers' save_pretrained writes a config the native class reads
    auto.save_pretrained(tmp_path / "again")
    again = DNABert2Config.from_dict(json.loads((tmp_path / "again/config.json").read_text()))
    assert again.num_labels == 3 and again.hidden_size == model.config.hidden_size
    assert again.pooling == saved["pooling"] == pooling


def masked_lm_state_dict(model: DNABert2ForSequenceClassification) -> dict[str, torch.Tensor]:
    """State dict shaped like the DNABERT-2 masked-LM checkpoint: no pooler/classifier, MLM head."""
    sd = {
        k: v.clone()
        for k, v in model.state_dict().items()
        if not k.startswith(("bert.pooler.", "classifier."))
    }
    H, V = model.config.hidden_size, model.config.vocab_size
    sd["cls.predictions.transform.dense.weight"] = torch.randn(H, H)
    sd["cls.predictions.transform.dense.bias"] = torch.zeros(H)
    sd["cls.predictions.transform.LayerNorm.weight"] = torch.ones(H)
    sd["cls.predictions.transform.LayerNorm.bias"] = torch.zeros(H)
    sd["cls.predictions.decoder.weight"] = torch.randn(V, H)
    sd["cls.predictions.decoder.bias"] = torch.zeros(V)
    return sd


def test_load_masked_lm_state_dict_reports_missing_and_unexpected() -> None:
    sd = masked_lm_state_dict(tiny_model(seed=1))
    result = tiny_model(seed=2).load_state_dict(sd, strict=False)
    assert sorted(result.missing_keys) == sorted(
        [
            "bert.pooler.dense.weight",
            "bert.pooler.dense.bias",
            "classifier.weight",
            "classifier.bias",
        ]
    )
    assert sorted(result.unexpected_keys) == sorted(k for k in sd if k.startswith("cls."))


def real_config_dict() -> dict:
    for path in REAL_CONFIG_CANDIDATES:
        if path.exists():
            return json.loads(path.read_text())
    pytest.skip("DNABERT-2 config.json not available")


def test_real_dnabert2_config() -> None:
    raw = real_config_dict()
    for cfg in (DNABert2Config(**raw), DNABert2Config.from_dict(raw)):
        assert cfg.model_type == "dnabert2"
        assert not hasattr(cfg, "auto_map")
        assert (cfg.hidden_size, cfg.num_hidden_layers, cfg.num_attention_heads) == (768, 12, 12)
        assert cfg.intermediate_size == 3072 and cfg.vocab_size == 4096
        assert cfg.num_labels == 2 and cfg.alibi_starting_size == 512
        assert cfg.to_dict()["model_type"] == "dnabert2"


def test_from_pretrained_with_original_config_and_mlm_weights(tmp_path: Path) -> None:
    """The DNABERT-2 release layout: its own config.json (model_type "bert") + MLM weights."""
    raw = real_config_dict()
    small = dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=64)
    (tmp_path / "config.json").write_text(json.dumps({**raw, **small}))
    source = tiny_model(seed=7)
    save_file(masked_lm_state_dict(source), str(tmp_path / "model.safetensors"))
    model = DNABert2HFForSequenceClassification.from_pretrained(tmp_path)
    assert model.config.model_type == "dnabert2"
    for k, v in source.state_dict().items():
        if k.startswith("bert.") and not k.startswith("bert.pooler."):
            assert torch.equal(model.state_dict()[k], v), k
    # the freshly initialised head is random, not zeros / NaN
    assert model.classifier.weight.std() > 0 and torch.isfinite(model.classifier.weight).all()


def test_config_sizes_and_validation() -> None:
    tiny = DNABert2Config.from_size("tiny")
    assert (tiny.hidden_size, tiny.num_hidden_layers, tiny.num_attention_heads) == (64, 2, 4)
    assert tiny.intermediate_size == 128
    small = DNABert2Config.from_size("small", num_labels=1)
    assert (small.hidden_size, small.num_hidden_layers, small.intermediate_size) == (256, 4, 512)
    assert small.num_labels == 1
    base = DNABert2Config.from_size("base")
    assert (base.hidden_size, base.num_hidden_layers, base.num_attention_heads) == (768, 12, 12)
    default = DNABert2Config()
    assert default.pad_token_id == 3 and default.num_labels == 2
    assert default.attention_probs_dropout_prob == 0.0 and default.layer_norm_eps == 1e-12
    with pytest.raises(ValueError, match="tiny"):
        DNABert2Config.from_size("huge")
    with pytest.raises(ValueError, match="multiple"):
        DNABert2Config(hidden_size=30, num_attention_heads=4)


# --- training ------------------------------------------------------------------------------


def toy_batch(n: int = 32, L: int = 12) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Label 1 iff the token after [CLS] is 7 (else 8); random lengths with padding."""
    g = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=g)
    lengths = torch.randint(4, L + 1, (n,), generator=g).tolist()
    seqs = []
    for y, n_tok in zip(labels.tolist(), lengths, strict=True):
        body = torch.randint(5, 4096, (n_tok - 2,), generator=g)
        body[0] = 7 if y else 8
        seqs.append(torch.cat([torch.tensor([CLS]), body, torch.tensor([SEP])]))
    ids, mask = pad_batch(seqs)
    return ids, mask, labels


def test_training_reduces_loss() -> None:
    model = tiny_model(seed=0).train()
    ids, mask, labels = toy_batch()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(25):
        out = model(ids, attention_mask=mask, labels=labels)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert all(p.grad is not None for p in model.parameters())
    assert losses[-1] < 0.5 * losses[0]


def test_activation_checkpointing_gives_same_gradients() -> None:
    ids, mask, labels = toy_batch(n=8)
    grads = []
    for checkpointing in (False, True):
        model = tiny_model(seed=0, hidden_dropout_prob=0.0).train()
        if checkpointing:
            model.gradient_checkpointing_enable()
            assert model.bert.encoder.gradient_checkpointing
        model(ids, attention_mask=mask, labels=labels).loss.backward()
        grads.append(model.bert.embeddings.word_embeddings.weight.grad.clone())
    torch.testing.assert_close(grads[0], grads[1])
