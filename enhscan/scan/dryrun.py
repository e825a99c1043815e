"""Projecting a scan before running it: how many windows, and how long on this device.

A short calibration scores windows sampled evenly across the planned scan (so a genome that
starts with megabases of N still gives a fair sample), after one warm-up batch, and scales the
measured rate to the whole plan. Nothing is written.

Tokenizing and the model are timed apart, because a scan overlaps them (see
:mod:`enhscan.scan.pipeline`): on a GPU the slower of the two sets the pace, and the projection says
which; on the CPU they share the cores, so their times add up.
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass

import numpy as np

from enhscan.backend import Backend
from enhscan.engine import WindowScorer, strand_inputs
from enhscan.io.fasta import Genome, open_genome
from enhscan.model.folder import Classifier
from enhscan.scan.plan import plan_scan, read_scan_beds
from enhscan.scan.run import load_scorer
from enhscan.scan.settings import ScanPlan, ScanSettings, check_settings
from enhscan.sequence import count_non_acgt
from enhscan.tiling import count_windows

#: Batches timed after the warm-up batch.
CALIBRATION_BATCHES = 3


@dataclass
class Projection:
    """What a scan would cost.

    Attributes:
        chromosomes: sequences that would be scanned.
        bases: their total length.
        windows: windows the scan would tile.
        sampled: windows sampled for the calibration.
        sampled_skipped_n: of those, how many the N filter would skip.
        windows_per_second: the scan's expected rate, tokenizing and model together (no file
            I/O): see :func:`pipeline_rate`.
        projected_seconds: windows expected to be scored / rate.
        backend: how the calibration (and the scan) computes.
        rc: the strands scored (``--rc``).
        tokenize_windows_per_second: tokenizing and batching alone, on ``cpu_cores`` cores.
        model_windows_per_second: the model alone.
        cpu_cores: CPU cores the tokenizer runs on (:func:`tokenizer_cores`).
    """

    chromosomes: int
    bases: int
    windows: int
    sampled: int
    sampled_skipped_n: int
    windows_per_second: float
    projected_seconds: float
    backend: Backend
    rc: str | None = None
    tokenize_windows_per_second: float = float("nan")
    model_windows_per_second: float = float("nan")
    cpu_cores: int = 1

    @property
    def pace_setter(self) -> str:
        """``tokenizing`` when tokenizing is slower than the model, else ``model``."""
        slower = self.tokenize_windows_per_second < self.model_windows_per_second
        return "tokenizing" if slower else "model"


def project_scan(
    genome_path: str | os.PathLike,
    model: str | os.PathLike | Classifier,
    settings: ScanSettings | None = None,
) -> Projection:
    """Plan the scan ``settings`` describe and time a calibration run; write nothing.

    Args:
        genome_path: FASTA (plain or bgzip) or 2bit.
        model: an enhscan model folder, or a loaded :class:`Classifier`.
        settings: as for :func:`enhscan.scan.run.scan_genome`.
    """
    settings = settings or ScanSettings()
    check_settings(settings)
    spec = settings.scan
    classifier, scorer = load_scorer(model, settings.compute, spec.task)
    window = spec.window or classifier.metadata.window
    # A missing index is built next to the FASTA as usual, or, where that folder is
    # read-only, in a temporary folder removed afterwards: the dry run writes no outputs.
    with tempfile.TemporaryDirectory(prefix="enhscan-dry-run-") as index_dir:
        with open_genome(genome_path, index_dir=index_dir) as genome:
            regions, exclude = read_scan_beds(spec, genome)
            plan = plan_scan(genome, window, spec.stride, spec.chroms, regions, exclude)
            n_sample = scorer.batch_size * (CALIBRATION_BATCHES + 1)
            seqs, skipped = sample_windows(genome, plan, n_sample, spec.max_n)
    tokenize_rate, model_rate = calibrate(scorer, seqs, spec.rc)
    rate = pipeline_rate(tokenize_rate, model_rate, scorer.device.type != "cpu")
    expected = plan.n_windows * (1 - skipped / max(len(seqs) + skipped, 1))
    return Projection(
        chromosomes=len(plan.stretches),
        bases=sum(e - s for ivs in plan.stretches.values() for s, e in ivs),
        windows=plan.n_windows,
        sampled=len(seqs) + skipped,
        sampled_skipped_n=skipped,
        windows_per_second=rate,
        projected_seconds=expected / rate if rate > 0 else float("nan"),
        backend=scorer.backend,
        rc=spec.rc,
        tokenize_windows_per_second=tokenize_rate,
        model_windows_per_second=model_rate,
        cpu_cores=tokenizer_cores(),
    )


def sample_windows(genome: Genome, plan: ScanPlan, n: int, max_n: int) -> tuple[list[str], int]:
    """Up to ``n`` windows spread evenly over the plan's windows, in plan order.

    Returns:
        (the windows that pass the N filter, upper-case; how many sampled windows did not).
    """
    total = plan.n_windows
    if total == 0:
        return [], 0
    wanted = np.unique(np.linspace(0, total - 1, num=min(n, total)).astype(np.int64))
    seqs: list[str] = []
    skipped = 0
    first = 0  # index of the current stretch's first window among all windows
    for chrom, stretches in plan.stretches.items():
        for start, end in stretches:
            count = count_windows(start, end, plan.window, plan.stride)
            here = wanted[(wanted >= first) & (wanted < first + count)] - first
            for i in here:
                # The last window of a stretch ends at the stretch end (see tile_stretch).
                lo = min(start + int(i) * plan.stride, end - plan.window)
                seq = genome.fetch(chrom, lo, lo + plan.window)
                if count_non_acgt(seq) <= max_n:
                    seqs.append(seq.upper())
                else:
                    skipped += 1
            first += count
    return seqs, skipped


def calibrate(scorer: WindowScorer, seqs: list[str], rc: str | None = None) -> tuple[float, float]:
    """Windows per second for ``seqs``, after one warm-up batch: (tokenizing and batching
    alone, the model alone). With ``rc`` both strands are prepared and scored, as in a scan.
    Both are NaN when there is nothing to time."""
    warm, timed = seqs[: scorer.batch_size], seqs[scorer.batch_size :]
    if not warm:
        return float("nan"), float("nan")
    scorer.score(warm, rc=rc)
    timed = strand_inputs(timed or warm, rc)
    began = time.perf_counter()
    batches = scorer.prepare(timed)
    prepared = time.perf_counter()
    scorer.run(batches, len(timed))
    ran = time.perf_counter()
    windows = len(timed) / (2 if rc is not None else 1)
    return windows / max(prepared - began, 1e-9), windows / max(ran - prepared, 1e-9)


def pipeline_rate(tokenize: float, model: float, separate_device: bool) -> float:
    """Windows/s of a scan whose stages run at ``tokenize`` and ``model`` windows/s alone.

    With the model on a GPU (``separate_device``) the two overlap and the slower sets the
    pace; on the CPU they take turns on the same cores, so their times add up.
    """
    if separate_device:
        return min(tokenize, model)
    return 1.0 / (1.0 / tokenize + 1.0 / model)


def cpu_cores() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


def tokenizer_cores() -> int:
    """CPU cores the tokenizer runs on: ``RAYON_NUM_THREADS`` where it is set to a positive
    number (``--processes`` sets each process's share), at most :func:`cpu_cores`."""
    try:
        threads = int(os.environ.get("RAYON_NUM_THREADS", ""))
    except ValueError:
        threads = 0
    return min(threads, cpu_cores()) if threads > 0 else cpu_cores()
