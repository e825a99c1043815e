"""Shards: the unit of work of a scan, and the files that make a scan resumable.

A scan's windows, taken in genome order (chromosomes in FASTA order, each chromosome's
windows in order), are cut into shards of consecutive windows. A shard may cross from one
sequence into the next, so an assembly of many small scaffolds fills its shards (and the
model's batches) as fully as one chromosome does. The first shards are smaller (an eighth, a
quarter, then half of ``size`` windows; see :func:`shard_sizes`), so a run stopped early
keeps some finished work. The cut depends on the scan plan alone (never on the number of
processes or the batch size), so every process of a multi-process run derives the same list
by itself, and a resumed run finds the same shards again.

Each finished shard is saved as a small file in ``OUT/.enhscan-shards/`` (written under a
temporary name and renamed), next to ``manifest.json``, which records what the scan is (model,
genome, settings) so that a resume with different settings is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
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
#: 2: shards cross sequence boundaries and the first ones are smaller (1: one chromosome each).
FORMAT = 2

#: The first shards hold size // 8, size // 4 and size // 2 windows.
_RAMP = (8, 4, 2)


@dataclass(frozen=True)
class Piece:
    """Consecutive windows of one chromosome: ``count`` windows from window ``first`` of its
    tiling."""

    chrom: str
    first: int
    count: int


@dataclass(frozen=True)
class Shard:
    """Consecutive windows of the scan, scored and saved as a unit.

    Attributes:
        index: position in the scan's shard list.
        pieces: the shard's windows, chromosome by chromosome, in genome order. A chromosome
            without windows is a piece of 0 windows, so it is reported like the others.
    """

    index: int
    pieces: tuple[Piece, ...]

    @classmethod
    def of(cls, index: int, chrom: str, first: int, count: int) -> Shard:
        """A shard of one piece."""
        return cls(index, (Piece(chrom, first, count),))

    @property
    def count(self) -> int:
        """Windows in the shard."""
        return sum(p.count for p in self.pieces)

    def slices(self) -> Iterator[tuple[Piece, slice]]:
        """Each piece with the part of the shard's scores that belongs to it."""
        at = 0
        for piece in self.pieces:
            yield piece, slice(at, at + piece.count)
            at += piece.count


def shard_sizes(size: int) -> Iterator[int]:
    """Windows of shard 0, 1, 2, ...: ``size // 8``, ``size // 4``, ``size // 2`` (at least 1),
    then ``size``."""
    if size <= 0:
        raise ValueError("shard size must be positive")
    for divisor in _RAMP:
        yield max(1, size // divisor)
    while True:
        yield size


def make_shards(
    stretches: dict[str, list[tuple[int, int]]], window: int, stride: int, size: int
) -> list[Shard]:
    """Cut the scan's windows, in genome order, into shards of :func:`shard_sizes` windows
    (module docstring); the last shard holds what is left."""
    capacities = shard_sizes(size)
    shards: list[Shard] = []
    pieces: list[Piece] = []
    room = next(capacities)
    for chrom, ivs in stretches.items():
        n = sum(count_windows(s, e, window, stride) for s, e in ivs)
        if n == 0:
            pieces.append(Piece(chrom, 0, 0))
        first = 0
        while first < n:
            take = min(room, n - first)
            pieces.append(Piece(chrom, first, take))
            first += take
            room -= take
            if room == 0:
                shards.append(Shard(len(shards), tuple(pieces)))
                pieces, room = [], next(capacities)
    if pieces:
        shards.append(Shard(len(shards), tuple(pieces)))
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
        """Save a finished shard's scores (float32 [count], or [count, tasks]; NaN where
        skipped) atomically."""
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
        if scores.ndim not in (1, 2) or len(scores) != shard.count:
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

    def remove_if_empty(self) -> bool:
        """Remove the store if no shard was finished: a run stopped before its first shard
        leaves nothing to resume, and nothing that would stand in a fresh start's way.
        Whether nothing is kept (no shard finished, whether or not the store was made)."""
        if self.done():
            return False
        self.remove()
        return True


def describe(shard: Shard) -> str:
    """'chr2 windows 0-19,999' (or 'scaffold_7 window 3 to scaffold_90 window 0') for
    messages."""
    first, last = shard.pieces[0], shard.pieces[-1]
    if shard.count == 0:
        return f"{first.chrom}, no windows"
    if first.chrom == last.chrom:
        return f"{first.chrom} windows {first.first:,}-{first.first + first.count - 1:,}"
    end = last.first + last.count - 1
    return f"{first.chrom} window {first.first:,} to {last.chrom} window {end:,}"
