"""`enhscan calibrate`: score random windows of a genome and store them as a model's
background null (:mod:`enhscan.model.null`).

The sample is uniform over the N-free windows of the chosen sequences: a sequence is drawn in
proportion to its number of window starts, then a start uniformly; windows with more than
``max_n`` non-ACGT bases, windows touching ``exclude`` and repeats are redrawn. The same genome,
sequences and seed give the same windows. Every window is scored on both strands once, which
gives the null of each ``--rc`` mode (forward, mean, max) at the cost of two passes.
Coordinates are 0-based, half-open.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np

from enhscan.errors import EnhscanError
from enhscan.intervals import Interval, touches
from enhscan.io.fasta import Genome
from enhscan.model.folder import Classifier
from enhscan.model.metadata import ALL_TASKS
from enhscan.model.null import BackgroundNull
from enhscan.naming import select_chroms
from enhscan.sequence import count_non_acgt, with_reverse_complements
from enhscan.versions import package_versions

log = logging.getLogger(__name__)

#: Windows in the null by default: p-values reach down to 1 / 20,001.
DEFAULT_NULL_WINDOWS = 20_000
# Draw rounds before giving up on a genome with too few N-free windows.
_MAX_ROUNDS = 50
# Windows scored per progress-bar step.
_STEP = 1024


def null_chroms(genome: Genome, chroms: list[str] | None, window: int) -> list[str]:
    """The sequences to sample from: ``chroms`` (names or patterns) or all, at least a window
    long.

    Raises:
        EnhscanError: a name matches nothing, or no chosen sequence holds a window.
    """
    names = genome.names
    if chroms:
        try:
            names = select_chroms(names, chroms)
        except ValueError as err:
            raise EnhscanError(
                f"--chroms {err} matches no sequence in {genome.path}; it has "
                + ", ".join(genome.names[:8])
            ) from None
    names = [n for n in names if genome.lengths[n] >= window]
    if not names:
        raise EnhscanError(
            f"no chosen sequence of {genome.path} is {window:,} bp long; the null needs whole "
            "windows"
        )
    return names


def sample_null_windows(
    genome: Genome,
    names: list[str],
    n: int,
    window: int,
    *,
    max_n: int = 0,
    seed: int = 0,
    exclude: dict[str, list[Interval]] | None = None,
) -> list[tuple[str, int, str]]:
    """``n`` distinct random windows ``(chrom, start, sequence)`` of ``names`` (module
    docstring), in the order drawn.

    Raises:
        EnhscanError: the sequences hold fewer than ``n`` usable windows, as far as
            ``_MAX_ROUNDS`` rounds of draws can tell.
    """
    rng = np.random.default_rng(seed)
    starts_per_chrom = np.array([genome.lengths[c] - window + 1 for c in names], dtype=np.float64)
    positions = int(starts_per_chrom.clip(min=0).sum())
    if positions < n:  # said at once, not after rounds of draws
        raise EnhscanError(
            f"{', '.join(names[:5])} hold only {positions:,} windows of {window:,} bp; ask for "
            "fewer with --windows, or give more sequence"
        )
    weights = starts_per_chrom / starts_per_chrom.sum()
    picked: list[tuple[str, int, str]] = []
    seen: set[tuple[int, int]] = set()
    for _ in range(_MAX_ROUNDS):
        want = n - len(picked)
        if want <= 0:
            break
        draws = int(want * 1.3) + 16
        which = rng.choice(len(names), size=draws, p=weights)
        starts = (rng.random(draws) * starts_per_chrom[which]).astype(np.int64)
        seqs = _fetch_sorted(genome, names, which, starts, window)
        for i in range(draws):
            key = (int(which[i]), int(starts[i]))
            seq = seqs[i]
            if key in seen or count_non_acgt(seq) > max_n:
                continue
            if exclude and touches(exclude.get(names[key[0]], []), key[1], key[1] + window):
                continue
            seen.add(key)
            picked.append((names[key[0]], key[1], seq))
            if len(picked) == n:
                break
    if len(picked) < n:
        raise EnhscanError(
            f"found only {len(picked):,} N-free windows of {window:,} bp on "
            f"{', '.join(names[:5])}; ask for fewer with --windows, or give more sequence"
        )
    return picked


def _fetch_sorted(
    genome: Genome, names: list[str], which: np.ndarray, starts: np.ndarray, window: int
) -> list[str]:
    """The windows' sequences, read in genome order (cheap on bgzip) and returned in draw
    order."""
    order = np.lexsort((starts, which))
    seqs: list[str] = [""] * len(starts)
    for i in order:
        start = int(starts[i])
        seqs[i] = genome.fetch(names[int(which[i])], start, start + window)
    return seqs


def score_both_strands(scorer, seqs: list[str], progress: bool = False) -> dict[str, np.ndarray]:
    """Scores of ``seqs`` for each strand mode: ``forward``, ``mean`` and ``max`` (float32 [n])."""
    from tqdm import tqdm

    from enhscan.engine import combine_strands

    forward, reverse = [], []
    with tqdm(
        total=len(seqs), unit="window", desc="null", disable=not progress, file=sys.stderr
    ) as bar:
        for lo in range(0, len(seqs), _STEP):
            part = seqs[lo : lo + _STEP]
            both = scorer.score(with_reverse_complements(part))
            forward.append(both[: len(part)])
            reverse.append(both[len(part) :])
            bar.update(len(part))
    fwd = np.concatenate(forward) if forward else np.zeros(0, dtype=np.float32)
    rev = np.concatenate(reverse) if reverse else np.zeros(0, dtype=np.float32)
    return {
        "forward": fwd,
        "mean": combine_strands(fwd, rev, "mean"),
        "max": combine_strands(fwd, rev, "max"),
    }


def compute_null(
    classifier: Classifier,
    genome: Genome,
    *,
    windows: int = DEFAULT_NULL_WINDOWS,
    chroms: list[str] | None = None,
    exclude: dict[str, list[Interval]] | None = None,
    max_n: int = 0,
    seed: int = 0,
    scorer=None,
    progress: bool = False,
) -> BackgroundNull:
    """Score ``windows`` random windows of ``genome`` with ``classifier`` (module docstring).

    Args:
        scorer: a :class:`~enhscan.engine.WindowScorer` of ``classifier`` to score with;
            default one on the CPU.
    """
    from enhscan.backend import ComputeOptions
    from enhscan.engine import WindowScorer

    if windows < 1:
        raise EnhscanError(f"the null needs at least one window, not {windows}")
    window = classifier.metadata.window
    names = null_chroms(genome, chroms, window)
    began = time.time()
    sample = sample_null_windows(
        genome, names, windows, window, max_n=max_n, seed=seed, exclude=exclude
    )
    scorer = scorer or WindowScorer(classifier, ComputeOptions(device="cpu"))
    scores = score_both_strands(scorer, [seq for _, _, seq in sample], progress)
    info = {
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        "genome": str(Path(genome.path).resolve()),
        "sequences": names,
        "windows": windows,
        "window": window,
        "max_n": max_n,
        "seed": seed,
        "exclude_intervals": sum(len(v) for v in exclude.values()) if exclude else 0,
        "model_identity": classifier.identity,
        "task": scorer.task,
        "seconds": round(time.time() - began, 1),
        "quantiles": {
            mode: {str(q): round(float(np.quantile(s, q)), 6) for q in (0.5, 0.9, 0.99, 0.999)}
            for mode, s in scores.items()
        },
        "versions": package_versions(),
    }
    return BackgroundNull(scores, info)


def calibrate_model(
    model_dir: str | os.PathLike,
    genome_path: str | os.PathLike,
    *,
    windows: int = DEFAULT_NULL_WINDOWS,
    chroms: list[str] | None = None,
    exclude: str | None = None,
    max_n: int = 0,
    seed: int = 0,
    device: str = "auto",
    batch_size: int | None = None,
    task: str | None = None,
    progress: bool = False,
) -> BackgroundNull:
    """Compute the background null of the model folder ``model_dir`` on ``genome_path`` and
    store it there (replacing any it had). ``task``: for a multi-task model, the task the
    null is of (default ``any``); scans of another task do not use it."""
    from enhscan.backend import ComputeOptions
    from enhscan.engine import WindowScorer
    from enhscan.io.bed import read_bed
    from enhscan.io.fasta import open_genome
    from enhscan.model.folder import load_classifier
    from enhscan.model.null import save_null

    classifier = load_classifier(model_dir)
    if not os.access(model_dir, os.W_OK):
        raise EnhscanError(
            f"model folder {model_dir} is not writable; copy it and calibrate the copy"
        )
    if task == ALL_TASKS:
        raise EnhscanError("a background null is of one task: give one --task")
    compute = ComputeOptions(device=device, batch_size=batch_size)
    scorer = WindowScorer(classifier, compute, task=task)
    with open_genome(genome_path) as genome:
        blocked = read_bed(exclude, genome.lengths, clip=True).by_chrom if exclude else None
        null = compute_null(
            classifier,
            genome,
            windows=windows,
            chroms=chroms,
            exclude=blocked,
            max_n=max_n,
            seed=seed,
            scorer=scorer,
            progress=progress,
        )
    save_null(model_dir, null)
    return null
