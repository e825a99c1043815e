"""Any local transformers sequence-classification folder whose tokenizer reads DNA (a
Nucleotide Transformer fine-tune, say): loaded with the Auto classes, never with remote code.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError


class HfTokenizerEncoder:
    """Encodes DNA strings with the folder's own transformers tokenizer (special tokens as the
    tokenizer adds them)."""

    def __init__(self, tokenizer):
        if tokenizer.pad_token_id is None:
            raise EnhscanError(
                "the folder's tokenizer has no padding token; set pad_token in its "
                "tokenizer_config.json"
            )
        self.tokenizer = tokenizer
        self.pad_id = tokenizer.pad_token_id
        self.vocab_size = len(tokenizer)
        self.special_ids = sorted(set(tokenizer.all_special_ids))
        self.mask_id = tokenizer.mask_token_id

    def encode(self, seqs: Sequence[str]) -> list[np.ndarray]:
        """Token ids of each sequence: int64 arrays."""
        ids = self.tokenizer(list(seqs), add_special_tokens=True)["input_ids"]
        return [np.asarray(i, dtype=np.int64) for i in ids]

    def save(self, folder: Path) -> None:
        self.tokenizer.save_pretrained(str(folder))


def load_hf_folder(path: Path, num_labels: int):
    """(network, encoder) of a transformers folder, from local files only."""
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        network = AutoModelForSequenceClassification.from_pretrained(
            str(path), local_files_only=True, num_labels=num_labels
        )
    except (OSError, ValueError, KeyError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise EnhscanError(
            f"{path} does not load as a transformers sequence classifier with its tokenizer "
            f"({first}); enhscan runs no code from model folders (trust_remote_code)"
        ) from None
    return network, HfTokenizerEncoder(tokenizer)
