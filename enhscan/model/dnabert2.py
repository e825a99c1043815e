"""Native PyTorch DNABERT-2 (MosaicBERT-style BERT) for sequence classification.

DNABERT-2 is a BERT encoder without position embeddings. Positional information comes from an
ALiBi bias added to the attention scores, and the feed-forward block is a gated-GELU MLP.
This file re-implements the architecture with plain PyTorch (no remote code, no triton, no
flash-attn, no transformers) so it runs on CPU and CUDA in fp32 / bf16 / fp16, and uses
`torch.nn.functional.scaled_dot_product_attention` for attention. Loading it never imports
transformers; `enhscan.model.hf_interop` wraps it for transformers' Auto classes.

Parameter names match the published DNABERT-2 checkpoints exactly, so their state dicts load
directly (the masked-LM checkpoint lacks `bert.pooler.*` / `classifier.*` and carries extra
`cls.predictions.*` keys).

Shapes: B = batch, L = sequence length (tokens incl. [CLS]/[SEP]), H = hidden size,
nh = attention heads, hd = H // nh, I = intermediate size.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from types import ModuleType

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.checkpoint import checkpoint

from enhscan.model.config import NetworkConfig

__all__ = [
    "DNABert2Config",
    "DNABert2Model",
    "DNABert2ForSequenceClassification",
    "DNABert2ForMaskedLM",
    "DNABert2WithMLMHead",
    "ClassifierOutput",
    "MaskedLMOutput",
    "alibi_slopes",
    "alibi_bias",
    "attention_bias",
    "init_weights",
    "probabilities",
    "set_pooling",
    "POOLINGS",
]

# Named model shapes for `DNABert2Config.from_size`. "base" is DNABERT-2-117M.
MODEL_SIZES: dict[str, dict[str, int]] = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    "small": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=512
    ),
    "base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}

#: How the classifier reads the last layer: the [CLS] token, or the mean of all tokens.
POOLINGS = ("cls", "mean")


# -----------------------------------------------------------------------------
# Config


class DNABert2Config(NetworkConfig):
    """Configuration of a DNABERT-2 model; defaults are those of DNABERT-2-117M.

    Accepts the original DNABERT-2 `config.json` as keyword arguments. Unknown keys are kept as
    attributes, except `auto_map` (dropped so nothing ever points at remote code) and
    `model_type` (always "dnabert2"). `alibi_starting_size` is kept for compatibility only: the
    ALiBi bias is built for whatever length a batch has. `num_labels` (default 2),
    `problem_type` and `id2label` are those of :class:`enhscan.model.config.NetworkConfig`.
    """

    model_type = "dnabert2"
    architecture = "DNABert2ForSequenceClassification"
    FIELDS = (
        "vocab_size",
        "hidden_size",
        "num_hidden_layers",
        "num_attention_heads",
        "intermediate_size",
        "hidden_dropout_prob",
        "attention_probs_dropout_prob",
        "classifier_dropout",
        "layer_norm_eps",
        "type_vocab_size",
        "initializer_range",
        "alibi_starting_size",
        "pooling",
    )

    def __init__(
        self,
        vocab_size: int = 4096,
        hidden_size: int = 768,
        num_hidden_layers: int = 12,
        num_attention_heads: int = 12,
        intermediate_size: int = 3072,
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.0,
        classifier_dropout: float | None = None,
        layer_norm_eps: float = 1e-12,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        alibi_starting_size: int = 512,
        pooling: str = "cls",
        pad_token_id: int | None = 3,  # [PAD] in the DNABERT-2 tokenizer
        **kwargs,
    ):
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
        if num_attention_heads <= 0 or hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"hidden_size ({hidden_size}) must be a multiple of "
                f"num_attention_heads ({num_attention_heads})"
            )
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.classifier_dropout = classifier_dropout
        self.layer_norm_eps = layer_norm_eps
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.alibi_starting_size = alibi_starting_size
        self.pooling = pooling
        super().__init__(pad_token_id=pad_token_id, **kwargs)

    @classmethod
    def from_size(cls, name: str, **overrides) -> DNABert2Config:
        """Config for a named shape ("tiny", "small", "base"); `overrides` win over the preset."""
        if name not in MODEL_SIZES:
            raise ValueError(
                f"unknown DNABERT-2 size {name!r}; choose one of {sorted(MODEL_SIZES)}"
            )
        return cls(**{**MODEL_SIZES[name], **overrides})


# -----------------------------------------------------------------------------
# ALiBi


def alibi_slopes(n_heads: int) -> Tensor:
    """ALiBi head slopes as used by MosaicBERT / DNABERT-2.

    For a power of two n the slopes are the geometric sequence start, start**2, ..., start**n
    with start = 2 ** (-8 / n) (8 heads: 1/2, 1/4, ..., 1/256). Otherwise the slopes of the
    closest lower power of two p are followed by the first n - p of every other slope of 2p heads.

    Returns: float32 tensor [n_heads].
    """
    if n_heads < 1:
        raise ValueError(f"n_heads must be >= 1, got {n_heads}")

    def power_of_two_slopes(n: int) -> list[float]:
        start = 2 ** (-(2 ** -(math.log2(n) - 3)))
        return [start * start**i for i in range(n)]

    p = 2 ** math.floor(math.log2(n_heads))
    slopes = power_of_two_slopes(p)
    if p < n_heads:
        slopes += power_of_two_slopes(2 * p)[0::2][: n_heads - p]
    return torch.tensor(slopes, dtype=torch.float32)


def alibi_bias(n_heads: int, seq_len: int, device: torch.device | str | None = None) -> Tensor:
    """ALiBi attention bias bias[h, i, j] = -slope_h * |i - j| for any sequence length.

    Returns: float32 tensor [n_heads, seq_len, seq_len] on `device`.
    """
    pos = torch.arange(seq_len, device=device, dtype=torch.float32)
    distance = (pos[None, :] - pos[:, None]).abs()  # [L, L]
    return -alibi_slopes(n_heads).to(device)[:, None, None] * distance


def attention_bias(
    attention_mask: Tensor | None,
    n_heads: int,
    dtype: torch.dtype,
    seq_len: int | None = None,
    device: torch.device | str | None = None,
) -> Tensor:
    """Additive attention mask: ALiBi plus a large negative value on padded keys.

    Padded keys get finfo(dtype).min / 2 rather than -inf: exp() of it relative to any valid key
    underflows to exactly 0 (so padding cannot change valid outputs), but a row whose keys are
    all padded still softmaxes to finite values instead of NaN. Padded query rows attend to the
    valid keys as usual; their outputs are never read by valid positions.

    Args:
        attention_mask: [B, L] bool or 0/1 integer, True / 1 for real tokens; None when no
            token is padded (then ``seq_len`` and ``device`` say the shape).
        n_heads: number of attention heads.
        dtype: dtype of the attention scores (the query dtype).
    Returns: tensor [B, n_heads, L, L] of `dtype` on the mask's device, or [1, n_heads, L, L]
        without a mask: one bias shared by the batch, which saves building (and attention
        reading) B copies of it.
    """
    if attention_mask is None:
        return alibi_bias(n_heads, seq_len, device).to(dtype)[None]
    B, L = attention_mask.shape
    alibi = alibi_bias(n_heads, L, attention_mask.device).to(dtype)  # [nh, L, L]
    padded = ~attention_mask.bool()
    pad = torch.zeros(B, 1, 1, L, dtype=dtype, device=attention_mask.device)
    pad = pad.masked_fill(padded[:, None, None, :], torch.finfo(dtype).min / 2)
    return alibi[None] + pad


# -----------------------------------------------------------------------------
# Modules


class DNABert2Embeddings(nn.Module):
    """Token + token-type embeddings, LayerNorm, dropout (no position embeddings)."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.word_embeddings = nn.Embedding(config.vocab_size, config.hidden_size)
        self.token_type_embeddings = nn.Embedding(config.type_vocab_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, input_ids: Tensor, token_type_ids: Tensor | None = None) -> Tensor:
        """input_ids, token_type_ids: int64 [B, L] -> float [B, L, H] (parameter dtype)."""
        x = self.word_embeddings(input_ids)
        if token_type_ids is None:
            x = x + self.token_type_embeddings.weight[0]  # all token types are 0
        else:
            x = x + self.token_type_embeddings(token_type_ids)
        return self.dropout(self.LayerNorm(x))


