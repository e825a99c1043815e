"""Shared fixtures and helpers: small real sequence, tiny random DNABERT-2 models, running
the command line (in this process through click's CliRunner, or as a real process), and
scans small enough to stop part-way."""

from __future__ import annotations

import shutil
import subprocess
import sys
import time
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


def tiny_dnabert2(seed: int = 7, **overrides):
    """A tiny DNABERT-2 classifier with random weights whose scores vary between windows.

    A wide initialisation makes the random network's outputs spread over (0, 1), so
    thresholds and calls have something to bite on. ``overrides``: config fields.
    """
    from enhscan.model import new_classifier

    shape = dict(
        initializer_range=0.5,
        num_hidden_layers=1,
        hidden_size=32,
        num_attention_heads=4,
        intermediate_size=64,
    )
    return new_classifier("tiny", seed=seed, **{**shape, **overrides})


@pytest.fixture(scope="session")
def tiny_classifier():
    """:func:`tiny_dnabert2`, built once per session."""
    return tiny_dnabert2()


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


# -- running the command line -------------------------------------------------------------------


def busy(model):
    """``model`` in eval mode with non-trivial BatchNorm affines and running statistics and
    non-zero Linear biases, so that a padding leak would show: with the fresh BatchNorm (mean
    0, var 1, no shift) padded positions stay close to zero and leaks go unnoticed."""
    import torch

    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, torch.nn.BatchNorm1d):
                module.weight.uniform_(0.5, 1.5)
                module.bias.normal_(0.0, 1.0)
                module.running_mean.normal_(0.0, 1.0)
                module.running_var.uniform_(0.5, 2.0)
            elif isinstance(module, torch.nn.Linear) and module.bias is not None:
                module.bias.normal_(0.0, 0.1)
    return model.eval()


def run_cli(*args: str, expect: int = 0):
    """``enhscan -q ARGS`` through click's CliRunner, in this process; checks the exit status
    (an unexpected exception propagates with its traceback) and returns the result."""
    from click.testing import CliRunner

    from enhscan.cli import cli

    result = CliRunner().invoke(cli, ["-q", *args], catch_exceptions=False)
    assert result.exit_code == expect, result.output
    return result


def enhscan_command(*args: str) -> list[str]:
    """The command line of ``enhscan -q genome ARGS`` as a separate process."""
    return [sys.executable, "-m", "enhscan", "-q", "genome", *args]


# -- small scans ---------------------------------------------------------------------------------

#: The output files of a scan that must be byte-identical between equivalent scans.
SCAN_FILES = ("scores.bw", "calls.narrowPeak")


def quick_settings(**fields):
    """Scan settings with small shards and chunks (many of each on the test genome), no
    progress bar; ``fields`` as :meth:`enhscan.scan.ScanSettings.of`."""
    from enhscan.scan import ScanSettings

    return ScanSettings.of(
        **{"progress": False, "shard_windows": 30, "chunk_bases": 4000, **fields}
    )


def scan_args(fasta: Path, model: Path, out: Path, *extra: str) -> list[str]:
    """``genome`` arguments of a CPU scan in shards of 30 windows."""
    return [str(fasta), "--model", str(model), "--out", str(out), "--device", "cpu",
            "--shard-windows", "30", *extra]  # fmt: skip


def same_files(a: Path, b: Path) -> None:
    """Two scan output folders hold byte-identical :data:`SCAN_FILES`."""
    for name in SCAN_FILES:
        assert (a / name).read_bytes() == (b / name).read_bytes(), name


def wait_for_shards(proc: subprocess.Popen, out: Path, n: int):
    """Wait (two minutes at most) until the scan ``proc`` writes into ``out`` has finished
    ``n`` shards, so that it can be stopped part-way; its shard store."""
    from enhscan.scan.shards import ShardStore

    store = ShardStore(out)
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        if store.folder.exists() and len(store.done()) >= n:
            break
        time.sleep(0.02)
    assert proc.poll() is None, "the scan finished before it could be stopped"
    return store


def remo_like(mini_fasta: Path, tmp_path: Path) -> Path:
    """A label BED on mini.fa's two real pieces: elements every 1.5 kb, tasks by position."""
    rows = []
    for chrom, lo, hi in (("chr2", 11_000, 59_000), ("chr22_32000000", 500, 30_000)):
        for k, start in enumerate(range(lo, hi, 1_500)):
            labels = ",".join(t for t, m in (("T1", 2), ("T2", 3)) if k % m == 0) or "."
            rows.append(f"{chrom}\t{start}\t{start + 300}\tc{k}\tm\t{labels}\n")
    path = tmp_path / "atlas.bed"
    path.write_text("".join(rows))
    return path


def atlas_genome(mini_fasta: Path, atlas: Path) -> Path:
    """A genome beside ``atlas`` (from :func:`remo_like`) holding chr2 twice, as chr2 and chrB,
    and chr22_32000000; the atlas gains chrB's copies of chr2's elements. Train on chr2,
    validate on chrB, test on chr22_32000000."""
    from enhscan.io.fasta import open_genome

    genome = atlas.parent / "two.fa"
    with open_genome(mini_fasta) as g:
        seq = g.fetch("chr2", 0, 60_000)
        other = g.fetch("chr22_32000000", 0, 30_500)
    genome.write_text(f">chr2\n{seq}\n>chr22_32000000\n{other}\n>chrB\n{seq}\n")
    atlas.write_text(
        atlas.read_text() + atlas.read_text().replace("chr2\t", "chrB\t").replace("chr22_", "x")
    )
    return genome
