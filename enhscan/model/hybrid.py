"""A hybrid enhancer classifier: a convolutional front end on one-hot DNA feeding the
DNABERT-2 transformer encoder (ALiBi attention, gated MLP), read by mean (or mean + max) pooling.

The DNABERT-2 enhancer study named this its next step: convolutions learn short motifs from
bases cheaply, and the transformer relates them across the window. The front end replaces the
BPE token embeddings (a ``[B, L]`` base-code input becomes ``[B, L / p**k, C]`` motif
features, 1000 bases -> 16 positions with the default three blocks), a linear map and LayerNorm
take them to the encoder's width, and the encoder is :class:`enhscan.model.dnabert2.
DNABert2Encoder` itself. ALiBi needs no position embeddings, so windows of any width work.

The default front end is exactly the first three blocks of the ``cnn-deep`` CNN (128 channels,
widths 15, 9, 9, max-pool 4), so :func:`copy_front_end` can start it from a trained CNN, such
as one pretrained on a regulatory atlas: that CNN's motif detectors, and a transformer on top
that learns how they combine across the window.

It plugs into enhscan like the CNN: :class:`enhscan.model.cnn.NucleotideEncoder` codes the
bases, ``HybridClassifier(input_ids=ids, attention_mask=mask).logits`` takes padded batches,
and padding never changes a sequence's output (in eval mode): the front end zeroes padded
positions, the encoder masks padded keys, and the pooling reads real positions only.

Shapes: B = batch, L = sequence length in bases, L' = positions after the front end,
C = channels of a block, H = hidden size, M = num_labels.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from enhscan.model import cnn, dnabert2
from enhscan.model.config import NetworkConfig
from enhscan.model.dnabert2 import ClassifierOutput, DNABert2Config, DNABert2Encoder

__all__ = [
    "HybridConfig",
    "HybridClassifier",
    "MODEL_SIZES",
    "POOLINGS",
    "copy_front_end",
    "set_pooling",
]

#: How the encoder's positions become one vector: their mean, or their mean and their
#: maximum side by side (a motif that fires at one position survives the max; the CNN pools so).
POOLINGS = ("mean", "mean+max")

# Named model shapes for `HybridConfig.from_size`. "small" is the default config.
MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(
        channels=(16, 16),
        kernel_sizes=(9, 5),
        hidden_size=32,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=64,
    ),
    "small": dict(),
    # A deeper, wider encoder (4 layers of 256): 1.4 times the training time of "small" per
    # window and 3.0 M parameters (12 MB), for the compute curve's model-size axis and GPUs.
    "large": dict(
        hidden_size=256,
        num_hidden_layers=4,
        num_attention_heads=8,
        intermediate_size=512,
    ),
}

# The encoder fields of a DNABert2Config that a hybrid config carries under the same names.
_ENCODER_FIELDS = (
    "hidden_size",
    "num_hidden_layers",
    "num_attention_heads",
    "intermediate_size",
    "hidden_dropout_prob",
    "attention_probs_dropout_prob",
    "layer_norm_eps",
    "initializer_range",
)


class HybridConfig(NetworkConfig):
    """Configuration of a `HybridClassifier`; the defaults suit 1 kb windows.

    Args:
        channels, kernel_sizes: output channels and convolution width of each front-end block
            (:class:`enhscan.model.cnn.ConvBlock`; same length).
        pool_size: max-pool width and stride after each block.
        hidden_size, num_hidden_layers, num_attention_heads, intermediate_size,
        hidden_dropout_prob, attention_probs_dropout_prob, layer_norm_eps: the transformer
            encoder's, as in :class:`enhscan.model.dnabert2.DNABert2Config`.
        classifier_dropout: dropout before the output layer.
        pooling: one of :data:`POOLINGS` (folders written before it existed pool "mean").
        initializer_range: std of the normal init of convolution and linear weights.
        pad_token_id: the padding code (5, as `NucleotideEncoder` pads).
        kwargs: those of :class:`enhscan.model.config.NetworkConfig` (`num_labels`, ...).
    """

    model_type = "enhscan-hybrid"
    architecture = "HybridClassifier"
    FIELDS = (
        "channels",
        "kernel_sizes",
        "pool_size",
        "classifier_dropout",
        "pooling",
        *_ENCODER_FIELDS,
    )

    def __init__(
        self,
        channels: Sequence[int] = (128, 128, 128),
        kernel_sizes: Sequence[int] = (15, 9, 9),
        pool_size: int = 4,
        hidden_size: int = 192,
        num_hidden_layers: int = 2,
        num_attention_heads: int = 4,
        intermediate_size: int = 384,
        hidden_dropout_prob: float = 0.1,
        attention_probs_dropout_prob: float = 0.0,
        classifier_dropout: float = 0.2,
        pooling: str = "mean",
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        pad_token_id: int | None = cnn.PAD_CODE,
        **kwargs,
    ):
        channels, kernel_sizes = list(channels), list(kernel_sizes)  # lists, as JSON gives back
        if not channels or len(channels) != len(kernel_sizes):
            raise ValueError(
                f"channels ({channels}) and kernel_sizes ({kernel_sizes}) must be non-empty and "
                "of the same length"
            )
        if min(channels) < 1 or min(kernel_sizes) < 1 or pool_size < 1:
            raise ValueError("channels, kernel sizes and pool_size must be >= 1")
        if not 0.0 <= classifier_dropout < 1.0:
            raise ValueError(f"classifier_dropout must be in [0, 1), got {classifier_dropout}")
        if pooling not in POOLINGS:
            raise ValueError(f"pooling must be one of {POOLINGS}, got {pooling!r}")
        self.channels = channels
        self.pooling = pooling
        self.kernel_sizes = kernel_sizes
        self.pool_size = pool_size
        self.classifier_dropout = classifier_dropout
        self.hidden_size = hidden_size
        self.num_hidden_layers = num_hidden_layers
        self.num_attention_heads = num_attention_heads
        self.intermediate_size = intermediate_size
        self.hidden_dropout_prob = hidden_dropout_prob
        self.attention_probs_dropout_prob = attention_probs_dropout_prob
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if self.num_labels < 1:
            raise ValueError(f"num_labels must be >= 1, got {self.num_labels}")
        self.encoder_config()  # refuses a hidden size the heads do not divide

    def encoder_config(self) -> DNABert2Config:
        """The DNABERT-2 config of the transformer part (no vocabulary: no token embeddings)."""
        fields = {name: getattr(self, name) for name in _ENCODER_FIELDS}
        return DNABert2Config(vocab_size=1, pooling="mean", **fields)

    @classmethod
    def from_size(cls, name: str, **overrides) -> HybridConfig:
        """Config for a named shape (a key of `MODEL_SIZES`); `overrides` win over the preset."""
        if name not in MODEL_SIZES:
            raise ValueError(f"unknown hybrid size {name!r}; choose one of {sorted(MODEL_SIZES)}")
        return cls(**{**MODEL_SIZES[name], **overrides})


class ConvFrontEnd(nn.Module):
    """One-hot bases through convolution blocks, keeping every position (no global pooling).

    Its ``blocks`` are those of :class:`enhscan.model.cnn.CNNBackbone`, so the CNN's gradient
    x input (a hook on the first block's input) works unchanged.
    """

    def __init__(self, config: HybridConfig):
        super().__init__()
        widths = [4] + list(config.channels)
        self.blocks = nn.ModuleList(
            cnn.ConvBlock(c_in, c_out, k, config.pool_size)
            for c_in, c_out, k in zip(widths[:-1], widths[1:], config.kernel_sizes, strict=True)
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        """input_ids: int64 [B, L] codes; attention_mask: [B, L] or None (all real) ->
        (features [B, C_last, L'] zero at padded positions, their mask [B, 1, L'])."""
        return cnn.run_blocks(self.blocks, input_ids, attention_mask)


@torch.no_grad()
def init_weights(module: nn.Module, std: float) -> None:
    """The CNN's init for convolutions, BatchNorm and Linear layers; BERT's for LayerNorm."""
    if isinstance(module, nn.LayerNorm):
        dnabert2.init_weights(module, std)
    else:
        cnn.init_weights(module, std)


class HybridClassifier(nn.Module):
    """Front end -> Linear + LayerNorm to H -> DNABERT-2 encoder -> masked mean (and max) ->
    tanh(Linear) -> Dropout -> Linear to M logits."""

    def __init__(self, config: HybridConfig):
        super().__init__()
        self.config = config
        self.num_labels = config.num_labels
        self.cnn = ConvFrontEnd(config)
        self.project = nn.Linear(config.channels[-1], config.hidden_size)
        self.norm = nn.LayerNorm(config.hidden_size, eps=config.layer_norm_eps)
        self.encoder = DNABert2Encoder(config.encoder_config())
        self.pooler = _pooler(config)
        self.dropout = nn.Dropout(config.classifier_dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)
        self.apply(lambda module: init_weights(module, config.initializer_range))

    def embed(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Last encoder hidden states [B, L', H]; positions past a sequence's end hold
        meaningless values."""
        return self._encode(input_ids, attention_mask)[0]

    def _encode(self, input_ids: Tensor, attention_mask: Tensor | None) -> tuple[Tensor, Tensor]:
        x, mask = self.cnn(input_ids, attention_mask)
        real = mask[:, 0] > 0  # [B, L']: a position that saw at least one real base
        h = self.norm(self.project(x.transpose(1, 2)))
        # No mask when nothing is padded: one shared ALiBi bias instead of B copies.
        h = self.encoder(h, None if attention_mask is None else real)
        return h, real

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> ClassifierOutput:
        """Classify a batch.

        Args:
            input_ids: int64 [B, L] base codes (`NucleotideEncoder`), right-padded.
            attention_mask: [B, L] bool or 0/1, 1 on real bases (None: nothing is padded).
            labels: optional int64 [B] class ids, for a cross-entropy loss (multi-task
                training computes its own loss from the logits).
        Returns:
            ClassifierOutput with logits [B, M] (parameter or autocast dtype) and a float32
            scalar loss if labels were given.
        """
        h, real = self._encode(input_ids, attention_mask)
        pooled = pool(h, real, self.config.pooling)
        logits = self.classifier(self.dropout(torch.tanh(self.pooler(pooled))))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.view(-1))
        return ClassifierOutput(logits=logits, loss=loss)


