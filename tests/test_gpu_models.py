"""tools/gpu_models.sh in its dry mode: the GPU recipe's every step on the CPU at tiny sizes,
so the command a lent GPU runs is known to work before the GPU is there (slow: about 4
minutes on 2 cores; `pytest -m slow tests/test_gpu_models.py`), and its refusals."""

from __future__ import annotations

import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "tools" / "gpu_models.sh"
SHARED = ROOT.parent / "shared" / "data"

needs_shared = pytest.mark.skipif(
    not (SHARED / "labels" / "remo_v1").exists(), reason="needs ../shared/data"
)


def gpu_models(tmp_path: Path, *args: str, **env: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "GPU_DATA": str(tmp_path / "data"), "WHEELS": "0", **env}
    return subprocess.run(
        ["bash", str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, env=env
    )


@pytest.mark.slow
@needs_shared
def test_prepare_then_a_dry_run_gives_loadable_models(tmp_path) -> None:
    from enhscan.api import load_model

    prepared = gpu_models(tmp_path, "prepare")
    assert prepared.returncode == 0, prepared.stderr
    assert (tmp_path / "data" / "labels" / "positive.bed").stat().st_size > 0

    out = tmp_path / "out"
    done = gpu_models(
        tmp_path, "run", DRY="1", OUT=str(out), WORK=str(tmp_path / "work"), SEEDS="0"
    )
    assert done.returncode == 0, done.stdout + done.stderr
    steps = [line.split("\t") for line in (out / "steps.tsv").read_text().splitlines()]
    assert {s[0]: s[1] for s in steps} == dict.fromkeys(
        ["smoke", "atlas-cnn", "atlas-hybrid", "small-s0", "large-s0", "base-s0"], "0"
    )
    unpacked = tmp_path / "unpacked"
    for tar in out.glob("*.tar"):
        with tarfile.open(tar) as handle:
            handle.extractall(unpacked, filter="data")
    assert {p.name for p in unpacked.iterdir()} == {
        "atlas_cnn", "atlas_hybrid", "small_s0", "large_s0", "base_s0"
    }  # fmt: skip
    assert all(p.stat().st_size <= 16 * 2**20 for p in out.iterdir())
    seqs = ["ACGT" * 250, "GGCC" * 250]
    for name in ("small_s0", "large_s0", "base_s0"):  # fp16 weights, loaded as fp32
        classifier = load_model(str(unpacked / name))
        scores = _scores(classifier, seqs)
        assert np.all(np.isfinite(scores)) and np.all((scores > 0) & (scores < 1))
    assert "held-out chrX" in done.stdout


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_without_a_gpu_the_full_run_is_refused(tmp_path) -> None:
    done = gpu_models(tmp_path, "run", OUT=str(tmp_path / "out"), WORK=str(tmp_path / "work"))
    assert done.returncode == 2 and "DRY=1" in done.stderr
    assert not (tmp_path / "work").exists() or not any((tmp_path / "work").iterdir())


def test_an_unknown_verb_is_refused(tmp_path) -> None:
    done = gpu_models(tmp_path, "go")
    assert done.returncode == 2 and "usage" in done.stderr


def _scores(classifier, seqs: list[str]) -> np.ndarray:
    from enhscan.backend import ComputeOptions
    from enhscan.engine import WindowScorer

    return WindowScorer(classifier, ComputeOptions(batch_size=2, device="cpu")).score(seqs)
