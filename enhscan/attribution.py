"""Per-base attributions by in-silico saturation mutagenesis (ISM): which bases of a window
make its score.

Every base of the window is changed to each of the three other bases, and each edited window
is scored through the engine (batched by token length, as a scan is). For a window x with
score f(x) and the edited windows x[i -> b]:

- ``scores[i, b]`` is f(x[i -> b]) (NaN where b is the base already there);
- the attribution of base i is ``f(x) - mean_b f(x[i -> b])`` over its three alternatives:
  how much the score drops, on average, when that base is changed. Positive: the base
  supports the score; negative: it holds the score down.

This keeps the sign, as the question "which bases make a call?" needs. tangermeme's
``saturation_mutagenesis`` aggregates the same edited predictions differently (by default an
unsigned distance from the reference prediction, z-scored over the example); its
``raw_outputs=True`` gives exactly f(x) and the f(x[i -> b]) used here. A base other than
A, C, G or T (N) is changed to each of the four.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BASES = "ACGT"


@dataclass(frozen=True)
class Attribution:
    """The ISM of one window.

    Attributes:
        seq: the window (upper case).
        score: f(x), the window's score.
        scores: float32 [len, 4]: f of the window with base i changed to A, C, G, T (columns
            in that order); NaN where that is the base already there.
        attribution: float32 [len]: f(x) minus the mean of row i's scores.
    """

    seq: str
    score: float
    scores: np.ndarray
    attribution: np.ndarray


def edits(seq: str) -> list[tuple[int, str]]:
    """Every single-base substitution of ``seq``: ``(position, new base)``, position-major,
    new bases in A, C, G, T order."""
    return [(i, b) for i, base in enumerate(seq) for b in BASES if b != base]


def edited(seq: str, changes: Sequence[tuple[int, str]]) -> list[str]:
    """``seq`` with each one of ``changes`` made (one window per change)."""
    return [seq[:i] + b + seq[i + 1 :] for i, b in changes]


def ism(scorer, seqs: Sequence[str], rc: str | None = None) -> list[Attribution]:
    """The ISM of each window of ``seqs`` (module docstring), scored with ``scorer`` (a
    :class:`enhscan.engine.WindowScorer`; ``rc`` as for its ``score``). All windows and their
    edits go to the engine together, so batches fill whatever the number of windows."""
    seqs = [s.upper() for s in seqs]
    changes = [edits(s) for s in seqs]
    inputs = [*seqs, *(w for s, c in zip(seqs, changes, strict=True) for w in edited(s, c))]
    scores = scorer.score(inputs, rc=rc)
    out, at = [], len(seqs)
    for k, (seq, change) in enumerate(zip(seqs, changes, strict=True)):
        mutated = scores[at : at + len(change)]
        at += len(change)
        out.append(_attribution(seq, float(scores[k]), change, mutated))
    return out


def _attribution(seq: str, score: float, change, mutated: np.ndarray) -> Attribution:
    table = np.full((len(seq), 4), np.nan, dtype=np.float32)
    for (i, b), value in zip(change, mutated, strict=True):
        table[i, BASES.index(b)] = value
    attribution = (score - np.nanmean(table.astype(np.float64), axis=1)).astype(np.float32)
    return Attribution(seq, score, table, attribution)


def gradient_input(classifier, seqs: Sequence[str], task: str | None = None) -> list[np.ndarray]:
    """Gradient x input per base of each sequence (:mod:`enhscan.model.gradients`), for the
    score the engine gives (``task``: a multi-task model's task): float32 [len(seq)] each.

    Raises:
        EnhscanError: a model family that does not offer it.
    """
    import torch

    from enhscan.engine import output_column
    from enhscan.model.dnabert2 import probabilities

    gradients = input_gradients(classifier)
    _, column, sigmoid = output_column(classifier.metadata, task)

    def score_of(logits):
        if sigmoid:
            return torch.sigmoid(logits[0, column].float())
        return probabilities(logits, column)[0]

    network = classifier.network.eval()
    with torch.enable_grad():
        return [gradients(network, classifier.encoder, s.upper(), score_of) for s in seqs]


def input_gradients(classifier):
    """The gradient x input function the classifier's family offers.

    Raises:
        EnhscanError: a family that offers none.
    """
    from enhscan.errors import EnhscanError
    from enhscan.model.families import FAMILIES

    gradients = FAMILIES[classifier.metadata.family].input_gradients
    if gradients is None:
        raise EnhscanError(
            "gradient x input is for DNABERT-2, hybrid and CNN models, not "
            f"{classifier.metadata.family}; use --method ism"
        )
    return gradients


def strongest_stretch(attribution: np.ndarray, width: int) -> int:
    """Start of the ``width``-base stretch with the largest sum of positive attribution."""
    positive = np.clip(np.asarray(attribution, dtype=np.float64), 0, None)
    width = min(width, len(positive))
    sums = np.convolve(positive, np.ones(width), mode="valid")
    return int(np.argmax(sums))
