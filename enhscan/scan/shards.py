"""Shards: the unit of work of a scan, and the files that make a scan resumable.

A scan's windows are cut into shards of at most ``size`` consecutive windows of one
chromosome. The cut depends on the scan plan alone (never on the number of processes or the
batch size), so every process of a multi-process run derives the same list by itself, and a
resumed run finds the same shards again.

Each finished shard is saved as a small file in ``OUT/.enhscan-shards/`` (written under a
temporary name and renamed), next to ``manifest.json``, which records what the scan is (model,
genome, settings) so that a resume with different settings is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.io.atomic import atomic_output, write_json
from enhscan.tiling import count_windows

#: Windows per shard: 20,000 is 4 Mb of genome at stride 200, about 80 KB on disk, and a few
#: minutes of a 2-core CPU with the default model.
SHARD_WINDOWS = 20_000
SHARD_DIR = ".enhscan-shards"
FORMAT = 1


@dataclass(frozen=True)
class Shard:
    """Consecutive windows of one chromosome, scored and saved as a unit.

    Attributes:
        index: position in the scan's shard list.
        chrom: chromosome.
        first: index of the shard's first window in the chromosome's tiling.
        count: number of windows.
    """

    index: int
    chrom: str
    first: int
    count: int


def make_shards(
    stretches: dict[str, list[tuple[int, int]]], window: int, stride: int, size: int
) -> list[Shard]:
    """Cut every chromosome's windows into shards of at most ``size``, chromosomes in order.

    A chromosome without windows (all its stretches shorter than a window) gets one empty
    shard, so it is reported like the others.
    """
    if size <= 0:
        raise ValueError("shard size must be positive")
    shards: list[Shard] = []
    for chrom, ivs in stretches.items():
        n = sum(count_windows(s, e, window, stride) for s, e in ivs)
        firsts = range(0, n, size) if n else [0]
        for first in firsts:
            shards.append(Shard(len(shards), chrom, first, min(size, n - first)))
    return shards


class ShardStore:
    """The folder of finished shards of one run, ``OUT/.enhscan-shards`` (or ``OUT/name``)."""

    def __init__(self, out_dir: str | os.PathLike, name: str = SHARD_DIR):
        self.folder = Path(out_dir) / name
        self.manifest_path = self.folder / "manifest.json"

    def exists(self) -> bool:
        return self.manifest_path.exists()

    def manifest(self) -> dict:
        try:
            return json.loads(self.manifest_path.read_text())
        except (OSError, json.JSONDecodeError) as err:
            raise EnhscanError(
                f"cannot read {self.manifest_path} ({err}); start the scan again with --force"
            ) from None

    def create(self, identity: dict) -> None:
        """Start an empty store for the scan ``identity`` describes (replacing any other)."""
        self.remove()
        self.folder.mkdir(parents=True)
        write_json(self.manifest_path, identity)

    def done(self) -> set[int]:
        """Indices of the shards already saved."""
        found = set()
        for path in self.folder.glob("shard-*.npy"):
            try:
                found.add(int(path.stem.removeprefix("shard-")))
            except ValueError:
                continue
        return found

    def path(self, shard: Shard) -> Path:
        return self.folder / f"shard-{shard.index:06d}.npy"

    def save(self, shard: Shard, scores: np.ndarray) -> None:
        """Save a finished shard's scores (float32 [count], NaN where skipped) atomically."""
        if len(scores) != shard.count:
            raise ValueError(f"shard {shard.index}: {len(scores)} scores for {shard.count}")
        with atomic_output(self.path(shard)) as tmp, open(tmp, "wb") as handle:
            np.save(handle, np.asarray(scores, dtype=np.float32))
            handle.flush()
            os.fsync(handle.fileno())

    def load(self, shard: Shard) -> np.ndarray:
        """A saved shard's scores, checked against the shard's size."""
        path = self.path(shard)
        try:
            scores = np.load(path)
        except FileNotFoundError:
            raise EnhscanError(
                f"shard {shard.index} ({describe(shard)}) has no file in {self.folder}: every "
                "process must write to the same --out folder (on several machines, a shared "
                "filesystem)"
            ) from None
        except (OSError, ValueError) as err:
            raise EnhscanError(
                f"cannot read {path} ({err}); delete it and rerun with --resume"
            ) from None
        if scores.shape != (shard.count,):
            raise EnhscanError(
                f"{path} holds {scores.shape} scores, not {shard.count}; delete it "
                "and rerun with --resume"
            )
        return scores

    def clean_partials(self) -> None:
        """Remove half-written shard files left by a killed run."""
        for path in self.folder.glob(".shard-*"):
            path.unlink(missing_ok=True)

    def remove(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)


def describe(shard: Shard) -> str:
    """'chr2 windows 0-19,999' for messages."""
    if shard.count == 0:
        return f"{shard.chrom}, no windows"
    return f"{shard.chrom} windows {shard.first:,}-{shard.first + shard.count - 1:,}"
