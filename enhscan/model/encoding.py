"""Turning DNA into model input: BPE token ids (DNABERT-2 family) and padded batches."""

from __future__ import annotations

from collections.abc import Sequence
from importlib import resources
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError

SPECIAL_TOKENS = ("[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]")


def default_tokenizer_json() -> str:
    """The DNABERT-2 BPE tokenizer shipped with enhscan (4096 tokens), as JSON text."""
    return resources.files("enhscan.data").joinpath("dnabert2_tokenizer.json").read_text()


class BpeEncoder:
    """Encodes upper-case DNA strings to token ids with a ``tokenizers`` BPE tokenizer.

    Every sequence becomes ``[CLS] tokens... [SEP]``, added here rather than by the
    tokenizer's post-processor so a tokenizer trained without one works the same. Bases the
    vocabulary lacks (N, IUPAC codes) become ``[UNK]``.

    Instances pickle as their JSON text, so they can be sent to worker processes.
    """

    def __init__(self, tokenizer_json: str):
        from tokenizers import Tokenizer

        self.tokenizer_json = tokenizer_json
        try:
            self._tokenizer = Tokenizer.from_str(tokenizer_json)
        except Exception as err:  # tokenizers raises a bare Exception on bad JSON
            raise EnhscanError(f"not a valid tokenizer.json ({err})") from None
        self._tokenizer.no_padding()
        self._tokenizer.no_truncation()
        vocab = self._tokenizer.get_vocab()
        missing = [t for t in ("[CLS]", "[SEP]", "[PAD]") if t not in vocab]
        if missing:
            raise EnhscanError(
                f"the tokenizer lacks the special tokens {', '.join(missing)}; use a DNABERT-2 "
                "style tokenizer.json"
            )
        self.special_ids = sorted(vocab[t] for t in SPECIAL_TOKENS if t in vocab)
        self.mask_id = vocab.get("[MASK]")
        self.cls_id = vocab["[CLS]"]
        self.sep_id = vocab["[SEP]"]
        self.pad_id = vocab["[PAD]"]
        self.vocab_size = self._tokenizer.get_vocab_size()

    @classmethod
    def from_file(cls, path: str | Path) -> BpeEncoder:
        """Read a ``tokenizer.json`` file."""
        return cls(Path(path).read_text())

    def __getstate__(self) -> dict:
        return {"tokenizer_json": self.tokenizer_json}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["tokenizer_json"])

    def token_spans(self, seq: str) -> list[tuple[int, int]]:
        """The bases ``[start, end)`` of ``seq`` each token of :meth:`encode` covers, in token
        order; ``(0, 0)`` for ``[CLS]`` and ``[SEP]``."""
        enc = self._tokenizer.encode(seq, add_special_tokens=False)
        return [(0, 0), *(tuple(o) for o in enc.offsets), (0, 0)]

    def encode(self, seqs: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each sequence, ``[CLS]`` and ``[SEP]`` included: int64 arrays [L_i]."""
        encodings = self._tokenizer.encode_batch(list(seqs), add_special_tokens=False)
        out = []
        for enc in encodings:
            ids = np.empty(len(enc.ids) + 2, dtype=np.int64)
            ids[0], ids[-1] = self.cls_id, self.sep_id
            ids[1:-1] = enc.ids
            out.append(ids)
        return out


def pad_batch(encoded: Sequence[np.ndarray], pad_id: int) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad token id arrays into a batch.

    Returns:
        ids: int64 [B, L], L the longest sequence; padding is ``pad_id``.
        mask: bool [B, L], True on real tokens.
    """
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    width = int(lengths.max()) if len(lengths) else 0
    ids = np.full((len(encoded), width), pad_id, dtype=np.int64)
    for row, e in enumerate(encoded):
        ids[row, : len(e)] = e
    mask = np.arange(width)[None, :] < lengths[:, None]
    return ids, mask
