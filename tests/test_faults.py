"""A machine that cannot take the outputs: a file-size limit (``ulimit -f``, reproducible
without root, and what a full disk looks like to a writer) ends a scan with one line, exit
status 1, no half-written file, and the finished shards kept for --resume."""

from __future__ import annotations

import resource
import signal
import subprocess
import sys
from pathlib import Path

from tests.conftest import same_files, scan_args


def scan_with_file_limit(limit: int | None, *args: str) -> subprocess.CompletedProcess:
    def apply_limit() -> None:
        # Without SIGXFSZ ignored, the kernel kills the writer; ignored, write() fails: EFBIG.
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return subprocess.run(
        [sys.executable, "-m", "enhscan", "-q", "genome", *args],
        preexec_fn=apply_limit if limit else None,
        capture_output=True,
        text=True,
    )


def leftovers(out: Path) -> list[str]:
    return sorted(p.name for p in out.iterdir() if p.name != ".enhscan-shards")


def test_outputs_too_big_for_the_limit_are_refused_before_writing(
    tmp_path, mini_fasta, tiny_model_with_null
) -> None:
    clean, out = tmp_path / "clean", tmp_path / "limited"
    assert (
        scan_with_file_limit(None, *scan_args(mini_fasta, tiny_model_with_null, clean)).returncode
        == 0
    )

    done = scan_with_file_limit(4000, *scan_args(mini_fasta, tiny_model_with_null, out))
    assert done.returncode == 1
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("Error: writing the track and calls needs")
    assert "(ulimit -f)" in line and "rerun with --resume" in line
    assert leftovers(out) == [] and any((out / ".enhscan-shards").glob("shard-*.npy"))

    args = scan_args(mini_fasta, tiny_model_with_null, out, "--resume")
    assert scan_with_file_limit(None, *args).returncode == 0
    same_files(clean, out)


def test_a_write_that_fails_is_one_line_and_leaves_nothing_half_written(
    tmp_path, mini_fasta, tiny_model_with_null
) -> None:
    out = tmp_path / "limited"
    done = scan_with_file_limit(100, *scan_args(mini_fasta, tiny_model_with_null, out))
    assert done.returncode == 1
    line = done.stderr.strip()
    assert "\n" not in line and line.startswith("Error: File too large"), done.stderr
    assert not [p for p in out.rglob("*") if "partial" in p.name]
    assert leftovers(out) == []
