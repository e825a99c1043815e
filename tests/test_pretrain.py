"""`enhscan pretrain`: masked-LM pretraining, its folder, resuming after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from safetensors.torch import load_file

from enhscan.cli import cli
from enhscan.model import load_classifier
from enhscan.model.encoding import BpeEncoder, default_tokenizer_json, pad_batch
from enhscan.training.objectives import mask_tokens

DATA = Path(__file__).parent / "data"
QUICK = ["--arch", "tiny", "--batch-size", "4", "--seq-bases", "200", "--lr", "2e-3", "--cpu"]


def pretrain_cli(*args: str, expect: int = 0):
    result = CliRunner().invoke(cli, ["-q", "pretrain", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def test_masking_follows_bert():
    encoder = BpeEncoder(default_tokenizer_json())
    rng = np.random.default_rng(0)
    seqs = ["".join(rng.choice(list("ACGT"), 3000)) for _ in range(8)]
    ids, mask = (torch.from_numpy(a) for a in pad_batch(encoder.encode(seqs), encoder.pad_id))
    inputs, labels = mask_tokens(ids, mask, encoder, 0.15, torch.Generator().manual_seed(0))
    scored = labels != -100
    share = scored.sum().item() / mask.sum().item()
    assert 0.12 < share < 0.18
    assert torch.equal(labels[scored], ids[scored])
    assert not scored[:, 0].any() and not scored[~mask].any()  # never [CLS] or padding
    replaced = inputs[scored] == encoder.mask_id
    assert 0.7 < replaced.float().mean().item() < 0.9
    assert torch.equal(inputs[~scored], ids[~scored])  # unscored tokens untouched


def test_pretrain_loss_falls_and_the_folder_fine_tunes(tmp_path, mini_fasta):
    out = tmp_path / "base"
    pretrain_cli(
        str(mini_fasta), "--out", str(out), *QUICK, "--steps", "40", "--checkpoint-every", "10"
    )
    summary = json.loads((out / "pretraining" / "summary.json").read_text())
    losses = [h["train_loss"] for h in summary["history"]]
    assert len(losses) == 4 and losses[-1] < losses[0] - 0.3
    weights = load_file(str(out / "model.safetensors"))
    assert any(k.startswith("cls.predictions.decoder") for k in weights)
    assert not any(k.startswith(("classifier.", "bert.pooler.")) for k in weights)
    assert json.loads((out / "config.json").read_text())["model_type"] == "dnabert2"

    # A pretrained folder has no classifier head: scanning with it is refused ...
    scan = CliRunner().invoke(
        cli, ["-q", "genome", str(mini_fasta), "-m", str(out), "-o", str(tmp_path / "scan")]
    )
    assert scan.exit_code == 1 and "enhscan train --base" in scan.output
    # ... and fine-tuning takes it, encoder weights included.
    base = load_classifier(out, require_head=False)
    assert torch.equal(
        base.network.state_dict()["bert.embeddings.word_embeddings.weight"],
        weights["bert.embeddings.word_embeddings.weight"],
    )
    model = tmp_path / "model"
    result = CliRunner().invoke(
        cli,
        [
            "-q",
            "train",
            "--sequences",
            str(DATA / "cohn_sample.csv"),
            "--base",
            str(out),
            "--out",
            str(model),
            "--epochs",
            "1",
            "--window",
            "200",
            "--no-baseline",
        ],
    )
    assert result.exit_code == 0, result.output
    assert load_classifier(model).metadata.family == "dnabert2"


def test_pretrain_refuses_to_overwrite(tmp_path, mini_fasta):
    out = tmp_path / "base"
    pretrain_cli(str(mini_fasta), "--out", str(out), *QUICK, "--steps", "2")
    result = pretrain_cli(str(mini_fasta), "--out", str(out), *QUICK, "--steps", "2", expect=1)
    assert "--force" in result.output


def test_killed_pretraining_resumes_to_the_same_model(tmp_path, mini_fasta):
    args = [str(mini_fasta), *QUICK, "--steps", "30", "--checkpoint-every", "5", "--seed", "3"]
    pretrain_cli(*args, "--out", str(tmp_path / "whole"))

    cut = tmp_path / "cut"
    command = [sys.executable, "-m", "enhscan", "-q", "pretrain", *args, "--out", str(cut)]
    proc = subprocess.Popen(command, start_new_session=True)
    state = cut / "pretraining" / "checkpoint" / "state.json"
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["step"] >= 10:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        pytest.skip("the run finished before it could be killed")
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (cut / "model.safetensors").exists()
    pretrain_cli(*args, "--out", str(cut), "--resume")
    whole = load_file(str(tmp_path / "whole" / "model.safetensors"))
    resumed = load_file(str(cut / "model.safetensors"))
    for key, tensor in whole.items():
        assert torch.equal(tensor, resumed[key]), key