class DNABert2SelfAttention(nn.Module):
    """Multi-head self-attention with a fused QKV projection and an additive bias."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.n_heads = config.num_attention_heads
        self.head_dim = config.hidden_size // config.num_attention_heads
        self.dropout_p = config.attention_probs_dropout_prob
        self.Wqkv = nn.Linear(config.hidden_size, 3 * config.hidden_size)
        # Attend one window at a time, so a window's result cannot depend on its batch-mates:
        # PyTorch's CPU attention kernel shares its work out by batch and head, and the last
        # bits then depend on the batch size (seen with torch 2.13 on an AMD EPYC). Set by
        # batch-invariant scoring.
        self.one_window_at_a_time = False

    def forward(self, x: Tensor, attn_bias: Tensor, first_only: bool = False) -> Tensor:
        """x: [B, L, H]; attn_bias: [B or 1, nh, L, L] additive -> context [B, Q, H] (dtype of
        x), Q = L, or Q = 1 with ``first_only`` (only the first token queries)."""
        B, L, H = x.shape
        qkv = self.Wqkv(x).view(B, L, 3, self.n_heads, self.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [B, nh, L, hd]
        if first_only:
            q, attn_bias = q[:, :, :1], attn_bias[:, :, :1]
        attn_bias = attn_bias.to(q.dtype)
        dropout_p = self.dropout_p if self.training else 0.0
        if self.one_window_at_a_time:
            y = torch.cat(
                [
                    F.scaled_dot_product_attention(
                        q[i : i + 1],
                        k[i : i + 1],
                        v[i : i + 1],
                        attn_mask=attn_bias[i : i + 1] if len(attn_bias) > 1 else attn_bias,
                        dropout_p=dropout_p,
                    )
                    for i in range(B)
                ]
            )
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_bias, dropout_p=dropout_p)
        return y.transpose(1, 2).reshape(B, q.shape[2], H)


class DNABert2SelfOutput(nn.Module):
    """Output projection, dropout, post-LN residual."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)

    def forward(self, context: Tensor, residual: Tensor) -> Tensor:
        """context, residual: [B, L, H] -> [B, L, H]."""
        return self.LayerNorm(self.dropout(self.dense(context)) + residual)


