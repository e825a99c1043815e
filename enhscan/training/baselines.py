"""The simplest baseline: logistic regression on GC and CpG content.

Enhancers are GC- and CpG-rich compared with most of the genome, so composition alone
separates them from random background to a degree; a sequence model is only worth its cost
where it beats this. Features per window: GC fraction, CpG observed/expected ratio, and CpG
dinucleotides per base, standardised.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


def composition_features(seqs: Sequence[str]) -> np.ndarray:
    """float64 [n, 3]: GC fraction, CpG observed/expected, CpG per base (over A/C/G/T)."""
    rows = []
    for seq in seqs:
        c, g = seq.count("C"), seq.count("G")
        acgt = c + g + seq.count("A") + seq.count("T")
        cpg = seq.count("CG")
        gc = (c + g) / acgt if acgt else 0.0
        expected = c * g / acgt if acgt else 0.0
        rows.append((gc, cpg / expected if expected else 0.0, cpg / acgt if acgt else 0.0))
    return np.array(rows, dtype=np.float64).reshape(len(rows), 3)


class GcCpgBaseline:
    """Logistic regression on :func:`composition_features` (scikit-learn)."""

    def __init__(self, seed: int = 0):
        from sklearn.linear_model import LogisticRegression
        from sklearn.pipeline import make_pipeline
        from sklearn.preprocessing import StandardScaler

        self.model = make_pipeline(StandardScaler(), LogisticRegression(random_state=seed))

    def fit(self, seqs: Sequence[str], labels: np.ndarray) -> GcCpgBaseline:
        """Fit on windows (upper-case DNA) and 0/1 labels."""
        self.model.fit(composition_features(seqs), np.asarray(labels))
        return self

    def score(self, seqs: Sequence[str]) -> np.ndarray:
        """float32 [n]: probability of the enhancer class."""
        return self.model.predict_proba(composition_features(seqs))[:, 1].astype(np.float32)
