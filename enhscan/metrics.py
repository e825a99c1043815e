"""Binary classification metrics for enhancer classifiers: PR-AUC, ROC-AUC and the best-F1 cut.

Pure functions of labels (0/1) and scores (probabilities of class 1); predictions are always
``score >= threshold``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from enhscan.errors import EnhscanError


@dataclass
class BinaryMetrics:
    """Metrics of one classifier on one labelled set.

    Attributes:
        n: number of examples.
        n_positive: number of examples labelled 1.
        pr_auc: area under the precision-recall curve, computed as average precision
            (``sklearn.metrics.average_precision_score``: the step-wise sum of precision times
            the gain in recall, no interpolation).
        roc_auc: area under the ROC curve.
        threshold: the score cut the threshold metrics below are computed at
            (``score >= threshold`` predicts class 1).
        f1, precision, recall, mcc, accuracy: at ``threshold``; precision is 0 when nothing is
            predicted positive, and MCC is 0 when it is undefined.
    """

    n: int
    n_positive: int
    pr_auc: float
    roc_auc: float
    threshold: float
    f1: float
    precision: float
    recall: float
    mcc: float
    accuracy: float

    def to_dict(self) -> dict[str, int | float]:
        """The metrics as plain Python ints and floats, ready for ``json.dumps``."""
        out: dict[str, int | float] = {}
        for key, value in asdict(self).items():
            out[key] = int(value) if key in ("n", "n_positive") else float(value)
        return out


def _check_inputs(labels: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert: labels -> int64 [n] of 0/1, scores -> float [n].

    Raises:
        ValueError: not 1-D, lengths differ, labels other than 0/1, or NaN scores.
        EnhscanError: the labels hold only one class (or none).
    """
    labels = np.asarray(labels)
    scores = np.asarray(scores)
    if labels.ndim != 1 or scores.ndim != 1:
        raise ValueError(
            f"labels and scores must be 1-D, got shapes {labels.shape}, {scores.shape}"
        )
    if len(labels) != len(scores):
        raise ValueError(f"{len(labels)} labels but {len(scores)} scores")
    if not np.issubdtype(scores.dtype, np.floating):
        scores = scores.astype(np.float64)
    if np.isnan(scores).any():
        raise ValueError("scores contain NaN")
    if labels.size and not np.isin(labels, (0, 1)).all():
        raise ValueError("labels must be 0 or 1")
    labels = labels.astype(np.int64)
    n_positive = int(labels.sum())
    if n_positive == 0 or n_positive == len(labels):
        raise EnhscanError(
            f"metrics need both classes, but the {len(labels)} labels hold "
            f"{n_positive} positives; evaluate on a set with enhancers and background"
        )
    return labels, scores


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """The score threshold that maximises F1 of the rule ``score >= threshold``, and that F1.

    Candidate thresholds are the distinct scores (the thresholds of sklearn's
    ``precision_recall_curve``); the counts behind each F1 are taken exactly from the sorted
    scores, so the returned F1 equals ``f1_score(labels, scores >= threshold)``. When several
    thresholds reach the same F1 the highest one is returned.

    Args:
        labels: int [n], 0 or 1, both classes present.
        scores: float [n], higher means more likely class 1.

    Returns:
        (threshold, f1): the threshold is one of the scores.

    Raises:
        ValueError: lengths differ, labels other than 0/1, or NaN scores.
        EnhscanError: only one class present.
    """
    from sklearn.metrics import precision_recall_curve

    labels, scores = _check_inputs(labels, scores)
    _, _, thresholds = precision_recall_curve(labels, scores)
    # F1 = 2 TP / (P + predicted positives): count both exactly by binary search, since
    # rebuilding them from the curve's float precision/recall could break ties wrongly.
    all_sorted = np.sort(scores)
    pos_sorted = np.sort(scores[labels == 1])
    n_pos = len(pos_sorted)
    predicted = len(all_sorted) - np.searchsorted(all_sorted, thresholds, side="left")
    true_pos = n_pos - np.searchsorted(pos_sorted, thresholds, side="left")
    f1 = 2.0 * true_pos / (n_pos + predicted)
    # Distinct fractions can round to the same float: settle near-ties with exact arithmetic.
    near = np.flatnonzero(f1 >= f1.max() - 1e-9)
    best = max(
        near,
        key=lambda i: (Fraction(2 * int(true_pos[i]), n_pos + int(predicted[i])), thresholds[i]),
    )
    return float(thresholds[best]), float(f1[best])


def binary_metrics(
    labels: np.ndarray, scores: np.ndarray, threshold: float | None = None
) -> BinaryMetrics:
    """All metrics of scores against labels, at ``threshold`` or at the best-F1 threshold.

    Args:
        labels: int [n], 0 or 1, both classes present.
        scores: float [n], probabilities of class 1.
        threshold: predict class 1 where ``score >= threshold``; None picks the best-F1
            threshold of these data (:func:`best_f1_threshold`), which is optimistic for the
            set it was picked on.

    Raises:
        ValueError: lengths differ, labels other than 0/1, or NaN scores.
        EnhscanError: only one class present.
    """
    from sklearn.metrics import (
        accuracy_score,
        average_precision_score,
        f1_score,
        matthews_corrcoef,
        precision_score,
        recall_score,
        roc_auc_score,
    )

    labels, scores = _check_inputs(labels, scores)
    if threshold is None:
        threshold, _ = best_f1_threshold(labels, scores)
    predicted = (scores >= threshold).astype(np.int64)
    return BinaryMetrics(
        n=len(labels),
        n_positive=int(labels.sum()),
        pr_auc=float(average_precision_score(labels, scores)),
        roc_auc=float(roc_auc_score(labels, scores)),
        threshold=float(threshold),
        f1=float(f1_score(labels, predicted, zero_division=0)),
        precision=float(precision_score(labels, predicted, zero_division=0)),
        recall=float(recall_score(labels, predicted, zero_division=0)),
        mcc=float(matthews_corrcoef(labels, predicted)),
        accuracy=float(accuracy_score(labels, predicted)),
    )