class DNABert2Attention(nn.Module):
    """Attention block; the submodule named `self` mirrors the checkpoint key names."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.self = DNABert2SelfAttention(config)
        self.output = DNABert2SelfOutput(config)

    def forward(self, x: Tensor, attn_bias: Tensor, first_only: bool = False) -> Tensor:
        """x: [B, L, H]; attn_bias: [B or 1, nh, L, L] -> [B, L, H] ([B, 1, H] if first_only)."""
        residual = x[:, :1] if first_only else x
        return self.output(self.self(x, attn_bias, first_only), residual)


class DNABert2MLP(nn.Module):
    """Gated-GELU feed-forward: wo(gelu(x W_g) * (x W_v)), dropout, post-LN residual."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.intermediate_size = config.intermediate_size
        self.gated_layers = nn.Linear(config.hidden_size, 2 * config.intermediate_size, bias=False)
        self.act = nn.GELU(approximate="none")
        self.wo = nn.Linear(config.intermediate_size, config.hidden_size)
        self.dropout = nn.Dropout(config.hidden_dropout_prob)
        self.layernorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)

    def forward(self, x: Tensor) -> Tensor:
        """x: [B, L, H] -> [B, L, H]."""
        gated, non_gated = self.gated_layers(x).split(self.intermediate_size, dim=-1)
        if gated.shape[-2] == 1:
            # [B, 1, I] views are contiguous for B = 1 only, and PyTorch's CPU GELU takes
            # another code path (other last bits) on the other ones: copy, so that a [CLS]
            # row's value does not depend on the batch size.
            gated = gated.contiguous()
        h = self.dropout(self.act(gated) * non_gated)
        return self.layernorm(self.dropout(self.wo(h)) + x)


