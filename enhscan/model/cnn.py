"""A convolutional enhancer classifier on one-hot DNA: the CNN baseline family.

In the spirit of the "EnhancerNet" baseline the DNABERT-2 enhancer study compared against:
one-hot bases, a stack of convolution + pooling blocks, global pooling, two dense layers and a
two-class output. It plugs into enhscan exactly like the DNABERT-2 classifier:
`NucleotideEncoder` has the encoder interface of `enhscan.model.encoding.BpeEncoder`, and
`EnhancerCNN(input_ids=ids, attention_mask=mask).logits` takes the batches
`enhscan.model.encoding.pad_batch` builds.

Padding never changes a sequence's output (in eval mode): padded positions are zeroed before
every convolution and pooling, and the global pooling only looks at real positions.

Shapes: B = batch, L = sequence length in bases, C = channels of a block, p = pool size,
M = num_labels.
"""

from collections.abc import Sequence
from types import ModuleType

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from enhscan.model.config import NetworkConfig
from enhscan.model.dnabert2 import ClassifierOutput

__all__ = [
    "NucleotideEncoder",
    "CNNConfig",
    "EnhancerCNN",
    "one_hot",
    "run_blocks",
    "N_CODE",
    "PAD_CODE",
]

N_CODE = 4  # N and every other non-ACGT character
PAD_CODE = 5

# byte -> code; lower-case bases map like upper-case ones, every other byte to N_CODE
_CODE_TABLE = np.full(256, N_CODE, dtype=np.int64)
for _code, _base in enumerate("ACGT"):
    _CODE_TABLE[ord(_base)] = _CODE_TABLE[ord(_base.lower())] = _code

# Named model shapes for `CNNConfig.from_size`. "base" is the default config.
MODEL_SIZES: dict[str, dict] = {
    "tiny": dict(channels=(16, 16), kernel_sizes=(9, 5), hidden_size=16),
    "base": dict(),
    # A fourth block: a receptive field of about 1 kb at the last block (1000 -> 4 positions).
    # On the REMO atlas it reached held-out chrX "any" ROC-AUC 0.751 where "base" reached
    # 0.743 (20,000 windows, 4 epochs).
    "deep": dict(channels=(128, 128, 128, 128), kernel_sizes=(15, 9, 9, 9)),
}


# -----------------------------------------------------------------------------
# Encoder


class NucleotideEncoder:
    """Encodes DNA strings to one code per base: A=0 C=1 G=2 T=3, anything else (N, IUPAC) 4.

    Duck-types `BpeEncoder` for the scanning engine: no [CLS] / [SEP] (`cls_id` and `sep_id`
    are None), batches are right-padded with `pad_id` = 5. Holds plain attributes only, so it
    pickles as is.
    """

    def __init__(self):
        self.pad_id = PAD_CODE
        self.vocab_size = PAD_CODE + 1
        self.cls_id = None
        self.sep_id = None

    def encode(self, seqs: Sequence[str]) -> list[np.ndarray]:
        """Codes of each sequence: int64 arrays [len(seq)] (case-insensitive)."""
        # "replace" turns each non-ASCII character into one "?" byte, so lengths are kept.
        return [
            _CODE_TABLE[np.frombuffer(s.encode("ascii", "replace"), dtype=np.uint8)] for s in seqs
        ]


# -----------------------------------------------------------------------------
# Config