@dataclass
class AucDifference:
    """ROC-AUC of scores ``a`` minus that of scores ``b`` on the same examples, with a
    stratified paired bootstrap (:func:`paired_roc_auc_difference`).

    Attributes:
        difference: on all the examples.
        low, high: the 2.5th and 97.5th percentiles of the resampled differences (a 95%
            percentile interval).
        share_not_above: the share of resamples in which ``a`` did not score above ``b`` (the
            resamples centre on the observed difference, so this is a rough guide, not an
            exact p-value).
        resamples: how many resamples.
    """

    difference: float
    low: float
    high: float
    share_not_above: float
    resamples: int

    def to_dict(self) -> dict:
        return asdict(self)


def paired_roc_auc_difference(
    labels: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    resamples: int = 2000,
    seed: int = 0,
) -> AucDifference:
    """Is ``a`` better than ``b``, or is the gap within what another draw of the same kind of
    examples would give? Each resample draws the positives and the negatives apart, with
    replacement and in their own numbers, and scores both models on the same draw, so what the
    two share (the hard examples) cancels.

    Args:
        labels: int [n], 0 or 1, both classes present.
        a, b: float [n], two models' scores of the same examples.
        resamples, seed: the bootstrap's size and its random generator's seed (same seed, same
            answer).
    """
    labels, a = _check_inputs(labels, a)
    _, b = _check_inputs(labels, b)
    positive, negative = np.flatnonzero(labels == 1), np.flatnonzero(labels == 0)
    rng = np.random.default_rng(seed)
    draws = []
    for first in range(0, resamples, 250):  # in chunks: [chunk, n] rank matrices stay small
        k = min(250, resamples - first)
        rows = np.concatenate(
            [rng.choice(positive, (k, len(positive))), rng.choice(negative, (k, len(negative)))],
            axis=1,
        )
        draws.append(_roc_auc_rows(a[rows], len(positive)) - _roc_auc_rows(b[rows], len(positive)))
    differences = np.concatenate(draws)
    whole = np.concatenate([positive, negative])[None]
    difference = float(
        (_roc_auc_rows(a[whole], len(positive)) - _roc_auc_rows(b[whole], len(positive)))[0]
    )
    return AucDifference(
        difference=difference,
        low=float(np.percentile(differences, 2.5)),
        high=float(np.percentile(differences, 97.5)),
        share_not_above=float(np.mean(differences <= 0)),
        resamples=resamples,
    )


def _roc_auc_rows(scores: np.ndarray, n_positive: int) -> np.ndarray:
    """ROC-AUC of each row of ``scores`` [R, n] whose first ``n_positive`` columns are the
    positives: the Mann-Whitney U statistic from mid-ranks (ties count one half) -> [R]."""
    from scipy.stats import rankdata

    ranks = rankdata(scores, axis=1)
    n_negative = scores.shape[1] - n_positive
    u = ranks[:, :n_positive].sum(axis=1) - n_positive * (n_positive + 1) / 2
    return u / (n_positive * n_negative)


@dataclass
class MultilabelMetrics:
    """Ranking metrics of a multi-task model, per task and their mean.

    Attributes:
        pr_auc, roc_auc: means over the tasks that have both classes.
        per_task: task -> {n_positive, pr_auc, roc_auc} (AUCs None for a task with one class).
        tasks_scored: how many tasks the means cover.
    """

    pr_auc: float
    roc_auc: float
    per_task: dict[str, dict]
    tasks_scored: int

    def to_dict(self) -> dict:
        return asdict(self)


def multilabel_metrics(
    targets: np.ndarray, probs: np.ndarray, tasks: list[str]
) -> MultilabelMetrics:
    """PR-AUC and ROC-AUC of each task's probabilities against its 0/1 targets.

    Args:
        targets: 0/1 [n, tasks]; probs: float [n, tasks]; tasks: their names.

    Raises:
        EnhscanError: no task has both classes.
    """
    from sklearn.metrics import average_precision_score, roc_auc_score

    targets = np.asarray(targets)
    probs = np.asarray(probs, dtype=np.float64)
    if targets.shape != probs.shape or targets.shape[1] != len(tasks):
        raise ValueError(
            f"targets {targets.shape}, probabilities {probs.shape}, {len(tasks)} tasks"
        )
    per_task: dict[str, dict] = {}
    for t, name in enumerate(tasks):
        column = targets[:, t].astype(np.int64)
        positives = int(column.sum())
        scored = 0 < positives < len(column)
        per_task[name] = {
            "n_positive": positives,
            "pr_auc": float(average_precision_score(column, probs[:, t])) if scored else None,
            "roc_auc": float(roc_auc_score(column, probs[:, t])) if scored else None,
        }
    scored = [m for m in per_task.values() if m["pr_auc"] is not None]
    if not scored:
        raise EnhscanError("no task has both positive and negative windows; draw more windows")
    return MultilabelMetrics(
        pr_auc=float(np.mean([m["pr_auc"] for m in scored])),
        roc_auc=float(np.mean([m["roc_auc"] for m in scored])),
        per_task=per_task,
        tasks_scored=len(scored),
    )
