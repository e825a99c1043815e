"""DNABERT (the first one): a BERT classifier over overlapping k-mer tokens, k = 3..6.

A DNABERT folder holds a transformers BERT (``config.json`` with ``model_type: bert``, weights)
and a ``vocab.txt`` of the special tokens and the 4^k k-mers. DNABERT tokenizes a sequence
as its overlapping k-mers (``ACGTA``, k = 3: ``ACG CGT GTA``) between [CLS] and [SEP];
:class:`KmerEncoder` does the same with numpy, any k-mer holding a base other than A, C, G, T
becoming [UNK]. BERT's 512 positions limit a window to 509 + k bases.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import numpy as np

from enhscan.errors import EnhscanError

SPECIAL_TOKENS = ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]")
KMER_SIZES = (3, 4, 5, 6)

#: Model shapes for new DNABERT models; "base" is DNABERT's own.
SIZES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=128),
    "small": dict(
        hidden_size=256, num_hidden_layers=4, num_attention_heads=4, intermediate_size=1024
    ),
    "base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}

# byte -> base code: A C G T = 0..3 (either case), anything else -1
_CODES = np.full(256, -1, dtype=np.int64)
for _i, _b in enumerate("ACGT"):
    _CODES[ord(_b)] = _CODES[ord(_b.lower())] = _i


def kmer_vocab(k: int) -> str:
    """The text of a DNABERT ``vocab.txt`` for ``k``: special tokens, then every k-mer."""
    if k not in KMER_SIZES:
        raise EnhscanError(f"k must be one of {KMER_SIZES} (DNABERT's k-mer sizes), got {k}")
    kmers = ("".join(p) for p in itertools.product("ACGT", repeat=k))
    return "\n".join([*SPECIAL_TOKENS, *kmers]) + "\n"


def max_window(k: int, max_positions: int = 512) -> int:
    """The longest window a DNABERT model with ``max_positions`` positions can read."""
    return max_positions - 2 + k - 1


class KmerEncoder:
    """Encodes DNA strings to DNABERT token ids: [CLS], the overlapping k-mers, [SEP].

    Args:
        vocab_text: the contents of a DNABERT ``vocab.txt`` (one token per line, id = line).
    """

    def __init__(self, vocab_text: str):
        tokens = [line.strip() for line in vocab_text.splitlines() if line.strip()]
        vocab = {token: i for i, token in enumerate(tokens)}
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]") if t not in vocab]
        kmers = [t for t in tokens if t not in SPECIAL_TOKENS]
        sizes = {len(t) for t in kmers}
        if missing or len(sizes) != 1 or not all(set(t) <= set("ACGT") for t in kmers):
            raise EnhscanError(
                "not a DNABERT k-mer vocab.txt (it needs [PAD], [UNK], [CLS], [SEP] and k-mers "
                "of one length over ACGT)"
            )
        self.k = sizes.pop()
        self.vocab_text = vocab_text
        self.pad_id, self.unk_id = vocab["[PAD]"], vocab["[UNK]"]
        self.cls_id, self.sep_id = vocab["[CLS]"], vocab["[SEP]"]
        self.mask_id = vocab.get("[MASK]")
        self.special_ids = sorted(vocab[t] for t in SPECIAL_TOKENS if t in vocab)
        self.vocab_size = len(tokens)
        # k-mer as a base-4 number -> token id ([UNK] for k-mers the vocab lacks)
        self._lookup = np.full(4**self.k, self.unk_id, dtype=np.int64)
        weights = 4 ** np.arange(self.k - 1, -1, -1)
        for token in kmers:
            self._lookup[int(_CODES[np.frombuffer(token.encode(), dtype=np.uint8)] @ weights)] = (
                vocab[token]
            )
        self._weights = weights

    def __getstate__(self) -> dict:
        return {"vocab_text": self.vocab_text}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["vocab_text"])

    def encode(self, seqs: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each sequence, [CLS] and [SEP] included: int64 arrays [len - k + 3]."""
        out = []
        for seq in seqs:
            codes = _CODES[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
            n = len(codes) - self.k + 1
            ids = np.empty(max(n, 0) + 2, dtype=np.int64)
            ids[0], ids[-1] = self.cls_id, self.sep_id
            if n > 0:
                windows = np.lib.stride_tricks.sliding_window_view(codes, self.k)
                body = self._lookup[np.clip(windows, 0, 3) @ self._weights]
                body[(windows < 0).any(axis=1)] = self.unk_id
                ids[1:-1] = body
            out.append(ids)
        return out


def new_dnabert_network(vocab_size: int, pad_id: int, size: str = "small", **overrides):
    """A transformers ``BertForSequenceClassification`` of a DNABERT shape, random weights."""
    from transformers import BertConfig, BertForSequenceClassification

    if size not in SIZES:
        raise EnhscanError(f"unknown DNABERT size {size!r}; choose one of {sorted(SIZES)}")
    config = BertConfig(
        vocab_size=vocab_size,
        pad_token_id=pad_id,
        max_position_embeddings=512,
        num_labels=2,
        **{**SIZES[size], **overrides},
    )
    return BertForSequenceClassification(config)
