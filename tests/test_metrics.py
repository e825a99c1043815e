"""Tests for enhscan.metrics: hand-worked values and a brute-force check of the best-F1 cut."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import f1_score

from enhscan.errors import EnhscanError
from enhscan.metrics import (
    BinaryMetrics,
    best_f1_threshold,
    binary_metrics,
    paired_roc_auc_difference,
)

# Toy set, sorted by score from the top:
#   score  0.9  0.8  0.4  0.35  0.2  0.1
#   label   1    1    0    1     0    0
# P = 3 positives, 3 negatives.
# Average precision: precision at each positive's rank = 1/1, 2/2, 3/4 -> (1 + 1 + 3/4) / 3 = 11/12.
# ROC-AUC: positive-negative pairs ranked right: 0.9 and 0.8 beat all 3 negatives (6),
#   0.35 beats 0.2 and 0.1 (2) -> 8 / 9.
# F1 = 2 TP / (P + predicted) at each cut t (score >= t):
#   t=0.9: 2/4   t=0.8: 4/5   t=0.4: 4/6   t=0.35: 6/7   t=0.2: 6/8   t=0.1: 6/9
# Best t = 0.35, F1 = 6/7: TP 3, FP 1 (0.4), FN 0, TN 2 ->
#   precision 3/4, recall 1, accuracy 5/6,
#   MCC = (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = 6 / sqrt(4*3*3*2) = 1/sqrt(2).
TOY_LABELS = np.array([0, 0, 1, 1, 0, 1])
TOY_SCORES = np.array([0.1, 0.4, 0.35, 0.8, 0.2, 0.9])


def test_toy_case_by_hand():
    m = binary_metrics(TOY_LABELS, TOY_SCORES)
    assert m.n == 6 and m.n_positive == 3
    assert m.pr_auc == pytest.approx(11 / 12, abs=1e-12)
    assert m.roc_auc == pytest.approx(8 / 9, abs=1e-12)
    assert m.threshold == 0.35
    assert m.f1 == pytest.approx(6 / 7, abs=1e-12)
    assert m.precision == pytest.approx(3 / 4, abs=1e-12)
    assert m.recall == 1.0
    assert m.mcc == pytest.approx(1 / math.sqrt(2), abs=1e-12)
    assert m.accuracy == pytest.approx(5 / 6, abs=1e-12)
    assert best_f1_threshold(TOY_LABELS, TOY_SCORES) == (0.35, pytest.approx(6 / 7, abs=1e-15))


def test_explicit_threshold():
    # At t = 0.8: predicted {0.9, 0.8}, both positive: TP 2, FP 0, FN 1, TN 3.
    # F1 = 4/5, precision 1, recall 2/3, accuracy 5/6,
    # MCC = (2*3 - 0*1) / sqrt(2 * 3 * 3 * 4) = 6 / sqrt(72) = 1/sqrt(2).
    m = binary_metrics(TOY_LABELS, TOY_SCORES, threshold=0.8)
    assert m.threshold == 0.8
    assert m.f1 == pytest.approx(4 / 5)
    assert m.precision == 1.0
    assert m.recall == pytest.approx(2 / 3)
    assert m.accuracy == pytest.approx(5 / 6)
    assert m.mcc == pytest.approx(1 / math.sqrt(2))
    # The threshold-free metrics do not depend on the cut.
    assert m.pr_auc == pytest.approx(11 / 12) and m.roc_auc == pytest.approx(8 / 9)


def test_threshold_above_every_score_predicts_nothing():
    m = binary_metrics(TOY_LABELS, TOY_SCORES, threshold=0.95)
    assert (m.f1, m.precision, m.recall, m.mcc) == (0.0, 0.0, 0.0, 0.0)
    assert m.accuracy == 0.5


def test_ties_pick_the_highest_threshold():
    # From the top: 1 0 0 1. F1 at t=0.9: 2/3; 0.7: 2/4; 0.6: 2/5; 0.5: 4/6 = 2/3 (a tie).
    labels = np.array([1, 0, 0, 1])
    scores = np.array([0.9, 0.7, 0.6, 0.5])
    t, f1 = best_f1_threshold(labels, scores)
    assert t == 0.9
    assert f1 == pytest.approx(2 / 3)


def test_tied_scores_are_one_cut():
    # Scores 0.5 twice (one of each class): the cut at 0.5 takes both.
    labels = np.array([1, 0, 1, 0])
    scores = np.array([0.5, 0.5, 0.2, 0.1])
    # t=0.5: TP 1, predicted 2 -> 2/4; t=0.2: TP 2, predicted 3 -> 4/5; t=0.1: 4/6.
    assert best_f1_threshold(labels, scores) == (0.2, pytest.approx(0.8))


def test_to_dict_is_json_ready():
    m = binary_metrics(TOY_LABELS, TOY_SCORES.astype(np.float32))
    d = m.to_dict()
    assert set(d) == set(BinaryMetrics.__dataclass_fields__)
    assert type(d["n"]) is int and type(d["n_positive"]) is int
    assert all(type(d[k]) is float for k in d if k not in ("n", "n_positive"))
    assert json.loads(json.dumps(d)) == d


def test_float32_scores_threshold_reproduces_f1():
    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 500)
    scores = (rng.random(500) * 0.5 + labels * 0.3).astype(np.float32)
    t, f1 = best_f1_threshold(labels, scores)
    assert f1 == f1_score(labels, scores >= t)
    assert binary_metrics(labels, scores).f1 == f1


def _brute_force(labels: np.ndarray, scores: np.ndarray) -> tuple[float, Fraction]:
    """Best (threshold, F1) over every distinct score, exact, ties to the highest threshold."""
    n_pos = int(labels.sum())
    best: tuple[Fraction, float] | None = None
    for t in np.unique(scores):
        pred = scores >= t
        f1 = Fraction(2 * int((pred & (labels == 1)).sum()), n_pos + int(pred.sum()))
        if best is None or (f1, t) > best:
            best = (f1, float(t))
    assert best is not None
    return best[1], best[0]


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.tuples(st.integers(0, 1), st.integers(0, 12)), min_size=2, max_size=40).filter(
        lambda rows: len({label for label, _ in rows}) == 2
    )
)
def test_best_f1_threshold_matches_brute_force(rows):
    # Scores from a small grid so that tied scores and tied F1 values are common.
    labels = np.array([label for label, _ in rows])
    scores = np.array([level / 12 for _, level in rows])
    t, f1 = best_f1_threshold(labels, scores)
    bt, bf1 = _brute_force(labels, scores)
    assert t == bt
    assert f1 == float(bf1)
    assert f1 == f1_score(labels, scores >= t)


def test_random_continuous_scores_match_brute_force():
    rng = np.random.default_rng(0)
    for _ in range(50):
        n = int(rng.integers(2, 200))
        labels = rng.integers(0, 2, n)
        labels[:2] = [0, 1]
        scores = np.clip(rng.normal(0.4 + 0.2 * labels, 0.2), 0, 1)
        t, f1 = best_f1_threshold(labels, scores)
        bt, bf1 = _brute_force(labels, scores)
        assert (t, f1) == (bt, float(bf1))
        assert f1 == f1_score(labels, scores >= t)


@pytest.mark.parametrize("labels", [[0, 0, 0], [1, 1], []])
def test_one_class_is_a_user_error(labels):
    scores = np.linspace(0, 1, len(labels))
    with pytest.raises(EnhscanError, match="both classes"):
        binary_metrics(np.array(labels, dtype=int), scores)
    with pytest.raises(EnhscanError, match="both classes"):
        best_f1_threshold(np.array(labels, dtype=int), scores)


def test_bad_inputs_are_value_errors():
    with pytest.raises(ValueError, match="labels but"):
        binary_metrics(np.array([0, 1, 1]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match="NaN"):
        binary_metrics(np.array([0, 1]), np.array([0.1, np.nan]))
    with pytest.raises(ValueError, match="0 or 1"):
        binary_metrics(np.array([0, 2]), np.array([0.1, 0.2]))


def test_paired_auc_difference_is_sklearns_and_its_interval_holds_it() -> None:
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    labels = (rng.random(400) < 0.3).astype(int)
    a = labels + rng.normal(0, 1.0, 400)
    b = np.round(labels + rng.normal(0, 1.3, 400), 1)  # ties: mid-ranks count one half
    result = paired_roc_auc_difference(labels, a, b, resamples=500, seed=1)
    expected = roc_auc_score(labels, a) - roc_auc_score(labels, b)
    assert result.difference == pytest.approx(expected, abs=1e-12)
    assert result.low < result.difference < result.high and result.resamples == 500
    assert paired_roc_auc_difference(labels, a, b, resamples=500, seed=1) == result


def test_paired_auc_difference_tells_a_real_gap_from_noise() -> None:
    rng = np.random.default_rng(2)
    labels = np.repeat([0, 1], 300)
    better = labels * 1.5 + rng.normal(0, 1, 600)
    worse = labels * 0.5 + rng.normal(0, 1, 600)
    gap = paired_roc_auc_difference(labels, better, worse, resamples=400)
    assert gap.low > 0.1 and gap.share_not_above == 0.0
    same = paired_roc_auc_difference(labels, better, better + 1.0, resamples=50)
    assert (same.difference, same.low, same.high, same.share_not_above) == (0.0, 0.0, 0.0, 1.0)
    noise = paired_roc_auc_difference(labels, better, better + rng.normal(0, 0.05, 600))
    assert noise.low < 0 < noise.high
    with pytest.raises(EnhscanError, match="both classes"):
        paired_roc_auc_difference(np.ones(5), better[:5], worse[:5])
