"""Gradient x input: a per-base attribution from one forward and one backward pass, the fast
approximation of in-silico mutagenesis (:mod:`enhscan.attribution`). Each family offers it
through its registry entry (:mod:`enhscan.model.families`):

- the CNN: the gradient of the score with respect to its one-hot input, times the input (so
  the gradient at the base that is there);
- DNABERT-2: the gradient with respect to each token's embedding, times the embedding, summed
  over the hidden units; a token's value is shared evenly among the bases it covers (BPE
  tokens cover 1 to about 12 bases).

The score is what the engine scores: the positive class's softmax probability for a
classifier, a task's sigmoid for a multi-task model.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

#: logits [1, labels] -> the score, a scalar tensor.
ScoreOf = Callable[[torch.Tensor], torch.Tensor]


def cnn_gradients(network: torch.nn.Module, encoder, seq: str, score_of: ScoreOf) -> np.ndarray:
    """Gradient x input of a CNN for one sequence: float32 [len(seq)]."""
    captured = {}

    def take_input(module, args):
        x = args[0].detach().requires_grad_(True)
        captured["x"] = x
        return (x, *args[1:])

    handle = network.cnn.blocks[0].register_forward_pre_hook(take_input)
    try:
        score_of(network(input_ids=_ids(network, encoder, seq)).logits).backward()
    finally:
        handle.remove()
    x = captured["x"]
    return (x.grad * x).sum(dim=1)[0].detach().float().cpu().numpy()


def dnabert2_gradients(
    network: torch.nn.Module, encoder, seq: str, score_of: ScoreOf
) -> np.ndarray:
    """Gradient x input of a DNABERT-2 network for one sequence, through the token
    embeddings, spread over the bases: float32 [len(seq)]."""
    captured = {}

    def keep_output(module, args, output):
        output.retain_grad()
        captured["e"] = output

    handle = network.bert.embeddings.word_embeddings.register_forward_hook(keep_output)
    try:
        score_of(network(input_ids=_ids(network, encoder, seq)).logits).backward()
    finally:
        handle.remove()
    e = captured["e"]
    per_token = (e.grad * e).sum(dim=-1)[0].detach().float().cpu().numpy()
    per_base = np.zeros(len(seq), dtype=np.float32)
    for value, (start, end) in zip(per_token, encoder.token_spans(seq), strict=True):
        if end > start:
            per_base[start:end] += value / (end - start)
    return per_base


def _ids(network: torch.nn.Module, encoder, seq: str) -> torch.Tensor:
    """int64 [1, L] token ids of ``seq`` on the network's device."""
    device = next(network.parameters()).device
    return torch.from_numpy(encoder.encode([seq])[0])[None].to(device)