class CNNConfig(NetworkConfig):
    """Configuration of an `EnhancerCNN`; the defaults suit 1 kb windows.

    Args:
        channels: output channels of each convolution block.
        kernel_sizes: convolution width of each block (same length as `channels`).
        pool_size: max-pool width and stride after each block (each block divides L by it).
        hidden_size: width of the dense layer between global pooling and the output.
        dropout: dropout before the output layer.
        initializer_range: std of the normal init of convolution and linear weights.
        pad_token_id: the padding code (5, as `NucleotideEncoder` pads).
        kwargs: those of :class:`enhscan.model.config.NetworkConfig`, e.g. `num_labels`
            (default 2, at least 2). A `model_type` key is dropped (always "enhscan-cnn").
    """

    model_type = "enhscan-cnn"
    architecture = "EnhancerCNN"
    FIELDS = (
        "channels",
        "kernel_sizes",
        "pool_size",
        "hidden_size",
        "dropout",
        "initializer_range",
    )

    def __init__(
        self,
        channels: Sequence[int] = (128, 128, 128),
        kernel_sizes: Sequence[int] = (15, 9, 9),
        pool_size: int = 4,
        hidden_size: int = 128,
        dropout: float = 0.2,
        initializer_range: float = 0.02,
        pad_token_id: int | None = PAD_CODE,
        **kwargs,
    ):
        channels, kernel_sizes = list(channels), list(kernel_sizes)  # lists, as JSON gives back
        if not channels or len(channels) != len(kernel_sizes):
            raise ValueError(
                f"channels ({channels}) and kernel_sizes ({kernel_sizes}) must be non-empty and "
                "of the same length"
            )
        if min(channels) < 1 or min(kernel_sizes) < 1 or pool_size < 1 or hidden_size < 1:
            raise ValueError("channels, kernel sizes, pool_size and hidden_size must be >= 1")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout}")
        self.channels = channels
        self.kernel_sizes = kernel_sizes
        self.pool_size = pool_size
        self.hidden_size = hidden_size
        self.dropout = dropout
        self.initializer_range = initializer_range
        super().__init__(pad_token_id=pad_token_id, **kwargs)
        if self.num_labels < 2:
            raise ValueError(f"num_labels must be >= 2 (cross-entropy), got {self.num_labels}")

    @classmethod
    def from_size(cls, name: str, **overrides) -> "CNNConfig":
        """Config for a named shape ("tiny", "base"); `overrides` win over the preset."""
        if name not in MODEL_SIZES:
            raise ValueError(f"unknown CNN size {name!r}; choose one of {sorted(MODEL_SIZES)}")
        return cls(**{**MODEL_SIZES[name], **overrides})


# -----------------------------------------------------------------------------
# Modules


def one_hot(input_ids: Tensor, dtype: torch.dtype = torch.float32) -> Tensor:
    """One-hot bases, channels first.

    input_ids: int64 [B, L] codes -> [B, 4, L] of `dtype`. Codes 0-3 give unit vectors; every
    other code (N = 4, pad = 5) gives the zero vector.
    """
    bases = torch.arange(4, device=input_ids.device)
    return (input_ids[:, None, :] == bases[None, :, None]).to(dtype)