def pool(h: Tensor, real: Tensor, pooling: str) -> Tensor:
    """h: [B, L', H] hidden states; real: bool [B, L'], True at positions that saw a real base
    -> [B, H] ("mean") or [B, 2H] ("mean+max": the mean, then the maximum), over real positions
    only (a row without any gives zeros)."""
    weights = real.to(h.dtype).unsqueeze(-1)  # [B, L', 1]
    mean = (h * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1)
    if pooling == "mean":
        return mean
    lowest = torch.finfo(h.dtype).min
    top = h.masked_fill(~real.unsqueeze(-1), lowest).amax(dim=1)
    top = top.masked_fill(~real.any(dim=1, keepdim=True), 0.0)  # no real position: 0, not -inf
    return torch.cat([mean, top], dim=-1)


def _pooler(config: HybridConfig) -> nn.Linear:
    widths = 2 if config.pooling == "mean+max" else 1
    return nn.Linear(widths * config.hidden_size, config.hidden_size)


def set_pooling(hybrid: HybridClassifier, pooling: str) -> None:
    """Make ``hybrid`` pool ``pooling`` (one of :data:`POOLINGS`); a change of width gives it a
    new, freshly initialised pooler layer (to be trained: the output layer reads it)."""
    if pooling not in POOLINGS:
        raise ValueError(f"the hybrid pools {' or '.join(POOLINGS)}, not {pooling!r}")
    if pooling == hybrid.config.pooling:
        return
    hybrid.config.pooling = pooling
    old = hybrid.pooler
    hybrid.pooler = _pooler(hybrid.config).to(device=old.weight.device, dtype=old.weight.dtype)
    init_weights(hybrid.pooler, hybrid.config.initializer_range)


def copy_front_end(hybrid: HybridClassifier, cnn_network: nn.Module) -> int:
    """Copy a CNN's convolution blocks (weights and BatchNorm statistics) into ``hybrid``'s
    front end, block for block; returns how many blocks were copied.

    Raises:
        ValueError: the CNN has fewer blocks than the front end, or a block of another shape.
    """
    ours, theirs = hybrid.cnn.blocks, cnn_network.cnn.blocks
    if len(theirs) < len(ours):
        raise ValueError(f"the CNN has {len(theirs)} blocks, the front end {len(ours)}")
    for i, (mine, source) in enumerate(zip(ours, theirs, strict=False)):
        want, have = mine.conv.weight.shape, source.conv.weight.shape
        if want != have or mine.pool.kernel_size != source.pool.kernel_size:
            raise ValueError(f"block {i + 1} is {tuple(have)} in the CNN, {tuple(want)} here")
        mine.load_state_dict(source.state_dict())
    return len(ours)
