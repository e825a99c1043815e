"""Writing score tracks as bedGraph text, one chromosome at a time."""

from __future__ import annotations

import os

import numpy as np


class BedGraphWriter:
    """A bedGraph file being written: ``chrom start end value`` lines, 0-based half-open,
    sorted by chromosome (in the order added) and start, no header, values to 6 significant
    digits. Same interface as :class:`enhscan.io.bigwig.BigWigWriter`.
    """

    def __init__(self, path: str | os.PathLike):
        self._out = open(path, "w")

    def add(self, chrom: str, starts: np.ndarray, ends: np.ndarray, values: np.ndarray) -> None:
        """Add intervals ``[starts[i], ends[i])`` with ``values[i]`` on ``chrom``."""
        self._out.writelines(
            f"{chrom}\t{s}\t{e}\t{v:.6g}\n"
            for s, e, v in zip(starts.tolist(), ends.tolist(), values.tolist(), strict=True)
        )

    def close(self) -> None:
        if not self._out.closed:
            self._out.close()
