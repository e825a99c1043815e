"""``--task all``: a scan of every task of a multi-task model.

The model runs once per window and every task's score is kept (shards of float32 [count,
tasks]). Each task then gets its own track and calls in ``OUT/tasks/NAME/`` (``scores.bw``
and/or ``scores.bedGraph``, ``calls.narrowPeak``), called by the scan's rule. A task whose
background null the model stores (the ``any`` task of ``enhscan pretrain --targets``) is
called against it; the others against the scan's own scores (an empirical null). The top-level
outputs are the default task's (``any``, or the first task), with every task's track added
to the IGV session and the track hub.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np

from enhscan.io.fasta import Genome
from enhscan.model.metadata import ANY_TASK
from enhscan.naming import file_names
from enhscan.scan.outputs import OUTPUTS, TaskColumn, decide_calling, write_outputs
from enhscan.scan.settings import ScanPlan, ScanSpec, call_rule
from enhscan.scan.shards import Shard, ShardStore


def default_task(tasks: list[str]) -> str:
    """The task the top-level outputs of a ``--task all`` scan show: ``any``, else the first."""
    return ANY_TASK if ANY_TASK in tasks else tasks[0]


def write_task_outputs(
    genome: Genome,
    plan: ScanPlan,
    shards: list[Shard],
    store: ShardStore,
    out_dir: Path,
    tasks: list[str],
    spec: ScanSpec,
    null: tuple[str, np.ndarray | None],
) -> tuple[dict, tuple[tuple[str, str], ...]]:
    """Write every task's track and calls in ``out_dir/tasks/NAME/`` (module docstring).

    Args:
        tasks: the model's tasks, in the order of the shards' columns.
        spec: the scan (resolved); its calling rule, track values and formats are used.
        null: ``(task, sorted background scores)`` of the model's stored null (None: none).

    Returns:
        Per task, what the run record keeps (folder, calls, threshold, null); and each task's
        track as ``(path relative to out_dir, task)`` for the browser files.
    """
    root = out_dir / OUTPUTS["tasks"]
    shutil.rmtree(root, ignore_errors=True)  # an earlier scan's (--force was given)
    track = OUTPUTS["bigwig"] if "bigwig" in spec.formats else OUTPUTS["bedgraph"]
    record, tracks = {}, []
    for column, (task, name) in enumerate(zip(tasks, file_names(tasks), strict=True)):
        scores = TaskColumn(store, column)
        own_null = null[1] if null[0] == task else None
        calling = decide_calling(shards, scores, call_rule(spec), own_null, spec.track)
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        results, _ = write_outputs(genome, plan, shards, scores, folder, calling, spec.formats)
        record[task] = {
            "folder": f"{OUTPUTS['tasks']}/{name}",
            "calls": sum(r.calls for r in results.values()),
            "threshold": calling.threshold,
            "null": "model" if own_null is not None else "empirical",
        }
        tracks.append((f"{OUTPUTS['tasks']}/{name}/{track}", task))
    return record, tuple(tracks)
