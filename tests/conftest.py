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
