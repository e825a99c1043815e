"""Tests for enhscan.plots: real, non-blank PNGs written atomically."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from enhscan.errors import EnhscanError
from enhscan.plots import plot_pr_roc, plot_score_distributions

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _assert_real_png(path: Path) -> None:
    from matplotlib.image import imread

    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_SIGNATURE
    pixels = imread(path)
    assert pixels.ndim == 3 and pixels.shape[0] > 100 and pixels.shape[1] > 100
    assert pixels.var() > 0


def _toy_data(seed: int, separation: float) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    labels = (rng.random(400) < 0.2).astype(int)
    scores = 1 / (1 + np.exp(-(rng.normal(size=400) + separation * labels)))
    return labels, scores


def test_pr_roc_two_models(tmp_path: Path):
    out_dir = tmp_path / "plots"
    paths = plot_pr_roc(
        {"dnabert2": _toy_data(0, 2.5), "cnn": _toy_data(1, 1.0)}, out_dir, title="held-out"
    )
    assert paths == {"pr": out_dir / "pr_curve.png", "roc": out_dir / "roc_curve.png"}
    for path in paths.values():
        _assert_real_png(path)
    # Nothing but the two figures: the temporary files were renamed away.
    assert sorted(p.name for p in out_dir.iterdir()) == ["pr_curve.png", "roc_curve.png"]


def test_pr_roc_replaces_existing_files(tmp_path: Path):
    (tmp_path / "pr_curve.png").write_text("old")
    paths = plot_pr_roc({"m": _toy_data(2, 2.0)}, tmp_path)
    _assert_real_png(paths["pr"])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pr_curve.png", "roc_curve.png"]


def test_pr_roc_bad_input(tmp_path: Path):
    with pytest.raises(ValueError):
        plot_pr_roc({}, tmp_path)
    with pytest.raises(EnhscanError, match="both classes"):
        plot_pr_roc({"m": (np.zeros(5, dtype=int), np.linspace(0, 1, 5))}, tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_score_distributions(tmp_path: Path):
    labels, scores = _toy_data(3, 2.0)
    out = tmp_path / "fig" / "scores.png"
    result = plot_score_distributions(
        {"enhancer": scores[labels == 1], "background": scores[labels == 0], "empty": []},
        out,
        threshold=0.6,
        title="validation",
    )
    assert result == out
    _assert_real_png(out)
    assert [p.name for p in out.parent.iterdir()] == ["scores.png"]


def test_score_distributions_rejects_non_probabilities(tmp_path: Path):
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        plot_score_distributions({"x": np.array([0.2, 1.5])}, tmp_path / "s.png")
    with pytest.raises(ValueError, match="NaN"):
        plot_score_distributions({"x": np.array([0.2, np.nan])}, tmp_path / "s.png")
    assert list(tmp_path.iterdir()) == []