class DNABert2Layer(nn.Module):
    """One encoder layer: attention block then gated MLP block (both post-LN)."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.attention = DNABert2Attention(config)
        self.mlp = DNABert2MLP(config)

    def forward(self, x: Tensor, attn_bias: Tensor, first_only: bool = False) -> Tensor:
        """x: [B, L, H]; attn_bias: [B or 1, nh, L, L] -> [B, L, H] ([B, 1, H] if first_only)."""
        return self.mlp(self.attention(x, attn_bias, first_only))


class DNABert2Encoder(nn.Module):
    """Stack of layers sharing one ALiBi + padding bias per forward."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.n_heads = config.num_attention_heads
        self.layer = nn.ModuleList(DNABert2Layer(config) for _ in range(config.num_hidden_layers))
        # Recompute each layer's activations in the backward pass instead of keeping them:
        # set by `gradient_checkpointing_enable()` (transformers sets it the same way).
        self.gradient_checkpointing = False

    def forward(self, x: Tensor, attention_mask: Tensor | None, first_only: bool = False) -> Tensor:
        """Run the layers.

        Args:
            x: embeddings [B, L, H].
            attention_mask: [B, L] bool/0-1, or None when no token is padded.
            first_only: compute the last layer for the first token ([CLS]) only. A classifier
                reads nothing else, and the last layer's other outputs are most of its cost
                (its keys and values still come from every token, so the result is the same).
        Returns:
            last hidden states [B, L, H], or [B, 1, H] with ``first_only``.
        """
        dtype = x.dtype
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)  # q/k/v will come out in this dtype
        attn_bias = attention_bias(attention_mask, self.n_heads, dtype, x.shape[1], x.device)
        last = len(self.layer) - 1
        for i, layer in enumerate(self.layer):
            only = first_only and i == last
            if self.gradient_checkpointing and self.training:
                x = checkpoint(layer, x, attn_bias, only, use_reentrant=False)
            else:
                x = layer(x, attn_bias, only)
        return x


