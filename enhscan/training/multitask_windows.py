"""Windows for multi-task training, drawn over a genome: centred on elements (with a random
shift) and on random background, split by chromosome.

A share ``element_share`` of the windows is centred on an element (an element of any task,
drawn uniformly), moved by a uniform shift of at most ``shift`` bases; the others start
uniformly at random on their sequences (drawn in proportion to length). Windows with more than
``max_n`` non-ACGT bases, windows touching ``exclude`` and repeats are drawn again. The same
genome, elements, sequences and seed give the same windows. Coordinates are 0-based,
half-open.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.intervals import Interval, centred_start, touches
from enhscan.io.fasta import Genome
from enhscan.sequence import count_non_acgt
from enhscan.training.multitask import TaskElements, window_targets

# Rounds of draws before giving up on sequences with too few usable windows.
_MAX_ROUNDS = 30


@dataclass
class MultitaskSplit:
    """The windows of one split.

    Attributes:
        chroms: sequences the windows were drawn from.
        seqs: upper-case window sequences.
        positions: ``(chrom, start)`` of each window.
        targets: uint8 [n, tasks].
        centred: bool [n], True for element-centred windows.
    """

    chroms: list[str]
    seqs: list[str]
    positions: list[tuple[str, int]]
    targets: np.ndarray
    centred: np.ndarray

    def summary(self, tasks: list[str]) -> dict:
        """Counts for the report: windows, element-centred, positives per task."""
        return {
            "sequences": self.chroms,
            "windows": len(self.seqs),
            "element_centred": int(self.centred.sum()),
            "positives": {t: int(self.targets[:, i].sum()) for i, t in enumerate(tasks)},
        }


def draw_split(
    genome: Genome,
    elements: TaskElements,
    chroms: list[str],
    n: int,
    window: int,
    *,
    centre_bin: int = 200,
    element_share: float = 0.5,
    shift: int = 200,
    max_n: int = 0,
    exclude: dict[str, list[Interval]] | None = None,
    seed: int = 0,
) -> MultitaskSplit:
    """``n`` windows of ``chroms`` with their targets (module docstring).

    Raises:
        EnhscanError: no sequence a window long, or too few usable windows.
    """
    if not 0 <= element_share <= 1:
        raise EnhscanError(f"--element-share must be in [0, 1], got {element_share}")
    chroms = [c for c in chroms if genome.lengths[c] >= window]
    if not chroms:
        raise EnhscanError(f"no sequence of this split is {window:,} bp long")
    rng = np.random.default_rng(seed)
    n_centred = int(round(n * element_share))
    centres = _element_centres(elements, chroms)
    if n_centred and not len(centres[0]):
        raise EnhscanError(f"no element lies on {', '.join(chroms[:5])}; lower --element-share")
    picked: dict[tuple[str, int], tuple[bool, str]] = {}
    have = {True: 0, False: 0}  # element-centred and random windows kept so far
    quota = {True: n_centred, False: n - n_centred}
    tried = {True: 0, False: 0}
    for _ in range(_MAX_ROUNDS):
        if have == quota:
            break
        # Draw as many as the success rate so far says are needed (mostly-N sequences keep
        # few of their draws), and a few more.
        want = {k: _draws_needed(quota[k] - have[k], have[k], tried[k]) for k in (True, False)}
        draws = [
            *_centred_draws(rng, genome, centres, want[True], window, shift),
            *_random_draws(rng, genome, chroms, want[False], window),
        ]
        for chrom, start, centred in draws:
            tried[centred] += 1
            key = (chrom, start)
            if have[centred] >= quota[centred] or key in picked:
                continue
            if _blocked(exclude, chrom, start, start + window):
                continue
            seq = genome.fetch(chrom, start, start + window)
            if count_non_acgt(seq) > max_n:
                continue
            picked[key] = (centred, seq)
            have[centred] += 1
    if len(picked) < n:
        raise EnhscanError(
            f"found only {len(picked):,} of {n:,} usable windows on {', '.join(chroms[:5])}; "
            "ask for fewer windows, or raise --max-n"
        )
    return _split(elements, chroms, picked, window, centre_bin)


def _split(elements, chroms, picked, window, centre_bin) -> MultitaskSplit:
    positions = list(picked)
    seqs = [picked[p][1] for p in positions]
    targets = np.zeros((len(positions), len(elements.tasks)), dtype=np.uint8)
    for chrom in chroms:
        rows = [i for i, (c, _) in enumerate(positions) if c == chrom]
        if rows:
            starts = np.array([positions[i][1] for i in rows], dtype=np.int64)
            targets[rows] = window_targets(elements, chrom, starts, window, centre_bin)
    centred = np.array([picked[p][0] for p in positions], dtype=bool)
    return MultitaskSplit(chroms, seqs, positions, targets, centred)


def _draws_needed(missing: int, kept: int, tried: int) -> int:
    """Draws for ``missing`` more windows when ``kept`` of ``tried`` draws were kept."""
    if missing <= 0:
        return 0
    rate = max(kept / tried, 0.02) if tried else 1.0
    return int(missing / rate * 1.2) + 16


def _element_centres(elements: TaskElements, chroms: list[str]) -> tuple[np.ndarray, list[str]]:
    """Centres of all elements on ``chroms`` and the sequence of each."""
    centres, names = [], []
    for chrom in chroms:
        for start, end in elements.elements.get(chrom, []):
            centres.append((start + end) // 2)
            names.append(chrom)
    return np.array(centres, dtype=np.int64), names


def _centred_draws(rng, genome: Genome, centres, n: int, window: int, shift: int):
    positions, names = centres
    if n == 0 or not len(positions):
        return []
    pick = rng.integers(0, len(positions), size=n)
    moves = rng.integers(-shift, shift + 1, size=n)
    out = []
    for k, move in zip(pick, moves, strict=True):
        chrom = names[int(k)]
        start = centred_start(int(positions[k]) + int(move), window, genome.lengths[chrom])
        out.append((chrom, start, True))
    return out


def _random_draws(rng, genome: Genome, chroms: list[str], n: int, window: int):
    if n == 0:
        return []
    spans = np.array([genome.lengths[c] - window + 1 for c in chroms], dtype=np.float64)
    which = rng.choice(len(chroms), size=n, p=spans / spans.sum())
    starts = (rng.random(n) * spans[which]).astype(np.int64)
    return [(chroms[int(w)], int(s), False) for w, s in zip(which, starts, strict=True)]


def _blocked(exclude, chrom: str, start: int, end: int) -> bool:
    if not exclude or chrom not in exclude:
        return False
    return touches(exclude[chrom], start, end)
