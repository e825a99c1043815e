#!/usr/bin/env python3
"""Training throughput per objective and model family, to plan a training budget.

    python benchmarks/training_speed.py [--steps 30] [--batch-size 32] [--device cpu]
                                        [--families cnn,hybrid,small,base] [--tasks 26]

Times optimizer steps (forward, backward, AdamW) on real 1 kb windows of GRCh37 chr20 for:

* ``classification``: two-class cross-entropy (what `enhscan train` does);
* ``multi-task``: binary cross-entropy over ``--tasks`` outputs (`enhscan pretrain --targets`);
* ``masked LM``: 15% of tokens predicted (`enhscan pretrain`; DNABERT-2 family only);
* ``multi-task + masked LM``: both on the same windows (`pretrain --targets --mlm-weight`).

Each row runs enhscan's own objective (:mod:`enhscan.training.objectives`) with AdamW; on a
GPU under bf16 autocast, timed between synchronisations.

For each family (``cnn``, ``cnn-deep``, ``hybrid``; ``tiny``, ``small``, ``base`` = the
DNABERT-2-117M shape) it prints
windows per second after two warm-up steps, and the minutes one epoch of 40,000 windows
would take. Each row runs in this process, one after another, on the same windows.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
import numpy as np
import torch

from enhscan.cli.options import NUCLEOTIDE_ARCHS

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import region_sequence  # noqa: E402

EPOCH_WINDOWS = 40_000
OBJECTIVES = ("classification", "multi-task", "masked LM", "multi-task + masked LM")


def windows(n: int) -> list[str]:
    seq = region_sequence(n, 1000, 1000)
    return [seq[i * 1000 : (i + 1) * 1000] for i in range(n)]


def time_steps(model, batches, objective, steps: int, device: str) -> float:
    """Seconds per optimizer step of ``objective`` (enhscan's own), after two warm-up steps;
    bf16 autocast on a GPU, as training's ``--mixed-precision auto`` runs there."""
    from contextlib import nullcontext

    from enhscan.training.loop import adamw

    cuda = device.startswith("cuda")
    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if cuda else nullcontext()
    optimizer = adamw(model, 1e-4, 0.01)
    model.train()
    for step in range(steps + 2):
        if step == 2:
            if cuda:
                torch.cuda.synchronize()
            began = time.perf_counter()
        with autocast:
            loss, _ = objective.loss(model, batches(step))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    if cuda:
        torch.cuda.synchronize()
    return (time.perf_counter() - began) / steps


def rate(family: str, objective: str, seqs, batch_size, tasks, steps, device) -> float:
    """Windows/s of one (family, objective) on ``device``."""
    from enhscan.model import new_classifier
    from enhscan.model.dnabert2 import DNABert2WithMLMHead
    from enhscan.model.encoding import pad_batch
    from enhscan.training import objectives

    classifier = new_classifier(
        family, seed=0, num_labels=2 if objective == OBJECTIVES[0] else tasks
    )
    encoder, model = classifier.encoder, classifier.network
    if objective == "classification":
        loss = objectives.Classification()
    elif objective == "multi-task":
        loss = objectives.MultiLabel()
    elif objective == "masked LM":
        from enhscan.model.dnabert2 import DNABert2ForMaskedLM

        model, loss = DNABert2ForMaskedLM(model.config), objectives.MaskedLM(encoder)
    else:
        model, loss = DNABert2WithMLMHead(model), objectives.MultiLabelWithMaskedLM(encoder, 0.5)
    model = model.to(device)
    encoded = encoder.encode(seqs)
    rng = np.random.default_rng(0)

    def batches(step: int) -> dict:
        rows = rng.choice(len(encoded), batch_size, replace=False)
        ids, mask = pad_batch([encoded[i] for i in rows], encoder.pad_id)
        if objective == "classification":
            labels = torch.from_numpy(rng.integers(0, 2, batch_size))
        else:
            labels = torch.from_numpy((rng.random((batch_size, tasks)) < 0.1).astype(np.float32))
        batch = {"input_ids": ids, "attention_mask": mask}
        batch = {k: torch.from_numpy(v).to(device) for k, v in batch.items()}
        return {**batch, "labels": labels.to(device)}

    torch.manual_seed(0)
    return batch_size / time_steps(model, batches, loss, steps, device)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--steps", type=int, default=30, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--families", default="cnn,hybrid,small,base", show_default=True)
@click.option("--tasks", type=int, default=26, show_default=True, help="Multi-task outputs.")
def main(steps: int, batch_size: int, device: str, families: str, tasks: int) -> None:
    seqs = windows(max(4 * batch_size, 256))
    print(
        f"training speed, {device}, batch {batch_size}, {steps} timed steps, torch "
        f"{torch.__version__}, {torch.get_num_threads()} threads"
    )
    print("| family | objective | windows/s | one epoch of 40,000 windows |")
    print("|---|---|---|---|")
    for family in families.split(","):
        one_hot = family in NUCLEOTIDE_ARCHS  # no tokens, so no masked LM
        for objective in OBJECTIVES[:2] if one_hot else OBJECTIVES:
            family_steps = max(3, steps // 6) if family == "base" and device == "cpu" else steps
            r = rate(family, objective, seqs, batch_size, tasks, family_steps, device)
            print(f"| {family} | {objective} | {r:.1f} | {EPOCH_WINDOWS / r / 60:.1f} min |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
