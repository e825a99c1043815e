"""benchmarks/gpu_check.py in its dry mode: the same steps on the CPU at tiny sizes, so the
script a lent GPU runs is known to work before the GPU is there."""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "benchmarks" / "gpu_check.py"
CHR20 = ROOT.parent / "shared" / "data" / "genomes" / "grch37_chr20.fa.gz"
needs_chr20 = pytest.mark.skipif(not CHR20.exists(), reason="needs ../shared/data")


def gpu_check(out: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(out), *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )


def check_report(out: Path, ran: set[str]) -> dict:
    results = {r["name"]: r for r in json.loads((out / "results.json").read_text())}
    assert {n for n, r in results.items() if r["status"] == "ok"} == ran, results
    assert all(r["status"] == "skipped" for n, r in results.items() if n not in ran)
    summary = (out / "summary.md").read_text()
    assert "| step | status | seconds | numbers |" in summary
    with tarfile.open(out / "logs.tar.gz") as tar:
        logs = {Path(name).name for name in tar.getnames()}
    assert {f"{name}.log" for name in ran if name != "compile"} <= logs
    return results


@needs_chr20
def test_dry_run_of_the_quick_steps(tmp_path) -> None:
    steps = ["tests", "train", "pretrain", "training_speed", "variants"]
    done = gpu_check(tmp_path, "--dry", *[f"--only={s}" for s in steps])
    assert done.returncode == 0, done.stdout + done.stderr
    results = check_report(tmp_path, set(steps))
    tests = results["tests"]["numbers"]
    assert tests["failed"] == tests["error"] == tests["passed"] == 0 and tests["skipped"] >= 7
    assert {"first_loss", "last_loss"} <= set(results["train"]["numbers"])
    assert results["pretrain"]["numbers"]["windows/s (whole command)"] > 0
    table = results["training_speed"]["numbers"]["table"]
    assert "| tiny | multi-task + masked LM |" in table
    assert "| enhscan variants (end to end) |" in results["variants"]["numbers"]["table"]


@pytest.mark.slow
@needs_chr20
def test_dry_run_of_every_step(tmp_path) -> None:
    done = gpu_check(tmp_path, "--dry")
    assert done.returncode == 0, done.stdout + done.stderr
    every = {r["name"] for r in json.loads((tmp_path / "results.json").read_text())}
    results = check_report(tmp_path, every)
    assert results["compile"]["numbers"]["max score difference"] < 1e-4


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is here")
def test_without_a_gpu_it_asks_for_the_dry_mode(tmp_path) -> None:
    done = gpu_check(tmp_path)
    assert done.returncode != 0 and "--dry" in done.stderr
    assert not (tmp_path / "summary.md").exists()
