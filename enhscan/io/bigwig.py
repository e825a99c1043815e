"""Score tracks as bigWig (with pyBigWig): written one chromosome at a time, and read."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from enhscan.errors import EnhscanError


def bigwig_size_bound(n_intervals: int, n_chroms: int) -> int:
    """Bytes a bigWig of ``n_intervals`` intervals can take at most: 12 bytes per interval
    before compression, at most as much again for the zoom levels (each a quarter of the one
    below, 32 bytes a record), the chromosome tree and a megabyte for headers and index."""
    return 24 * n_intervals + 64 * n_chroms + (1 << 20)


@contextmanager
def open_bigwig(path: str | os.PathLike) -> Iterator:
    """A bigWig opened for reading: pyBigWig's handle (``chroms()``, ``values()``,
    ``stats()``), closed on leaving the block.

    Raises:
        EnhscanError: the file is missing or is not a bigWig.
    """
    import pyBigWig

    try:
        handle = pyBigWig.open(str(path))
    except RuntimeError:  # pyBigWig's only word on an unreadable file
        handle = None
    if handle is None or not handle.isBigWig():
        if handle is not None:
            handle.close()
        raise EnhscanError(f"cannot read {path} as a bigWig; give the scores.bw of a scan")
    try:
        yield handle
    finally:
        handle.close()


class BigWigWriter:
    """A bigWig file being written, chromosome by chromosome, in header order.

    Args:
        path: file to create (the caller renames it into place when the run completes).
        chrom_sizes: ``(name, length)`` for every sequence of the genome, in FASTA order; the
            header lists them all (but empty ones), so the track lines up with the genome in a
            browser.
    """

    def __init__(self, path: str | os.PathLike, chrom_sizes: list[tuple[str, int]]):
        import pyBigWig

        self._bw = pyBigWig.open(str(path), "w")
        if self._bw is None:
            raise EnhscanError(f"cannot create bigWig file {path}; check the folder is writable")
        # maxZooms=10: zoom levels let IGV and UCSC draw a whole chromosome quickly. A FASTA
        # record without bases has no place in a bigWig (readers fail on a 0-length entry).
        self._bw.addHeader([(c, n) for c, n in chrom_sizes if n > 0], maxZooms=10)

    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        """Add intervals ``[starts[i], ends[i])`` with ``values[i]`` on ``chrom``.

        Arrays of equal length, sorted, non-overlapping; values are stored as float32.
        Chromosomes must come in header order.
        """
        if len(starts) == 0:
            return
        self._bw.addEntries(
            [chrom] * len(starts),
            np.asarray(starts, dtype=np.int64).tolist(),
            ends=np.asarray(ends, dtype=np.int64).tolist(),
            values=np.asarray(values, dtype=np.float64).tolist(),
        )

    def close(self) -> None:
        """Write the index and zoom levels and close the file."""
        if self._bw is not None:
            self._bw.close()
            self._bw = None
