"""Interrupted runs: Ctrl-C and SIGTERM stop a scan with one line saying what was kept and the
command that continues it (exit status 130 / 143), and that command finishes the scan."""

from __future__ import annotations

import json
import shlex
import signal
import subprocess
import sys

import pytest

from enhscan.cli.interrupts import training_hint
from tests.conftest import enhscan_command, same_files, scan_args, wait_for_shards

SLOW = ("--stride", "50", "--batch-size", "1")  # slow enough to be stopped part-way


@pytest.mark.parametrize(("sig", "status", "name"), [(signal.SIGINT, 130, "Ctrl-C"),
                                                     (signal.SIGTERM, 143, "SIGTERM")])  # fmt: skip
def test_interrupted_scan_says_how_to_resume(
    tmp_path, mini_fasta, tiny_model_with_null, sig, status, name
) -> None:
    clean = tmp_path / "clean"
    args = scan_args(mini_fasta, tiny_model_with_null, clean, *SLOW)
    subprocess.run(enhscan_command(*args), check=True)

    out = tmp_path / "stopped"
    proc = subprocess.Popen(
        enhscan_command(*scan_args(mini_fasta, tiny_model_with_null, out, *SLOW)),
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for_shards(proc, out, 2)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == status, err
    line = err.strip().splitlines()[-1]
    assert line.startswith(f"Error: interrupted ({name}); ") and "finished shards kept" in line
    assert not (out / "scores.bw").exists()

    command = shlex.split(line.split("continue with: ")[1])
    assert command[0] == "enhscan" and command[-1] == "--resume"
    subprocess.run([sys.executable, "-m", "enhscan", *command[1:]], check=True)
    same_files(clean, out)


def test_interrupted_training_names_its_checkpoint(tmp_path) -> None:
    from tests.test_loop import run

    assert "no checkpoint was written yet" in training_hint(tmp_path / "none")
    run(tmp_path / "model" / "training" / "work", stop_after_round=2)
    hint = training_hint(tmp_path / "model")
    assert "after 2 rounds (16 steps)" in hint
    assert str(tmp_path / "model" / "training" / "work" / "checkpoint") in hint
    assert hint.endswith("--resume")
    state = json.loads((tmp_path / "model/training/work/checkpoint/state.json").read_text())
    assert state["step"] == 16
