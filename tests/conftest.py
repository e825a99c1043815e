"""Shared fixtures: small real sequence and tiny random DNABERT-2 models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

DATA = Path(__file__).parent / "data"
SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture(scope="session")
def mini_fasta_source() -> Path:
    return DATA / "mini.fa"


@pytest.fixture
def mini_fasta(tmp_path: Path, mini_fasta_source: Path) -> Path:
    """A private copy of tests/data/mini.fa (so index files land in tmp)."""
    target = tmp_path / "genome" / "mini.fa"
    target.parent.mkdir()
    shutil.copy(mini_fasta_source, target)
    return target


@pytest.fixture(scope="session")
def tiny_classifier():
    """A tiny DNABERT-2 classifier with random weights whose scores vary between windows.

    A wide initialisation makes the random network's outputs spread over (0, 1), so
    thresholds and calls have something to bite on.
    """
    from enhscan.model import new_classifier

    return new_classifier(
        "tiny",
        seed=7,
        initializer_range=0.5,
        num_hidden_layers=1,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
    )


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory, tiny_classifier) -> Path:
    from enhscan.model import save_classifier

    return save_classifier(tiny_classifier, tmp_path_factory.mktemp("models") / "tiny")


@pytest.fixture(scope="session")
def tiny_model_with_null(tmp_path_factory, tiny_model_dir) -> Path:
    """The tiny model with a stored background null in which its upper half never occurs
    (uniform on [0, 0.6]), so that scans at FDR 0.05 make calls. Synthetic on purpose: for
    the calling machinery (storage, p- and q-values, resume, processes); real nulls are tested
    in test_calibrate.py."""
    import numpy as np

    from enhscan.model import load_classifier
    from enhscan.model.null import BackgroundNull, save_null

    folder = tmp_path_factory.mktemp("models") / "tiny_null"
    shutil.copytree(tiny_model_dir, folder)
    low = np.linspace(0.0, 0.6, 2000, dtype=np.float32)
    identity = load_classifier(folder).identity
    info = {"model_identity": identity, "window": 1000, "source": "synthetic, for tests"}
    save_null(folder, BackgroundNull({"forward": low, "mean": low, "max": low}, info))
    return folder
