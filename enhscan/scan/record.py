"""The run record (``run.json``): what ran, on what, how long, and what came out."""

from __future__ import annotations

import sys
import time
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from enhscan.backend import Backend
from enhscan.declared import values
from enhscan.io.bed import BedIntervals
from enhscan.io.fasta import Genome
from enhscan.model.folder import Classifier
from enhscan.scan.outputs import OUTPUTS, Calling, ChromResult
from enhscan.scan.settings import ScanPlan, ScanSpec
from enhscan.versions import __version__, package_versions


@dataclass
class FinishedScan:
    """Everything a finished scan knows about itself.

    Attributes:
        spec: what was scanned, resolved (the window and task that ran).
        backend: how it was computed.
        results: counts per chromosome.
        started: when the command started (seconds since the epoch).
        scan_seconds: reading, scoring and writing, without loading the model.
        scored_now: windows scored by this run (a resumed run found the others done).
        processes: how many processes scored.
        shards: ``{"total", "resumed", "windows_each"}``.
        browser: the browser files written (:func:`enhscan.scan.outputs.write_browser_files`).
        stages: the main process's :meth:`~enhscan.scan.pipeline.StageTimes.record`.
        tasks: with ``--task all``, each task's outputs (:mod:`enhscan.scan.tasks`); the
            other counts are then those of the default task.
    """

    genome: Genome
    classifier: Classifier
    plan: ScanPlan
    spec: ScanSpec
    backend: Backend
    calling: Calling
    results: dict[str, ChromResult]
    regions: BedIntervals | None
    exclude: BedIntervals | None
    started: float
    scan_seconds: float
    scored_now: int
    processes: int
    shards: dict
    browser: dict
    stages: dict
    tasks: dict | None = None


def run_record(scan: FinishedScan) -> dict:
    """The run record of ``scan``, as written to ``run.json``."""
    results = scan.results.values()
    return {
        "enhscan_version": __version__,
        "command": " ".join(sys.argv),
        **_timing(scan),
        "stages": scan.stages,
        "genome": _genome(scan.genome),
        "model": _model(scan.classifier),
        "parameters": parameters(scan.spec, scan.backend, scan.calling),
        "windows": {
            "total": sum(r.windows for r in results),
            "scored": sum(r.scored for r in results),
            "skipped_n": sum(r.skipped_n for r in results),
        },
        "calls": sum(r.calls for r in results),
        "calling": scan.calling.record(),
        **({"tasks": scan.tasks} if scan.tasks is not None else {}),
        "chromosomes_too_short": scan.plan.too_short,
        "regions": _bed_summary(scan.regions),
        "exclude": _bed_summary(scan.exclude),
        "per_chromosome": {chrom: asdict(r) for chrom, r in scan.results.items()},
        "outputs": {k: OUTPUTS[k] for k in (*scan.spec.formats, "calls")},
        "browser": scan.browser,
        "processes": scan.processes,
        "shards": scan.shards,
        "versions": package_versions("pyBigWig", "pyfaidx"),
    }


def parameters(spec: ScanSpec, backend: Backend, calling: Calling) -> dict:
    """Every declared setting of what was scanned and how, with the calling rule as it was
    decided: ``threshold`` is the probability threshold it implies, ``fdr`` the rate (or
    None under another rule)."""
    return {
        **values(spec, backend),
        "threshold": calling.threshold,
        "fdr": calling.rule.value if calling.rule.kind == "fdr" else None,
        "track": calling.track_values,
    }


def _timing(scan: FinishedScan) -> dict:
    wall = time.time() - scan.started
    seconds, scored = scan.scan_seconds, scan.scored_now
    return {
        "started": datetime.fromtimestamp(scan.started, timezone.utc).isoformat(timespec="seconds"),
        "wall_seconds": round(wall, 3),
        "windows_per_second": round(scored / wall, 2) if wall > 0 else None,
        # The scan itself (reading, scoring, writing), without loading the model.
        "scan_seconds": round(seconds, 3),
        "scan_windows_per_second": round(scored / seconds, 2) if seconds > 0 else None,
    }


def _genome(genome: Genome) -> dict:
    return {
        "path": str(Path(genome.path).resolve()),
        "file_bytes": Path(genome.path).stat().st_size,
        "sequences": len(genome.lengths),
        "total_bp": sum(genome.lengths.values()),
        "sizes": genome.lengths,
    }


def _model(classifier: Classifier) -> dict:
    meta = classifier.metadata
    return {
        "path": str(classifier.path.resolve()) if classifier.path else None,
        "identity": classifier.identity,
        "family": meta.family,
        "window": meta.window,
        "labels": meta.labels,
        "positive_label": meta.labels[meta.positive_index],
    }


def _bed_summary(bed: BedIntervals | None) -> dict | None:
    if bed is None:
        return None
    return {"intervals": bed.count, "unmatched_chromosomes": bed.unmatched, "clipped": bed.clipped}
