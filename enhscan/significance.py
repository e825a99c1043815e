"""How surprising a window's score is: empirical p-values, Benjamini-Hochberg q-values, and the
score threshold that calls at a stated false-discovery rate.

Pure functions of score arrays (float32 probabilities in [0, 1]); no I/O.

Two nulls give a window's p-value, the probability that a background window scores at least as
high:

* **a stored background sample** (the model folder's, :mod:`enhscan.model.null`): the share of
  the ``n`` sampled random genome windows that score at least as high, counted as
  ``(1 + #{null >= s}) / (n + 1)`` so that a p-value is never 0 (the smallest is
  ``1 / (n + 1)``);
* **the scan's own scores** (an *empirical null* in Efron's sense, for a model folder without a
  sample): the logits of most of a genome's windows are background, so a logistic
  distribution is fitted to the middle of the scan's logits and p is its upper tail. Centre:
  their median. Scale: the wider of the two half-quartile spreads (third quartile less the
  median, median less the first), divided by ln 3, the half-quartile spread of a standard
  logistic. The logistic's exponential tails, and taking the wider side, are for background
  logits skewed to the right: a normal fitted to the lower half gave 5.6% of 20,000 random
  chrX windows of the default model p <= 0.01 (expected 1%); this gives none. For
  gamma-shaped logits of skewness 1.4 (2.5 times the default model's background) about 2%
  reach p <= 0.01 and Benjamini-Hochberg at 0.05 calls nothing (tests). Enhancers in the
  upper quarter widen the fit, which errs on the conservative side.
  The plain share of the scan's own windows scoring at least as high cannot serve: its
  p-values are the ranks over ``m``, and Benjamini-Hochberg then calls nothing at any rate
  below 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

#: Lowest and highest probability kept before taking logits, in float64: float32
#: probabilities reach 0 and 1 exactly, and a confident model's reach 1e-30 and below, which
#: must stay apart.
_EPS = 1e-300
#: A standard logistic distribution's quartiles lie ln 3 either side of its median.
_HALF_QUARTILE_SPREAD = float(np.log(3.0))


def empirical_pvalues(scores: np.ndarray, null_sorted: np.ndarray) -> np.ndarray:
    """p-values of ``scores`` against a sorted background sample.

    Args:
        scores: float [m] (NaN stays NaN).
        null_sorted: float32 [n], ascending, no NaN.

    Returns:
        float64 [m]: ``(1 + #{null >= s}) / (n + 1)``.
    """
    n = len(null_sorted)
    at_least = n - np.searchsorted(null_sorted, scores, side="left")
    p = (1.0 + at_least) / (n + 1.0)
    return np.where(np.isnan(scores), np.nan, p)


def logits(scores: np.ndarray) -> np.ndarray:
    """float64 log-odds of probabilities, clipped to stay finite."""
    # The largest float64 below 1 is 1 - 2**-53; 1 - 1e-300 would round to 1.
    clipped = np.clip(np.asarray(scores, dtype=np.float64), _EPS, 1 - 2.0**-53)
    return np.log(clipped) - np.log1p(-clipped)


@dataclass(frozen=True)
class EmpiricalNull:
    """A logistic null on the logit scale: ``logit(score) ~ Logistic(centre, scale)``."""

    centre: float
    scale: float

    @classmethod
    def fit(cls, scores: np.ndarray) -> EmpiricalNull:
        """Fit to the middle of a scan's scores (module docstring); NaN ignored."""
        z = logits(scores[~np.isnan(scores)])
        if len(z) < 2:
            return cls(0.0, 1.0)
        q25, centre, q75 = np.quantile(z, [0.25, 0.5, 0.75])
        scale = float(max(q75 - centre, centre - q25)) / _HALF_QUARTILE_SPREAD
        return cls(float(centre), scale)

    def pvalues(self, scores: np.ndarray) -> np.ndarray:
        """float64 [m]: the logistic upper tail at each score's logit (NaN stays NaN). With no
        spread to measure (half the scores or more equal), every p-value is 1: nothing is
        called."""
        from scipy.special import expit

        z = logits(scores)
        if not self.scale > 0:
            return np.where(np.isnan(z), np.nan, 1.0)
        return expit(-(z - self.centre) / self.scale)


def bh_qvalues(pvalues: np.ndarray) -> np.ndarray:
    """Benjamini-Hochberg adjusted p-values (q-values) of all ``m`` tests.

    ``q_(i) = min over j >= i of m * p_(j) / j`` for the p-values sorted ascending, capped at 1;
    the tests with ``q <= alpha`` are those BH rejects at false-discovery rate ``alpha``.

    Args:
        pvalues: float [m], no NaN.

    Returns:
        float64 [m], in the order given.
    """
    p = np.asarray(pvalues, dtype=np.float64)
    m = len(p)
    if m == 0:
        return p.copy()
    order = np.argsort(p, kind="stable")
    ranked = p[order] * m / np.arange(1, m + 1)
    ranked = np.minimum.accumulate(ranked[::-1])[::-1]
    q = np.empty(m)
    q[order] = np.minimum(ranked, 1.0)
    return q


class ScanSignificance:
    """p- and q-values for every score of a scan, and the score thresholds they imply.

    p is a non-increasing function of the score and q of p, so both are looked up by score:
    calling the windows with ``q <= alpha`` is calling those scoring at or above one threshold.

    Args:
        scores: float32 [m], every scored window of the scan (NaN allowed, ignored).
        null_sorted: the model's background sample (ascending), or None to fit the scan's own
            empirical null (:class:`EmpiricalNull`).
    """

    def __init__(self, scores: np.ndarray, null_sorted: np.ndarray | None):
        flat = np.sort(np.asarray(scores, dtype=np.float32)[~np.isnan(scores)])
        self.empirical = None if null_sorted is not None else EmpiricalNull.fit(flat)
        self._null = null_sorted
        self._scores = flat  # ascending
        p = self.pvalues(flat)
        self._q = bh_qvalues(p)
        self.m = len(flat)

    @property
    def max_score(self) -> float:
        """The highest scanned score (0 when none)."""
        return float(self._scores[-1]) if self.m else 0.0

    def pvalues(self, scores: np.ndarray) -> np.ndarray:
        """float64 p-values of any scores under this scan's null."""
        scores = np.asarray(scores, dtype=np.float32)
        if self._null is not None:
            return empirical_pvalues(scores, self._null)
        return self.empirical.pvalues(scores)

    def qvalues(self, scores: np.ndarray) -> np.ndarray:
        """float64 q-values of scores of this scan (a score between two scanned ones gets the
        q of the next lower scanned score, which is conservative)."""
        scores = np.asarray(scores, dtype=np.float32)
        if self.m == 0:
            return np.ones(len(scores))
        index = np.searchsorted(self._scores, scores, side="right") - 1
        return np.where(index >= 0, self._q[np.clip(index, 0, None)], 1.0)

    def fdr_threshold(self, alpha: float) -> float | None:
        """The lowest scanned score with ``q <= alpha``: calling at it calls exactly the windows
        BH rejects at rate ``alpha``. None when no window passes."""
        passing = np.flatnonzero(self._q <= alpha)
        if len(passing) == 0:
            return None
        return float(self._scores[passing[0]])

    def describe_null(self) -> dict:
        """What served as the null, for the run record."""
        if self._null is not None:
            return {"source": "model", "windows": int(len(self._null))}
        return {
            "source": "scan",
            "method": "logistic fitted to the middle of the scan's logits",
            "centre_logit": round(self.empirical.centre, 6),
            "scale_logit": round(self.empirical.scale, 6),
        }
