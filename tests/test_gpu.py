"""CUDA paths: run only where PyTorch sees a GPU (``pytest -m gpu``; skipped everywhere else,
CI included). `benchmarks/gpu_check.sh` runs them first on a lent GPU.

Tolerances: fp32 on the GPU against fp32 on the CPU within 1e-4 (reduction order differs);
bf16 autocast within 0.02 in probability (8 mantissa bits through a few layers of a random
network; the benchmark reports the real model's difference)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer
from enhscan.io.fasta import open_genome
from tests.conftest import same_files, wait_for_shards

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

FP32_TOLERANCE = 1e-4
BF16_TOLERANCE = 0.02


@pytest.fixture(scope="module")
def small_classifier():
    """The DNABERT-2 "small" shape with random weights spread wide enough to vary."""
    from enhscan.model import new_classifier

    return new_classifier("small", seed=3, initializer_range=0.2)


@pytest.fixture(scope="module")
def windows(mini_fasta_source) -> list[str]:
    with open_genome(mini_fasta_source) as genome:
        seq = genome.fetch("chr2", 0, 40_000)
    return [seq[s : s + 1000] for s in range(0, 39_000, 300)]


def scores(classifier, windows, device, dtype="fp32", **kwargs) -> np.ndarray:
    kwargs.setdefault("batch_size", 16)
    scorer = WindowScorer(classifier, ComputeOptions(device, dtype, **kwargs))
    try:
        return scorer.score(windows)
    finally:
        classifier.network.to("cpu")


def test_cuda_fp32_and_bf16_agree_with_the_cpu(small_classifier, windows) -> None:
    cpu = scores(small_classifier, windows, "cpu", kernels="plain")
    fp32 = scores(small_classifier, windows, "cuda")
    bf16 = scores(small_classifier, windows, "cuda", "bf16")
    assert cpu.std() > 0.01  # the windows do score differently
    assert np.abs(fp32 - cpu).max() < FP32_TOLERANCE
    assert np.abs(bf16 - cpu).max() < BF16_TOLERANCE


def test_pinned_and_pageable_copies_give_the_same_scores(small_classifier, windows) -> None:
    scorer = WindowScorer(small_classifier, ComputeOptions("cuda", batch_size=16))
    pinned = scorer.score(windows)
    scorer._pin = False
    pageable = scorer.score(windows)
    small_classifier.network.to("cpu")
    assert np.array_equal(pinned, pageable)


def test_compiled_model_gives_the_same_scores(small_classifier, windows) -> None:
    plain = scores(small_classifier, windows, "cuda")
    compiled = scores(small_classifier, windows, "cuda", compile=True)
    assert np.abs(plain - compiled).max() < FP32_TOLERANCE


def test_memory_probe_picks_a_batch_that_runs_on_the_117m_shape() -> None:
    from enhscan.model import new_classifier

    classifier = new_classifier("base", seed=0)
    scorer = WindowScorer(classifier, ComputeOptions("cuda", "bf16", batch_size=None))
    assert scorer.batch_size >= 8
    # Random sequence tokenizes into more tokens than real DNA: the hardest full batch.
    rng = np.random.default_rng(0)
    n = scorer.batch_size + 3
    seqs = ["".join(rng.choice(list("ACGT"), 1000)) for _ in range(n)]
    got = scorer.score(seqs)
    assert got.shape == (n,) and np.isfinite(got).all()
    del scorer, classifier
    torch.cuda.empty_cache()


def genome_command(fasta: Path, model: Path, out: Path, *extra: str) -> list[str]:
    return [sys.executable, "-m", "enhscan", "-q", "genome", str(fasta), "--model", str(model),
            "--out", str(out), "--device", "cuda:0", "--shard-windows", "30", *extra]  # fmt: skip


def test_two_processes_sharing_one_gpu_equal_one(tmp_path, mini_fasta, tiny_model_with_null):
    extra = ("--batch-size", "8")
    one, two = tmp_path / "one", tmp_path / "two"
    subprocess.run(genome_command(mini_fasta, tiny_model_with_null, one, *extra), check=True)
    command = genome_command(mini_fasta, tiny_model_with_null, two, *extra, "--processes", "2")
    subprocess.run(command, check=True)
    same_files(one, two)
    assert json.loads((two / "run.json").read_text())["processes"] == 2


def test_scan_killed_then_resumed_on_the_gpu_equals_a_clean_one(
    tmp_path, mini_fasta, tiny_model_with_null
) -> None:
    extra = ("--stride", "50", "--batch-size", "1")
    clean, out = tmp_path / "clean", tmp_path / "killed"
    subprocess.run(genome_command(mini_fasta, tiny_model_with_null, clean, *extra), check=True)
    proc = subprocess.Popen(genome_command(mini_fasta, tiny_model_with_null, out, *extra))
    wait_for_shards(proc, out, 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    command = genome_command(mini_fasta, tiny_model_with_null, out, *extra, "--resume")
    subprocess.run(command, check=True)
    same_files(clean, out)


def test_bf16_training_loss_falls(tmp_path, mini_fasta) -> None:
    from enhscan.training.multitask import read_label_bed, with_any_task
    from enhscan.training.multitask_pipeline import new_multitask
    from enhscan.training.multitask_windows import draw_split
    from enhscan.training.trainer import TrainSettings, fit

    bed = tmp_path / "elements.bed"
    bed.write_text("".join(f"chr2\t{s}\t{s + 300}\t.\t.\tA\n" for s in range(2000, 58_000, 1500)))
    with open_genome(mini_fasta) as genome:
        elements = with_any_task(read_label_bed(bed, genome.lengths, column=6))
        train = draw_split(genome, elements, ["chr2"], 256, 300, seed=1)
        val = draw_split(genome, elements, ["chr2"], 64, 300, seed=2)
    settings = TrainSettings(
        epochs=4, batch_size=32, learning_rate=3e-3, warmup_ratio=0.0, mixed_precision="bf16"
    )
    for arch in ("cnn", "tiny"):
        classifier = new_multitask(arch, elements.tasks, 300, seed=0)
        result = fit(classifier, train.seqs, train.targets, val.seqs, val.targets, settings,
                     tmp_path / arch, progress=False)  # fmt: skip
        losses = [h["train_loss"] for h in result.history]
        assert losses[-1] < losses[0], (arch, losses)


def test_bf16_training_evaluates_the_moving_average_itself(tmp_path) -> None:
    # prepare wraps a network's forward for autocast; the average, copied before that, must
    # run on its own weights (a copy made after it would call the live network's forward).
    from enhscan.training import loop

    x = torch.randn(64, 3)
    data = [{"x": x[i], "y": x[i].sum()} for i in range(64)]
    seen = []

    def evaluate(network):
        probe = x[:4].to(network.weight.device)
        with torch.no_grad():
            seen.append((network(probe).float(), probe @ network.weight.T + network.bias))
        return {"score": 0.0}

    class Regression:
        def loss(self, model, batch):
            return torch.nn.functional.mse_loss(model(batch["x"]).squeeze(-1), batch["y"]), {}

        def summary(self, totals):
            return {}

    settings = loop.LoopSettings(learning_rate=0.05, warmup_ratio=0.0, weight_decay=0.0,
                                 patience=0, mixed_precision="bf16", ema_decay=0.9)  # fmt: skip
    source = loop.EpochBatches(data, 16, torch.utils.data.default_collate, 3)
    loop.train(torch.nn.Linear(3, 1), source, Regression(), settings, tmp_path,
               evaluate=evaluate, progress=False)  # fmt: skip
    assert len(seen) == 3
    for output, own in seen:
        assert torch.allclose(output, own, atol=1e-4)
