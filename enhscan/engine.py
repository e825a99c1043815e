"""The engine: feeds windows of sequence through a classifier and returns their scores.

It knows nothing of genomes or files: sequences in, probabilities out. Windows are tokenized,
sorted by token count so each batch pads little, scored in batches and put back in order, so
a window's score does not depend on what it was batched with.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from contextlib import nullcontext

import numpy as np
import torch

from enhscan.errors import EnhscanError
from enhscan.model.encoding import pad_batch
from enhscan.model.folder import Classifier

log = logging.getLogger(__name__)

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def resolve_device(device: str) -> torch.device:
    """``auto`` -> the first CUDA GPU if there is one, else the CPU; else parse ``device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise EnhscanError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise EnhscanError(
            "--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu"
        )
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bf16 on a GPU that supports it (else fp16), fp32 on the CPU."""
    if dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DTYPES[dtype]


def default_batch_size(device: torch.device) -> int:
    """Windows per forward pass: 32 on the CPU, where small batches stay in cache (measured
    about 25% faster than 64 with the default model on 2 cores), 128 on a GPU."""
    return 128 if device.type == "cuda" else 32


class WindowScorer:
    """Scores DNA windows with a :class:`~enhscan.model.folder.Classifier`.

    Args:
        classifier: the loaded model (moved to ``device`` here).
        device: torch device.
        dtype: compute dtype; fp16/bf16 run under autocast with fp32 weights.
        batch_size: windows per forward pass; None picks :func:`default_batch_size`.
    """

    def __init__(
        self,
        classifier: Classifier,
        device: torch.device | str = "cpu",
        dtype: torch.dtype = torch.float32,
        batch_size: int | None = None,
    ):
        if batch_size is None:
            batch_size = default_batch_size(torch.device(device))
        if batch_size <= 0:
            raise ValueError("batch_size must be positive")
        self.classifier = classifier
        self.device = torch.device(device)
        self.dtype = dtype
        self.batch_size = batch_size
        self.network = classifier.network.to(self.device).eval()

    def _autocast(self):
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def score(self, seqs: Sequence[str]) -> np.ndarray:
        """Enhancer probability of each sequence.

        Args:
            seqs: upper-case DNA strings (any length; normally one window each).

        Returns:
            float32 [len(seqs)], in the order given.
        """
        if len(seqs) == 0:
            return np.empty(0, dtype=np.float32)
        return self.score_encoded(self.classifier.encoder.encode(seqs))

    def score_encoded(self, encoded: Sequence[np.ndarray]) -> np.ndarray:
        """Like :meth:`score`, for sequences already encoded (int64 token id arrays)."""
        order = np.argsort([len(e) for e in encoded], kind="stable")
        scores = np.empty(len(encoded), dtype=np.float32)
        pad_id = self.classifier.encoder.pad_id
        was_training = self.network.training
        self.network.eval()
        with torch.inference_mode(), self._autocast():
            for i in range(0, len(order), self.batch_size):
                rows = order[i : i + self.batch_size]
                ids, mask = pad_batch([encoded[r] for r in rows], pad_id)
                probs = self.classifier.score_tokens(
                    torch.from_numpy(ids).to(self.device), torch.from_numpy(mask).to(self.device)
                )
                scores[rows] = probs.float().cpu().numpy()
        self.network.train(was_training)
        return scores