class ConvBlock(nn.Module):
    """Conv1d (same padding) -> BatchNorm1d -> ReLU -> zero padded positions -> MaxPool1d."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, pool_size: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, kernel_size, padding="same")
        self.norm = nn.BatchNorm1d(out_channels)
        # ceil_mode: a trailing partial window still gives an output, so short inputs survive
        # and a sequence's own length decides how many outputs it has, padded or not.
        self.pool = nn.MaxPool1d(pool_size, ceil_mode=True)

    def forward(self, x: Tensor, mask: Tensor) -> tuple[Tensor, Tensor]:
        """x: float [B, C_in, L] zero at padded positions; mask: float [B, 1, L], 1 on real
        positions -> (x [B, C_out, ceil(L / p)] zero at padded positions, its mask)."""
        x = F.relu(self.norm(self.conv(x)))
        # Padded positions hold activations computed from padding. Zeroing them makes the next
        # convolution see what a lone sequence's zero padding gives, and since x >= 0 after the
        # ReLU they can never win the max of a window that holds a real position.
        x = x * mask.to(x.dtype)
        return self.pool(x), self.pool(mask)


def run_blocks(
    blocks: nn.ModuleList, input_ids: Tensor, attention_mask: Tensor | None
) -> tuple[Tensor, Tensor]:
    """One-hot bases through ``ConvBlock``s.

    input_ids: int64 [B, L] codes; attention_mask: [B, L] bool or 0/1, or None (all real) ->
    (features [B, C_last, L'] zero at padded positions, in the parameter dtype; their mask
    [B, 1, L'], 1 where a position saw a real base).
    """
    dtype = blocks[0].conv.weight.dtype
    if attention_mask is None:
        mask = torch.ones(input_ids.shape[0], 1, input_ids.shape[1], device=input_ids.device)
    else:
        mask = attention_mask[:, None, :].float()
    mask = mask.to(dtype)
    x = one_hot(input_ids, dtype) * mask
    for block in blocks:
        x, mask = block(x, mask)
    return x, mask


class CNNBackbone(nn.Module):
    """One-hot input, convolution blocks and masked global max + mean pooling."""

    def __init__(self, config: CNNConfig):
        super().__init__()
        widths = [4] + list(config.channels)
        self.blocks = nn.ModuleList(
            ConvBlock(c_in, c_out, k, config.pool_size)
            for c_in, c_out, k in zip(widths[:-1], widths[1:], config.kernel_sizes, strict=True)
        )

    def forward(self, input_ids: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Pooled features of a batch.

        Args:
            input_ids: int64 [B, L] base codes, right-padded (any L >= 1).
            attention_mask: [B, L] bool or 0/1, 1 on real bases; all ones when None.
        Returns:
            [B, 2 * C_last]: global max then mean over the real positions of the last block, in
            the parameter dtype (or the autocast dtype); zeros for a row with no real position.
        """
        x, mask = run_blocks(self.blocks, input_ids, attention_mask)
        # Padded positions are 0 and real ones >= 0, so a plain max is the max over real ones.
        x_max = x.amax(dim=-1)
        x_mean = x.sum(dim=-1) / mask.sum(dim=-1).clamp_min(1).to(x.dtype)
        return torch.cat([x_max, x_mean], dim=-1)


# -----------------------------------------------------------------------------
# Classifier


@torch.no_grad()
def init_weights(module: nn.Module, std: float, init: ModuleType = nn.init) -> None:
    """Initialise one module: normal(0, std) convolution and linear weights, zero biases,
    identity BatchNorm. ``init`` is torch's namespace of init functions or transformers'."""
    if isinstance(module, (nn.Linear, nn.Conv1d)):
        init.normal_(module.weight, mean=0.0, std=std)
        if module.bias is not None:
            init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm1d):
        init.ones_(module.weight)
        init.zeros_(module.bias)
        # transformers 5 may build the model on the meta device: buffers need an init too.
        init.zeros_(module.running_mean)
        init.ones_(module.running_var)
        init.zeros_(module.num_batches_tracked)


class EnhancerCNN(nn.Module):
    """CNN enhancer classifier: `CNNBackbone` -> Linear -> ReLU -> Dropout -> Linear.

    In training mode BatchNorm statistics include padded positions; enhscan trains on
    fixed-width windows, where there are none.
    """

    def __init__(self, config: CNNConfig):
        super().__init__()
        self.config = config
        self.add_modules(config)
        self.apply(lambda module: init_weights(module, config.initializer_range))

    def add_modules(self, config: CNNConfig) -> None:
        """Create the submodules (shared with the transformers wrapper, which inits them)."""
        self.num_labels = config.num_labels
        self.cnn = CNNBackbone(config)
        self.dense = nn.Linear(2 * config.channels[-1], config.hidden_size)
        self.dropout = nn.Dropout(config.dropout)
        self.classifier = nn.Linear(config.hidden_size, config.num_labels)

    def forward(
        self,
        input_ids: Tensor,
        attention_mask: Tensor | None = None,
        labels: Tensor | None = None,
    ) -> ClassifierOutput:
        """Classify a batch.

        Args:
            input_ids: int64 [B, L] base codes (`NucleotideEncoder`), right-padded.
            attention_mask: [B, L] bool or 0/1, 1 on real bases (default all ones).
            labels: optional int64 [B] class ids, for a cross-entropy loss.
        Returns:
            ClassifierOutput with logits [B, M] (parameter or autocast dtype) and a float32
            scalar loss if labels were given.
        """
        features = self.cnn(input_ids, attention_mask)
        logits = self.classifier(self.dropout(F.relu(self.dense(features))))
        loss = None
        if labels is not None:
            loss = F.cross_entropy(logits.float(), labels.view(-1))
        return ClassifierOutput(logits=logits, loss=loss)
