"""The GC/CpG logistic-regression baseline."""

from __future__ import annotations

import numpy as np
import pytest

from enhscan.training.baselines import GcCpgBaseline, composition_features


def test_features_by_hand():
    # ACGTCGAT: C=2, G=2, 8 bases, 2 CpG; expected CpG = 2*2/8 = 0.5, so o/e = 4.
    features = composition_features(["ACGTCGAT", "AAAA", "NNNN", "CCGGN"])
    np.testing.assert_allclose(features[0], [0.5, 4.0, 0.25])
    np.testing.assert_allclose(features[1], [0.0, 0.0, 0.0])
    np.testing.assert_allclose(features[2], [0.0, 0.0, 0.0])  # no A/C/G/T at all
    # CCGGN: N left out; C=2 G=2 over 4 bases, one CpG, expected 1 -> o/e 1, density 1/4.
    np.testing.assert_allclose(features[3], [1.0, 1.0, 0.25])


def test_learns_composition():
    rng = np.random.default_rng(0)

    def seqs(p_gc: float, n: int) -> list[str]:
        probs = [(1 - p_gc) / 2, p_gc / 2, p_gc / 2, (1 - p_gc) / 2]
        return ["".join(rng.choice(list("ACGT"), 300, p=probs)) for _ in range(n)]

    train = seqs(0.6, 50) + seqs(0.4, 50)
    labels = np.array([1] * 50 + [0] * 50)
    model = GcCpgBaseline().fit(train, labels)
    scores = model.score(seqs(0.6, 20) + seqs(0.4, 20))
    assert scores.dtype == np.float32
    assert scores[:20].mean() > 0.8 and scores[20:].mean() < 0.2
    assert model.score(["ACGT" * 10]).shape == (1,)
    with pytest.raises(ValueError):
        GcCpgBaseline().fit(train, labels[:10])
