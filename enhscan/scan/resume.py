"""Starting or continuing a scan's shard store: what a scan is (its identity, derived from the
declared settings), what a resumed scan must match, and what it keeps of the interrupted one.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from enhscan.backend import Backend, ComputeOptions
from enhscan.declared import kept_values, option_names
from enhscan.errors import EnhscanError
from enhscan.io.fasta import Genome
from enhscan.model.folder import Classifier
from enhscan.scan.settings import RunOptions, ScanPlan, ScanSettings, ScanSpec
from enhscan.scan.shards import FORMAT, ShardStore

#: Identity entries that are not a declared setting, as messages name them.
FIXED_NAMES = {
    "format": "the shard format (another enhscan version)",
    "genome": "the genome",
    "model": "the model",
    "plan": "the scanned regions (--chroms / --regions / --exclude)",
}

#: What a manifest written before a key existed meant by leaving it out.
IDENTITY_BEFORE = {"kernels": "plain", "task": None, "compile": False}


def scan_identity(
    genome: Genome,
    classifier: Classifier,
    plan: ScanPlan,
    spec: ScanSpec,
    backend: Backend,
    run: RunOptions,
) -> dict:
    """What a scan is, as its shard manifest records it: a resume must match it.

    ``spec`` is resolved (the window and task that run); every setting declared ``keep``
    goes in, with the plan's hash standing for the regions.
    """
    stretches = json.dumps(plan.stretches, sort_keys=True).encode()
    sizes = json.dumps(list(genome.lengths.items())).encode()
    identity = {
        "format": FORMAT,
        "genome": {
            "path": str(Path(genome.path).resolve()),
            "sizes_sha256": hashlib.sha256(sizes).hexdigest(),
        },
        "model": classifier.identity,
        "plan": hashlib.sha256(stretches).hexdigest(),
        **kept_values(spec, backend, run),
    }
    if backend.batch_invariant:  # then no batch size changes a score: a resume may pick any
        identity["batch_size"] = None
    return identity


def differences(recorded: dict, identity: dict) -> list[str]:
    """What differs between a manifest and ``identity``, one phrase per entry."""
    names = {**option_names(ScanSpec, Backend, RunOptions), **FIXED_NAMES}
    out = []
    for key, now in identity.items():
        before = recorded.get(key, IDENTITY_BEFORE.get(key))
        if before != now:
            out.append(f"{names.get(key, key)} ({_short(before)} then, {_short(now)} now)")
    return out


def resumed_compute(store: ShardStore, settings: ScanSettings) -> ComputeOptions:
    """The compute options to run with: those asked for, or, resuming, those that keep the
    interrupted run's batches and kernels (:meth:`ComputeOptions.continuing`)."""
    if settings.run.resume and store.exists():
        return settings.compute.continuing(store.manifest())
    return settings.compute


def open_store(store: ShardStore, identity: dict, run: RunOptions) -> list[int]:
    """Start the scan's shard store, or continue it with ``--resume``; the shards already
    finished.

    Raises:
        EnhscanError: a resume of another scan (saying what differs), or an unfinished scan
            in the way without ``--resume`` or ``--force``.
    """
    if store.exists() and run.resume:
        changed = differences(store.manifest(), identity)
        if changed:
            raise EnhscanError(
                f"cannot resume the scan in {store.folder.parent}: "
                + "; ".join(changed)
                + ". Rerun with the same settings, or start again with --force"
            )
        store.clean_partials()
        return sorted(store.done())
    if store.exists() and not run.force:
        raise EnhscanError(
            f"{store.folder.parent} holds an unfinished scan ({len(store.done())} shards "
            "done); continue it with --resume, or start again with --force"
        )
    store.create(identity)
    return []


def _short(value) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= 60 else text[:57] + "..."
