"""p- and q-values and the FDR threshold, against hand-computed toy cases and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import false_discovery_control

from enhscan.calling import CallRule
from enhscan.significance import (
    EmpiricalNull,
    ScanSignificance,
    bh_qvalues,
    empirical_pvalues,
    logits,
)


def test_empirical_pvalues_by_hand() -> None:
    null = np.array([0.1, 0.2, 0.2, 0.5], dtype=np.float32)  # n = 4
    scores = np.array([0.05, 0.2, 0.3, 0.5, 0.9, np.nan], dtype=np.float32)
    # (1 + #{null >= s}) / 5
    want = [5 / 5, 4 / 5, 2 / 5, 2 / 5, 1 / 5, np.nan]
    np.testing.assert_allclose(empirical_pvalues(scores, null), want)


def test_bh_qvalues_by_hand() -> None:
    p = np.array([0.01, 0.04, 0.03, 0.20])
    # sorted: 0.01 0.03 0.04 0.20; m*p/rank: 0.04 0.06 0.0533 0.20; running min from the end:
    # 0.04 0.0533 0.0533 0.20
    np.testing.assert_allclose(bh_qvalues(p), [0.04, 0.16 / 3, 0.16 / 3, 0.20])
    assert bh_qvalues(np.zeros(0)).shape == (0,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_bh_qvalues_match_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    p = np.concatenate([rng.random(500), rng.random(50) * 1e-3, [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(bh_qvalues(p), false_discovery_control(p, method="bh"))


def test_fdr_threshold_calls_exactly_what_bh_rejects() -> None:
    rng = np.random.default_rng(3)
    null = np.sort(rng.random(2000).astype(np.float32) * 0.7)
    scan = np.concatenate([rng.random(900) * 0.7, 0.6 + rng.random(100) * 0.4]).astype(np.float32)
    scan[:20] = scan[20]  # ties
    sig = ScanSignificance(scan, null)
    for alpha in (0.01, 0.05, 0.2):
        q = false_discovery_control(empirical_pvalues(scan, null), method="bh")
        cut = sig.fdr_threshold(alpha)
        rejected = q <= alpha
        assert rejected.any()
        assert np.array_equal(scan >= cut, rejected)
        np.testing.assert_allclose(sig.qvalues(scan), q)
    assert sig.fdr_threshold(1e-9) is None


def _scores(z: np.ndarray) -> np.ndarray:
    return (1 / (1 + np.exp(-z))).astype(np.float32)


def test_a_scan_without_signal_calls_nothing_and_the_naive_self_null_could_not() -> None:
    """p = rank / m (the scan's own scores used as is) never lets BH call; the fitted
    empirical null leaves pure background uncalled, with p-values no smaller than they
    should be."""
    rng = np.random.default_rng(4)
    scores = _scores(rng.normal(-1.0, 0.8, 20_000))
    ranks = (len(scores) - np.argsort(np.argsort(scores))) / len(scores)
    assert (bh_qvalues(ranks) <= 0.5).sum() == 0
    sig = ScanSignificance(scores, None)
    assert sig.empirical.centre == pytest.approx(-1.0, abs=0.05)
    assert sig.fdr_threshold(0.05) is None
    p = sig.pvalues(scores)
    assert 0.001 < np.mean(p <= 0.01) <= 0.01


@pytest.mark.parametrize("shape", [2.0, 4.0, 10.0])
def test_the_empirical_null_is_not_fooled_by_skewed_background(shape: float) -> None:
    """Background logits skewed to the right (gamma, skewness 1.4 to 0.6; the default model's
    background has 0.55): no calls, and at most 2.5 times the small p-values the rate says
    (at 0.01; about 2% at skewness 1.4, 1% below 0.7)."""
    rng = np.random.default_rng(6)
    scores = _scores(rng.gamma(shape, 0.3, 20_000) - 2)
    sig = ScanSignificance(scores, None)
    assert sig.fdr_threshold(0.05) is None
    assert np.mean(sig.pvalues(scores) <= 0.01) <= 0.025


def test_the_empirical_null_finds_planted_signal_and_stays_conservative() -> None:
    rng = np.random.default_rng(5)
    background = rng.normal(-1.0, 0.8, 19_000)
    signal = rng.normal(3.0, 0.8, 1_000)
    scores = _scores(np.concatenate([background, signal]))
    truth = np.arange(len(scores)) >= len(background)
    sig = ScanSignificance(scores, None)
    called = scores >= sig.fdr_threshold(0.05)
    false_share = (called & ~truth).sum() / called.sum()
    assert called[truth].mean() > 0.5 and false_share <= 0.05
    assert sig.describe_null()["source"] == "scan"


def test_empirical_null_of_constant_scores_calls_nothing() -> None:
    null = EmpiricalNull.fit(np.full(10, 0.3, dtype=np.float32))
    assert null.scale == 0.0
    assert np.all(null.pvalues(np.array([0.3, 0.9], dtype=np.float32)) == 1.0)
    assert np.isfinite(logits(np.array([0.0, 1.0]))).all()


def test_a_confident_model_is_not_flattened_at_a_clip_floor() -> None:
    """Background near 1e-9 (logits around -20, far below where a clip at 1e-7 would have
    merged them) and 2% signal around 1e-3: the fit sees the background's real spread, calls
    the signal and little else."""
    rng = np.random.default_rng(7)
    background = rng.normal(-20.0, 1.0, 49_000)
    signal = rng.normal(-7.0, 1.0, 1_000)
    scores = _scores(np.concatenate([background, signal]))
    truth = np.arange(len(scores)) >= len(background)
    sig = ScanSignificance(scores, None)
    assert sig.empirical.centre == pytest.approx(-20.0, abs=0.1)
    called = scores >= sig.fdr_threshold(0.05)
    assert called[truth].mean() > 0.9 and (called & ~truth).sum() / called.sum() <= 0.05


@pytest.mark.parametrize(
    "threshold, top, fdr, want",
    [
        (None, None, None, CallRule("fdr", 0.05)),
        (None, None, 0.1, CallRule("fdr", 0.1)),
        (0.7, None, None, CallRule("threshold", 0.7)),
        (None, 0.02, None, CallRule("top", 0.02)),
    ],
)
def test_call_rule_from_options(threshold, top, fdr, want) -> None:
    assert CallRule.from_options(threshold, top, fdr) == want


@pytest.mark.parametrize(
    "threshold, top, fdr, message",
    [
        (0.5, 0.1, None, "give one of"),
        (None, None, 0.0, "--fdr must be in (0, 1]"),
        (1.5, None, None, "--threshold must be in [0, 1]"),
    ],
)
def test_call_rule_refuses(threshold, top, fdr, message) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace("[", r"\[")):
        CallRule.from_options(threshold, top, fdr)
    assert CallRule("top", 0.02).describe() == "top 2% of windows"