class DNABert2Pooler(nn.Module):
    """tanh(dense(h)), where h is the hidden state of the first token ([CLS], DNABERT-2's own
    pooling) or, with ``config.pooling == "mean"``, the mean over the sequence's tokens (pads
    left out), which published work on DNA language models found better for classification."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.config = config  # read at each call: set_pooling may change it
        self.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.activation = nn.Tanh()

    def forward(self, hidden_states: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """hidden_states: [B, L, H]; attention_mask: [B, L] or None -> pooled [B, H]."""
        if self.config.pooling == "cls":
            return self.activation(self.dense(hidden_states[:, 0]))
        if attention_mask is None:
            return self.activation(self.dense(hidden_states.mean(dim=1)))
        weights = attention_mask.to(hidden_states.dtype).unsqueeze(-1)  # [B, L, 1]
        mean = (hidden_states * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
        return self.activation(self.dense(mean))


def set_pooling(network: nn.Module, pooling: str) -> None:
    """Make a DNABERT-2 classifier pool ``pooling`` ("cls" or "mean") from now on (its
    config, which the pooler and the encoder read, and which is saved with it)."""
    if pooling not in POOLINGS:
        raise ValueError(f"pooling must be one of {', '.join(POOLINGS)}, not {pooling!r}")
    network.config.pooling = pooling


class DNABert2Model(nn.Module):
    """The DNABERT-2 encoder (`bert.*` in checkpoints): embeddings, encoder, pooler."""

    def __init__(self, config: DNABert2Config, add_pooling_layer: bool = True):
        super().__init__()
        self.config = config
        self.embeddings = DNABert2Embeddings(config)
        self.encoder = DNABert2Encoder(config)
        self.pooler = DNABert2Pooler(config) if add_pooling_layer else None

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        first_only: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """Encode a batch.

        Args:
            input_ids: int64 [B, L], right-padded with the pad token.
            attention_mask: [B, L] bool or 0/1, 1 for real tokens; None: nothing is padded.
            token_type_ids: int64 [B, L] or None (all zeros).
            first_only: see :meth:`DNABert2Encoder.forward`.
        Returns:
            (last hidden states [B, L, H] ([B, 1, H] with ``first_only``), pooled [CLS] output
            [B, H] or None without a pooler), in the parameter dtype (or the autocast dtype).
        """
        x = self.embeddings(input_ids, token_type_ids)
        # Mean pooling reads every token of the last layer: [CLS] alone will not do.
        first_only = first_only and self.config.pooling == "cls"
        x = self.encoder(x, attention_mask, first_only)
        pooled = self.pooler(x, attention_mask) if self.pooler is not None else None
        return x, pooled


# -----------------------------------------------------------------------------
# Heads


@dataclass
class ClassifierOutput:
    """What a classifier returns: logits [B, num_labels], and a scalar loss given labels."""

    logits: Tensor
    loss: Tensor | None = None


@dataclass
class MaskedLMOutput:
    """What the masked-LM returns: logits ([N, V] or [B, L, V]) and, given labels, the loss."""

    logits: Tensor
    loss: Tensor | None = None


@torch.no_grad()
def init_weights(module: nn.Module, std: float, init: ModuleType = nn.init) -> None:
    """BERT's initialisation of one module: normal(0, std) weights, zero biases, unit norms.

    ``init`` is the namespace of init functions: torch's, or transformers' own (which skip
    tensors already loaded from a checkpoint).
    """
    if isinstance(module, nn.Linear):
        init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.Embedding):
        init.normal_(module.weight, mean=0.0, std=std)
    elif isinstance(module, nn.LayerNorm):
        init.ones_(module.weight)
        init.zeros_(module.bias)


class DNABert2ForSequenceClassification(nn.Module):
    """DNABERT-2 with a linear head on the pooled [CLS] output; freshly initialised weights."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.config = config
        self.add_modules(config)
        self.apply(lambda module: init_weights(module, config.initializer_range))

    def add_modules(self, config: DNABert2Config) -> None:
        """Create the submodules (shared with the transformers wrapper, which inits them)."""
        self.num_labels = config.num_labels
        self.bert = DNABert2Model(config)
        p = config.classifier_dropout
        self.dropout = nn.Dropout(config.hidden_dropout_prob if p is None else p)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def gradient_checkpointing_enable(self) -> None:
        """Recompute layer activations in the backward pass: less memory, more time."""
        self.bert.encoder.gradient_checkpointing = True

    def embed(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
    ) -> Tensor:
        """Last encoder hidden states [B, L, H] (float, parameter/autocast dtype).

        input_ids: int64 [B, L]; attention_mask: [B, L] bool or 0/1 (default all ones).
        Positions where attention_mask is 0 hold meaningless values.
        """
        hidden, _ = self.bert(input_ids, attention_mask, token_type_ids)
        return hidden

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
        first_only: bool = False,
    ) -> ClassifierOutput:
        """Classify a batch.

        Args:
            input_ids: int64 [B, L], right-padded with the pad token.
            attention_mask: [B, L] bool or 0/1 (None: nothing is padded).
            token_type_ids: int64 [B, L] or None.
            labels: optional. int64 [B] class ids (cross-entropy), float [B] targets when
                num_labels == 1 (MSE), or float [B, num_labels] multi-hot (BCE with logits);
                `config.problem_type` overrides the inference, as in transformers.
            first_only: skip the last layer's outputs for every token but [CLS], which alone
                feeds the head: same logits (to float rounding), less work. Scanning sets it.
        Returns:
            ClassifierOutput with logits [B, num_labels] and a scalar loss if labels.
        """
        _, pooled = self.bert(input_ids, attention_mask, token_type_ids, first_only)
        logits = self.classifier(self.dropout(pooled))
        loss = self._loss(logits, labels) if labels is not None else None
        return ClassifierOutput(logits=logits, loss=loss)

    def _loss(self, logits: Tensor, labels: Tensor) -> Tensor:
        problem = self.config.problem_type
        if problem is None:
            if self.num_labels == 1:
                problem = "regression"
            elif labels.dtype in (torch.long, torch.int):
                problem = "single_label_classification"
            else:
                problem = "multi_label_classification"
        if problem == "regression":
            return F.mse_loss(logits.squeeze(-1).float(), labels.float().view(-1))
        if problem == "single_label_classification":
            return F.cross_entropy(logits.float(), labels.view(-1))
        return F.binary_cross_entropy_with_logits(logits.float(), labels.float())


