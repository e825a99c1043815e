"""Shards: resuming a scan, refusing a mismatched resume, and several processes through
accelerate (gloo on the CPU) giving the very same files as one."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from enhscan.errors import EnhscanError
from enhscan.scan import scan_genome
from enhscan.scan.shards import SHARD_DIR, ShardStore, describe, make_shards
from tests.conftest import (
    SCAN_FILES,
    enhscan_command,
    quick_settings,
    same_files,
    scan_args,
    tiny_dnabert2,
    wait_for_shards,
)


def interrupted_scan(monkeypatch, mini_fasta, model, out: Path, after: int, **kw) -> None:
    """A scan stopped by Ctrl-C once ``after`` shards are saved."""
    real = ShardStore.save
    saved = {"n": 0}

    def save(self, shard, scores):
        if saved["n"] == after:
            raise KeyboardInterrupt
        real(self, shard, scores)
        saved["n"] += 1

    monkeypatch.setattr(ShardStore, "save", save)
    with pytest.raises(KeyboardInterrupt):
        scan_genome(mini_fasta, out, model, quick_settings(**kw))
    monkeypatch.setattr(ShardStore, "save", real)


def test_make_shards_cut_the_windows_in_genome_order_across_sequences() -> None:
    # a: 46 windows; b: none (shorter than a window); c: 11 + 16 windows in two stretches.
    stretches = {"a": [(0, 10_000)], "b": [(0, 500)], "c": [(0, 3000), (5000, 9000)]}
    shards = make_shards(stretches, 1000, 200, 20)
    pieces = [[(p.chrom, p.first, p.count) for p in s.pieces] for s in shards]
    assert [s.index for s in shards] == list(range(6))
    # 2, 5 and 10 windows first (an eighth, a quarter, a half), then 20 a shard.
    assert pieces == [
        [("a", 0, 2)],
        [("a", 2, 5)],
        [("a", 7, 10)],
        [("a", 17, 20)],
        [("a", 37, 9), ("b", 0, 0), ("c", 0, 11)],
        [("c", 11, 16)],
    ]
    assert [s.count for s in shards] == [2, 5, 10, 20, 20, 16]
    assert describe(shards[4]) == "a window 37 to c window 10"
    assert describe(shards[5]) == "c windows 11-26"
    # Many small sequences share shards: 1,000 of 3 windows each fill 20-window shards.
    many = make_shards({f"s{i}": [(0, 1400)] for i in range(1000)}, 1000, 200, 20)
    assert [s.count for s in many[:5]] == [2, 5, 10, 20, 20] and len(many) == 3 + 3000 // 20
    assert sum(s.count for s in many) == 3000
    with pytest.raises(ValueError):
        make_shards(stretches, 1000, 200, 0)


def test_resumed_scan_equals_an_uninterrupted_one(
    tmp_path, monkeypatch, mini_fasta, tiny_model_with_null
) -> None:
    model = tiny_model_with_null  # a stored null: FDR calls are made after all shards are in
    clean = tmp_path / "clean"
    scan_genome(mini_fasta, clean, model, quick_settings())
    assert not (clean / SHARD_DIR).exists()  # removed once the run is complete
    assert (clean / "calls.narrowPeak").read_text().count("\n") > 3

    out = tmp_path / "killed"
    interrupted_scan(monkeypatch, mini_fasta, model, out, after=5)
    assert len(ShardStore(out).done()) == 5
    assert not any((out / name).exists() for name in SCAN_FILES)

    record = scan_genome(mini_fasta, out, model, quick_settings(resume=True))
    same_files(clean, out)
    assert record["shards"]["resumed"] == 5
    assert not (out / SHARD_DIR).exists()


def test_a_resume_may_change_the_calling_rule(
    tmp_path, monkeypatch, mini_fasta, tiny_model_with_null
) -> None:
    """Calls are made once all shards are in, so a resume may ask for another rule."""
    clean = tmp_path / "clean"
    scan_genome(mini_fasta, clean, tiny_model_with_null, quick_settings(fdr=0.001))
    out = tmp_path / "killed"
    interrupted_scan(monkeypatch, mini_fasta, tiny_model_with_null, out, after=5)
    scan_genome(mini_fasta, out, tiny_model_with_null, quick_settings(resume=True, fdr=0.001))
    same_files(clean, out)


def test_unfinished_scan_needs_resume_or_force(
    tmp_path, monkeypatch, mini_fasta, tiny_classifier
) -> None:
    out = tmp_path / "o"
    interrupted_scan(monkeypatch, mini_fasta, tiny_classifier, out, after=3)
    with pytest.raises(
        EnhscanError,
        match=r"holds an unfinished scan \(3 shards done\); "
        "continue it with --resume, or start again with --force",
    ):
        scan_genome(mini_fasta, out, tiny_classifier, quick_settings())
    record = scan_genome(mini_fasta, out, tiny_classifier, quick_settings(force=True))
    assert record["shards"]["resumed"] == 0


def test_resume_with_other_settings_is_refused(
    tmp_path, monkeypatch, mini_fasta, tiny_classifier
) -> None:

    out = tmp_path / "o"
    interrupted_scan(monkeypatch, mini_fasta, tiny_classifier, out, after=2)
    with pytest.raises(EnhscanError) as caught:
        scan_genome(
            mini_fasta, out, tiny_classifier, quick_settings(resume=True, stride=300, threshold=0.9)
        )
    message = str(caught.value)
    assert message.startswith(f"cannot resume the scan in {out}: ")
    assert "--stride (200 then, 300 now)" in message and "--threshold" not in message
    assert "the model" not in message
    other = tiny_dnabert2(seed=99)
    with pytest.raises(EnhscanError, match="the model"):
        scan_genome(mini_fasta, out, other, quick_settings(resume=True))
    with pytest.raises(EnhscanError, match="--batch-size"):
        scan_genome(mini_fasta, out, tiny_classifier, quick_settings(resume=True, batch_size=7))
    assert len(ShardStore(out).done()) == 2  # refusing keeps the finished work


def test_keep_shards(tmp_path, mini_fasta, tiny_classifier) -> None:
    out = tmp_path / "o"
    record = scan_genome(mini_fasta, out, tiny_classifier, quick_settings(keep_shards=True))
    store = ShardStore(out)
    assert store.exists() and len(store.done()) == record["shards"]["total"]


def test_a_failing_shard_is_named_and_finished_ones_kept(
    tmp_path, monkeypatch, mini_fasta, tiny_classifier
) -> None:
    from enhscan.engine import WindowScorer

    real = WindowScorer.run
    calls = {"n": 0}

    def run(self, batches, n=None):
        calls["n"] += 1
        if calls["n"] == 8:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return real(self, batches, n)

    monkeypatch.setattr(WindowScorer, "run", run)
    out = tmp_path / "o"
    with pytest.raises(EnhscanError) as caught:
        scan_genome(mini_fasta, out, tiny_classifier, quick_settings())
    message = str(caught.value)
    done = len(ShardStore(out).done())
    assert done > 0
    assert message.startswith("process 0 stopped on shard ")
    assert "CUDA error: an illegal memory access was encountered (RuntimeError)" in message
    assert f"the {done} finished shards are kept in {out / SHARD_DIR}" in message


# --- several processes (accelerate launch, gloo on the CPU) -----------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_and_two_machines_write_the_same_files(
    tmp_path, mini_fasta, tiny_model_with_null
) -> None:
    tiny_model_dir = tiny_model_with_null  # a stored null: FDR calls after all shards
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    one = tmp_path / "one"
    subprocess.run(
        enhscan_command(*scan_args(mini_fasta, tiny_model_dir, one)), check=True, env=env
    )

    two = tmp_path / "two"
    # --device auto: on a machine without GPUs the processes must still find each other.
    args = scan_args(mini_fasta, tiny_model_dir, two, "--processes", "2")
    args.remove("--device")
    args.remove("cpu")
    subprocess.run(enhscan_command(*args), check=True, env=env)
    same_files(one, two)
    assert (one / "calls.narrowPeak").read_text().count("\n") > 3
    assert json.loads((two / "run.json").read_text())["processes"] == 2

    # Two "machines" of one process each, on this host: accelerate's multi-machine options.
    port = str(free_port())
    machines = tmp_path / "machines"
    launches = [
        subprocess.Popen(
            [
                sys.executable,
                "-m",
                "accelerate.commands.launch",
                "--multi_gpu",
                "--num_processes",
                "2",
                "--num_machines",
                "2",
                "--machine_rank",
                str(rank),
                "--main_process_ip",
                "127.0.0.1",
                "--main_process_port",
                port,
                "--mixed_precision",
                "no",
                "--dynamo_backend",
                "no",
                "-m",
                "enhscan",
                "-q",
                "genome",
                *scan_args(mini_fasta, tiny_model_dir, machines),
            ],
            env=env,
        )
        for rank in (0, 1)
    ]
    assert [p.wait(timeout=300) for p in launches] == [0, 0]
    same_files(one, machines)
    assert json.loads((machines / "run.json").read_text())["processes"] == 2


def test_scan_killed_with_sigkill_then_resumed_equals_a_clean_scan(
    tmp_path, mini_fasta, tiny_model_with_null
) -> None:
    tiny_model_dir = tiny_model_with_null  # a stored null: FDR calls after all shards
    extra = ("--stride", "50", "--batch-size", "1")  # slow enough to be killed part-way
    clean = tmp_path / "clean"
    subprocess.run(
        enhscan_command(*scan_args(mini_fasta, tiny_model_dir, clean, *extra)), check=True
    )

    out = tmp_path / "killed"
    proc = subprocess.Popen(enhscan_command(*scan_args(mini_fasta, tiny_model_dir, out, *extra)))
    store = wait_for_shards(proc, out, 3)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(store.done())
    assert done >= 3 and not (out / "scores.bw").exists()

    subprocess.run(
        enhscan_command(*scan_args(mini_fasta, tiny_model_dir, out, *extra, "--resume")),
        check=True,
    )
    same_files(clean, out)


def test_batch_invariant_scans_are_byte_identical_across_batch_sizes(
    tmp_path, monkeypatch, mini_fasta, tiny_classifier
) -> None:
    runs = {}
    for batch_size in (1, 7, 64):
        out = tmp_path / f"bs{batch_size}"
        scan_genome(
            mini_fasta,
            out,
            tiny_classifier,
            quick_settings(batch_invariant=True, batch_size=batch_size),
        )
        runs[batch_size] = out
    same_files(runs[1], runs[7])
    same_files(runs[1], runs[64])
    # ... so a resume may use another batch size (a GPU with other free memory, say).
    out = tmp_path / "resumed"
    interrupted_scan(
        monkeypatch, mini_fasta, tiny_classifier, out, after=4, batch_invariant=True, batch_size=3
    )
    scan_genome(
        mini_fasta,
        out,
        tiny_classifier,
        quick_settings(resume=True, batch_invariant=True, batch_size=50),
    )
    same_files(runs[1], out)


def test_many_scaffolds_share_shards_and_batches_and_score_as_each_alone(
    tmp_path, mini_fasta, tiny_classifier
) -> None:
    """An assembly of many small scaffolds: shards and batches cross sequence boundaries, and
    every window scores as it does when its scaffold is scanned alone."""
    import numpy as np
    import pyBigWig

    from enhscan.io.fasta import open_genome

    rng = np.random.default_rng(5)
    with open_genome(mini_fasta) as genome:
        chr2 = genome.fetch("chr2", 0, 60_000)
    scaffolds, at = {}, 11_000  # chr2 of mini.fa is N up to 11 kb
    for k in range(30):
        length = int(rng.integers(1000, 2600)) if k != 3 else 600  # one shorter than a window
        seq = chr2[at : at + length]
        if k == 5:
            seq = seq[:300] + "N" * 400 + seq[700:]  # windows with N are skipped
        scaffolds[f"scaffold_{k}"] = seq
        at += length
    fasta = tmp_path / "draft.fa"
    fasta.write_text("".join(f">{name}\n{seq}\n" for name, seq in scaffolds.items()))
    settings = {
        "kernels": "plain",
        "batch_invariant": True,
        "batch_size": 7,
        "track": "probability",
    }
    whole = tmp_path / "whole"
    record = scan_genome(fasta, whole, tiny_classifier, quick_settings(**settings))
    assert record["shards"]["total"] < len(scaffolds) / 2  # shards hold several scaffolds
    assert record["stages"]["chunks"] < len(scaffolds) - 1  # and so do the batches
    with pyBigWig.open(str(whole / "scores.bw")) as bw:
        assert list(bw.chroms()) == list(scaffolds)
        together = {name: bw.intervals(name) for name in scaffolds}
    assert together["scaffold_3"] is None and together["scaffold_5"]
    for name in ("scaffold_0", "scaffold_5", "scaffold_17", "scaffold_29"):
        alone = tmp_path / name
        scan_genome(fasta, alone, tiny_classifier, quick_settings(chroms=[name], **settings))
        with pyBigWig.open(str(alone / "scores.bw")) as bw:
            assert bw.intervals(name) == together[name], name
