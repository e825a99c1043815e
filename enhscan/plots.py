"""Evaluation figures as PNG files: PR and ROC curves, score distributions by class.

matplotlib is imported inside the functions (so ``import enhscan`` stays light) and drives a
bare Agg canvas rather than pyplot, so it neither needs a display nor touches the caller's
pyplot backend or open figures. Every PNG is written under a hidden temporary name in its
folder and renamed into place when complete.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from enhscan.io.atomic import atomic_output
from enhscan.metrics import _check_inputs

if TYPE_CHECKING:
    from matplotlib.figure import Figure

_DPI = 120


def _new_figure(width: float = 5.5, height: float = 5.0) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height), dpi=_DPI, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _save_png(fig: Figure, path: Path) -> Path:
    """Render ``fig`` to ``path`` atomically."""
    with atomic_output(path) as tmp:
        # The temporary name has no .png suffix, so the format must be given.
        fig.savefig(tmp, format="png")
    return path


def plot_pr_roc(
    curves: dict[str, tuple[np.ndarray, np.ndarray]], out_dir: Path, title: str = ""
) -> dict[str, Path]:
    """Draw precision-recall and ROC curves of one or more models on the same data.

    Args:
        curves: model name (the legend label, e.g. ``"dnabert2"``, ``"cnn"``) ->
            ``(labels, scores)``: labels int [n] of 0/1 with both classes, scores float [n].
        out_dir: folder for ``pr_curve.png`` and ``roc_curve.png`` (created if missing);
            existing files of those names are replaced.
        title: figure title prefix.

    Returns:
        ``{"pr": out_dir / "pr_curve.png", "roc": out_dir / "roc_curve.png"}``.

    Raises:
        ValueError: no curves, or bad labels/scores (see :func:`enhscan.metrics.binary_metrics`).
        EnhscanError: a model's labels hold only one class.
    """
    from sklearn.metrics import (
        average_precision_score,
        precision_recall_curve,
        roc_auc_score,
        roc_curve,
    )

    if not curves:
        raise ValueError("plot_pr_roc needs at least one (labels, scores) pair")
    checked = {name: _check_inputs(labels, scores) for name, (labels, scores) in curves.items()}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    pr_fig, roc_fig = _new_figure(), _new_figure()
    pr_ax, roc_ax = pr_fig.add_subplot(), roc_fig.add_subplot()
    baselines: dict[str, tuple[float, str]] = {}  # name -> (positive rate, line colour)
    for name, (labels, scores) in checked.items():
        precision, recall, _ = precision_recall_curve(labels, scores)
        ap = average_precision_score(labels, scores)
        # Average precision is a step sum, so draw the curve as steps too.
        (line,) = pr_ax.step(recall, precision, where="post", label=f"{name} (AP {ap:.3f})")
        baselines[name] = (float(labels.mean()), line.get_color())
        fpr, tpr, _ = roc_curve(labels, scores)
        auc = roc_auc_score(labels, scores)
        roc_ax.plot(fpr, tpr, label=f"{name} (AUC {auc:.3f})")
    # A classifier without skill has precision = the positive rate at every recall.
    rates = {rate for rate, _ in baselines.values()}
    if len(rates) == 1:
        rate = rates.pop()
        pr_ax.axhline(rate, color="grey", linestyle="--", linewidth=1, label=f"chance ({rate:.3f})")
    else:  # models evaluated on different sets: one baseline each, in the model's colour
        for name, (rate, color) in baselines.items():
            pr_ax.axhline(
                rate, color=color, linestyle=":", linewidth=1, label=f"{name} chance ({rate:.3f})"
            )
    roc_ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="chance")

    for ax, kind, xlabel, ylabel in (
        (pr_ax, "Precision-recall", "Recall", "Precision"),
        (roc_ax, "ROC", "False positive rate", "True positive rate"),
    ):
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.02)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: {kind}" if title else kind)
        ax.grid(alpha=0.3)
    pr_ax.legend(loc="lower left")
    roc_ax.legend(loc="lower right")
    roc_ax.set_aspect("equal")

    return {
        "pr": _save_png(pr_fig, out_dir / "pr_curve.png"),
        "roc": _save_png(roc_fig, out_dir / "roc_curve.png"),
    }


def plot_score_distributions(
    scores_by_class: dict[str, np.ndarray],
    out_path: Path,
    threshold: float | None = None,
    title: str = "",
    limits: tuple[float, float] = (0.0, 1.0),
    xlabel: str = "Score (probability of enhancer)",
) -> Path:
    """Overlaid step histograms of scores per class on ``limits``, e.g. enhancer vs background.

    Each histogram is normalised to density, so classes of very different sizes compare; the
    legend gives each class's count.

    Args:
        scores_by_class: class name -> scores, float [n_class] in [0, 1]; an empty array is
            listed in the legend but not drawn.
        out_path: the PNG to write (its folder is created if missing).
        threshold: if given, drawn as a vertical line.
        title: figure title.
        limits: the range of the scores (default probabilities, [0, 1]).
        xlabel: what the scores are.

    Returns:
        ``out_path``.

    Raises:
        ValueError: no classes, NaN scores, or scores outside ``limits``.
    """
    if not scores_by_class:
        raise ValueError("plot_score_distributions needs at least one class of scores")
    arrays = {}
    for name, scores in scores_by_class.items():
        scores = np.asarray(scores, dtype=np.float64).ravel()
        if np.isnan(scores).any():
            raise ValueError(f"scores of {name!r} contain NaN")
        if scores.size and (scores.min() < limits[0] or scores.max() > limits[1]):
            raise ValueError(f"scores of {name!r} must lie in [{limits[0]:g}, {limits[1]:g}]")
        arrays[name] = scores
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)

    fig = _new_figure(6.5, 4.0)
    ax = fig.add_subplot()
    bins = np.linspace(limits[0], limits[1], 51)
    for name, scores in arrays.items():
        label = f"{name} (n={scores.size:,})"
        if scores.size:
            ax.hist(scores, bins=bins, density=True, histtype="step", linewidth=1.5, label=label)
        else:
            ax.plot([], [], label=label)
    if threshold is not None:
        ax.axvline(
            threshold,
            color="black",
            linestyle="--",
            linewidth=1,
            label=f"threshold {threshold:.3g}",
        )
    ax.set_xlim(*limits)
    ax.set_xlabel(xlabel)
    ax.set_ylabel("Density")
    ax.set_title(title or "Score distributions")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _save_png(fig, out_path)


def plot_precision_by_calls(
    hits: np.ndarray, out_path: Path, base_rate: float | None = None, title: str = ""
) -> Path:
    """Precision of the best k calls against k: the share of them that overlap a known enhancer.

    Args:
        hits: bool [n], calls ranked best first, True where a call overlaps a known enhancer.
        out_path: the PNG to write.
        base_rate: if given, the share of scored bases in known enhancers (what random calls
            would reach), drawn as a horizontal line.
        title: figure title.
    """
    hits = np.asarray(hits, dtype=bool)
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig = _new_figure(6.0, 4.0)
    ax = fig.add_subplot()
    k = np.arange(1, len(hits) + 1)
    if len(hits):
        ax.plot(k, np.cumsum(hits) / k, color="#c0392b", linewidth=1.5, label="best k calls")
    if base_rate is not None:
        ax.axhline(base_rate, color="grey", linestyle="--", linewidth=1, label="random bases")
    ax.set_xscale("log")
    ax.set_ylim(0, 1.02)
    ax.set_xlabel("Number of calls (best first)")
    ax.set_ylabel("Precision (calls overlapping a known enhancer)")
    ax.set_title(title or "Precision against the number of calls")
    ax.legend(loc="best")
    ax.grid(alpha=0.3)
    return _save_png(fig, out_path)


def plot_task_aucs(per_task_by_model: dict[str, dict[str, dict]], out_path: Path) -> Path:
    """ROC-AUC per task, one bar per model side by side (tasks with one class left out).

    Args:
        per_task_by_model: model name -> task -> {"roc_auc": float | None, ...}.
        out_path: the PNG to write.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    models = list(per_task_by_model)
    tasks = [
        t
        for t in per_task_by_model[models[0]]
        if all(per_task_by_model[m].get(t, {}).get("roc_auc") is not None for m in models)
    ]
    fig = _new_figure(7.0, max(3.0, 0.28 * len(tasks) + 1.2))
    ax = fig.add_subplot()
    height = 0.8 / max(len(models), 1)
    y = np.arange(len(tasks))
    for k, model in enumerate(models):
        values = [per_task_by_model[model][t]["roc_auc"] for t in tasks]
        ax.barh(y + k * height, values, height=height, label=model)
    ax.set_yticks(y + height * (len(models) - 1) / 2, tasks, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(0.5, color="grey", linestyle="--", linewidth=1)
    ax.set_xlim(0.3, 1.0)
    ax.set_xlabel("ROC-AUC on held-out chromosomes")
    ax.set_title("Per-task ROC-AUC")
    ax.legend(loc="lower right", fontsize=8)
    ax.grid(alpha=0.3, axis="x")
    return _save_png(fig, out_path)


def plot_variant_effects(
    deltas: np.ndarray, strongest: list[tuple[float, str]], out_path: Path
) -> Path:
    """Variant effects: the distribution of delta (p_alt - p_ref, float [n] in [-1, 1]) and
    the strongest effects as labelled bars (``(delta, label)``, strongest first).

    Returns:
        ``out_path``.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    fig = _new_figure(10.0, 4.0)
    left, right = fig.subplots(1, 2)
    # Most effects are small: the axes span the largest one (at least 0.01), not [-1, 1].
    limit = float(min(1.0, max(0.01, 1.1 * np.abs(deltas).max()))) if len(deltas) else 1.0
    if len(deltas):
        left.hist(deltas, bins=np.linspace(-limit, limit, 81), color="tab:blue")
        left.set_yscale("log")
    left.set_xlim(-limit, limit)
    left.set_xlabel("delta = p_alt - p_ref")
    left.set_ylabel("Alleles")
    left.set_title(f"{len(deltas):,} alleles scored")
    left.grid(alpha=0.3)
    values = [d for d, _ in strongest][::-1]
    right.barh(
        range(len(values)),
        values,
        color=["tab:red" if v > 0 else "tab:blue" for v in values],
    )
    right.set_yticks(range(len(values)), [label for _, label in strongest][::-1], fontsize=7)
    right.set_xlim(-limit, limit)
    right.axvline(0, color="black", linewidth=0.8)
    right.set_xlabel("delta")
    right.set_title("Strongest effects")
    return _save_png(fig, out_path)


#: Colours of the bases in logos, as most motif databases draw them.
BASE_COLOURS = {"A": "#109648", "C": "#255C99", "G": "#F7B32B", "T": "#D62839", "N": "#999999"}


def plot_attribution(
    attribution,
    chrom: str,
    start: int,
    call: tuple[int, int],
    stretch_at: int,
    stretch_width: int,
    out_path: Path,
) -> Path:
    """One explained window: the per-base attribution along it (the call shaded, the strongest
    stretch marked) and a logo of that stretch, each base's letter as tall as its attribution
    (upwards when it supports the score).

    Args:
        attribution: an :class:`enhscan.attribution.Attribution`.
        chrom, start: where the window lies (0-based).
        call: the region explained, 0-based half-open.
        stretch_at, stretch_width: the stretch of the logo, relative to the window.
        out_path: the PNG.
    """
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    values = np.asarray(attribution.attribution, dtype=np.float64)
    positions = start + np.arange(len(values))
    fig = _new_figure(10.0, 5.0)
    top, bottom = fig.subplots(2, 1, height_ratios=[1, 1])
    top.axvspan(call[0], call[1], color="tab:red", alpha=0.12, label="region")
    stretch_width = min(stretch_width, len(values) - stretch_at)
    top.axvspan(start + stretch_at, start + stretch_at + stretch_width, color="tab:orange",
                alpha=0.3, label="logo below")  # fmt: skip
    top.bar(positions, values, width=1.0, align="edge",
            color=np.where(values >= 0, "tab:blue", "tab:gray"))  # fmt: skip
    top.set_xlim(positions[0], positions[-1] + 1)
    top.set_xlabel(f"{chrom} (0-based)")
    top.set_ylabel("attribution")
    top.set_title(f"{chrom}:{start + 1:,}-{start + len(values):,}  score {attribution.score:.3f}")
    top.legend(loc="upper right", fontsize=8)
    stretch = slice(stretch_at, stretch_at + stretch_width)
    _draw_logo(bottom, attribution.seq[stretch], values[stretch], start + stretch_at)
    return _save_png(fig, out_path)


def _draw_logo(ax, seq: str, heights: np.ndarray, first: int) -> None:
    """Each base of ``seq`` as a letter scaled to its height (negative ones hang down)."""
    from matplotlib.font_manager import FontProperties
    from matplotlib.patches import PathPatch
    from matplotlib.textpath import TextPath
    from matplotlib.transforms import Affine2D

    font = FontProperties(family="DejaVu Sans", weight="bold")
    for i, (base, height) in enumerate(zip(seq, heights, strict=True)):
        if height == 0 or not np.isfinite(height):
            continue
        path = TextPath((0, 0), base, size=1, prop=font)
        box = path.get_extents()
        scale = (
            Affine2D().translate(-box.x0, -box.y0).scale(0.9 / box.width, abs(height) / box.height)
        )
        place = Affine2D().translate(i + 0.05, min(height, 0.0))
        patch = PathPatch(scale.transform_path(path), color=BASE_COLOURS.get(base, "#999999"))
        patch.set_transform(place + ax.transData)
        ax.add_patch(patch)
    low, high = float(min(heights.min(), 0)), float(max(heights.max(), 0))
    pad = 0.05 * (high - low or 1.0)
    ax.set_ylim(low - pad, high + pad)
    ax.set_xlim(0, len(seq))
    ax.axhline(0, color="black", linewidth=0.6)
    ticks = range(0, len(seq), 5)
    ax.set_xticks([t + 0.5 for t in ticks], [f"{first + t + 1:,}" for t in ticks], fontsize=7)
    ax.set_ylabel("attribution")
    ax.set_title("strongest stretch (1-based positions)", fontsize=9)