class DNABert2LMPredictionHead(nn.Module):
    """Masked-LM head (`cls.predictions.*`): dense + GELU + LayerNorm, then the decoder."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.transform = nn.Module()
        self.transform.dense = nn.Linear(config.hidden_size, config.hidden_size)
        self.transform.LayerNorm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.decoder = nn.Linear(config.hidden_size, config.vocab_size)

    def forward(self, hidden: Tensor) -> Tensor:
        """hidden: [N, H] -> logits over the vocabulary [N, V]."""
        h = self.transform.LayerNorm(F.gelu(self.transform.dense(hidden)))
        return self.decoder(h)


class DNABert2MLMHeads(nn.Module):
    """Container named `cls` in checkpoints, holding `predictions`."""

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.predictions = DNABert2LMPredictionHead(config)


class DNABert2ForMaskedLM(nn.Module):
    """DNABERT-2 with its masked-language-model head, for pretraining.

    The state dict has the names of the DNABERT-2 masked-LM checkpoint: `bert.*` (no pooler)
    and `cls.predictions.{transform.dense,transform.LayerNorm,decoder}.*`. The decoder weight
    is tied to the word embeddings, as in BERT.
    """

    def __init__(self, config: DNABert2Config):
        super().__init__()
        self.config = config
        self.bert = DNABert2Model(config, add_pooling_layer=False)
        self.cls = DNABert2MLMHeads(config)
        self.apply(lambda module: init_weights(module, config.initializer_range))
        # One matrix embeds tokens and scores them.
        self.cls.predictions.decoder.weight = self.bert.embeddings.word_embeddings.weight

    def gradient_checkpointing_enable(self) -> None:
        """Recompute layer activations in the backward pass: less memory, more time."""
        self.bert.encoder.gradient_checkpointing = True

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        token_type_ids: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> MaskedLMOutput:
        """Predict tokens.

        Args:
            input_ids: int64 [B, L] with some tokens replaced by [MASK].
            attention_mask: [B, L] bool or 0/1.
            labels: int64 [B, L], the original token where a prediction is scored, -100
                elsewhere. When given, logits are computed only at those positions.
        Returns:
            MaskedLMOutput: loss (mean cross-entropy over scored positions) and logits, [N, V]
            for the N scored positions when labels are given, else [B, L, V].
        """
        hidden, _ = self.bert(input_ids, attention_mask, token_type_ids)
        if labels is None:
            return MaskedLMOutput(logits=self.cls.predictions(hidden))
        scored = labels != -100
        logits = self.cls.predictions(hidden[scored])
        loss = F.cross_entropy(logits.float(), labels[scored])
        return MaskedLMOutput(logits=logits, loss=loss)


class DNABert2WithMLMHead(nn.Module):
    """A classifier and a masked-LM head on one shared encoder, for training both at once.

    ``network`` (a :class:`DNABert2ForSequenceClassification`) is the model that is kept; the
    masked-LM head (``cls.predictions``, decoder tied to the word embeddings, as in BERT) only
    serves training and is dropped with this wrapper.
    """

    def __init__(self, network: DNABert2ForSequenceClassification):
        super().__init__()
        self.network = network
        self.cls = DNABert2MLMHeads(network.config)
        std = network.config.initializer_range
        self.cls.apply(lambda module: init_weights(module, std))
        self.cls.predictions.decoder.weight = network.bert.embeddings.word_embeddings.weight

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor,
        masked_input_ids: Tensor,
        mlm_labels: Tensor,
    ) -> tuple[Tensor, MaskedLMOutput]:
        """Classifier logits [B, num_labels] of the intact windows ``input_ids``, and the
        masked-LM output (logits [N, V] of the N scored tokens, and their mean cross-entropy)
        of ``masked_input_ids`` with ``mlm_labels`` (int64 [B, L], -100 where not scored)."""
        logits = self.network(input_ids=input_ids, attention_mask=attention_mask).logits
        hidden, _ = self.network.bert(masked_input_ids, attention_mask)
        scored = mlm_labels != -100
        mlm_logits = self.cls.predictions(hidden[scored])
        loss = F.cross_entropy(mlm_logits.float(), mlm_labels[scored])
        return logits, MaskedLMOutput(logits=mlm_logits, loss=loss)


def probabilities(logits: Tensor, positive_index: int = 1) -> Tensor:
    """Positive-class probability per sequence.

    logits: [B, num_labels] any float dtype -> float32 [B]: softmax column `positive_index`,
    or sigmoid of the single logit when num_labels == 1.
    """
    logits = logits.float()
    if logits.shape[-1] == 1:
        return torch.sigmoid(logits[..., 0])
    return torch.softmax(logits, dim=-1)[..., positive_index]
