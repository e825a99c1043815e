#!/usr/bin/env python3
"""Training throughput per objective and model family, to plan a training budget.

    python benchmarks/training_speed.py [--steps 30] [--batch-size 32] [--device cpu]
                                        [--families cnn,small,base] [--tasks 26]

Times optimizer steps (forward, backward, AdamW) on real 1 kb windows of GRCh37 chr20 for:

* ``classification``: two-class cross-entropy (what `enhscan train` does);
* ``multi-task``: binary cross-entropy over ``--tasks`` outputs (`enhscan pretrain --targets`);
* ``masked LM``: 15% of tokens predicted (`enhscan pretrain`; DNABERT-2 family only).

For each family (``cnn``; ``tiny``, ``small``, ``base`` = the DNABERT-2-117M shape) it prints
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

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import region_sequence  # noqa: E402

EPOCH_WINDOWS = 40_000


def windows(n: int) -> list[str]:
    seq = region_sequence(n, 1000, 1000)
    return [seq[i * 1000 : (i + 1) * 1000] for i in range(n)]


def time_steps(model, make_batch, loss_of, steps: int) -> float:
    """Seconds per optimizer step, after two warm-up steps."""
    from enhscan.training.loop import adamw

    optimizer = adamw(model, 1e-4, 0.01)
    model.train()
    for step in range(steps + 2):
        if step == 2:
            began = time.perf_counter()
        batch = make_batch(step)
        loss = loss_of(model, batch)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return (time.perf_counter() - began) / steps


def supervised_row(family: str, objective: str, seqs, batch_size, tasks, steps, device) -> float:
    from enhscan.model import new_classifier
    from enhscan.model.encoding import pad_batch

    outputs = 2 if objective == "classification" else tasks
    arch = "cnn" if family == "cnn" else family
    classifier = new_classifier(arch, seed=0, num_labels=outputs)
    model = classifier.network.to(device)
    encoded = classifier.encoder.encode(seqs)
    rng = np.random.default_rng(0)

    def make_batch(step: int):
        rows = rng.choice(len(encoded), batch_size, replace=False)
        ids, mask = pad_batch([encoded[i] for i in rows], classifier.encoder.pad_id)
        if objective == "classification":
            labels = torch.from_numpy(rng.integers(0, 2, batch_size))
        else:
            labels = torch.from_numpy((rng.random((batch_size, tasks)) < 0.1).astype(np.float32))
        return (
            torch.from_numpy(ids).to(device),
            torch.from_numpy(mask).to(device),
            labels.to(device),
        )

    def loss_of(model, batch):
        ids, mask, labels = batch
        logits = model(input_ids=ids, attention_mask=mask).logits.float()
        if objective == "classification":
            return torch.nn.functional.cross_entropy(logits, labels)
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)

    return batch_size / time_steps(model, make_batch, loss_of, steps)


def mlm_row(family: str, seqs, batch_size, steps, device) -> float:
    from enhscan.model.dnabert2 import DNABert2Config, DNABert2ForMaskedLM
    from enhscan.model.encoding import BpeEncoder, default_tokenizer_json, pad_batch
    from enhscan.training.objectives import mask_tokens

    encoder = BpeEncoder(default_tokenizer_json())
    config = DNABert2Config.from_size(family, vocab_size=encoder.vocab_size)
    torch.manual_seed(0)
    model = DNABert2ForMaskedLM(config).to(device)
    encoded = encoder.encode(seqs)
    rng = np.random.default_rng(0)
    generator = torch.Generator().manual_seed(0)

    def make_batch(step: int):
        rows = rng.choice(len(encoded), batch_size, replace=False)
        ids, mask = (
            torch.from_numpy(a) for a in pad_batch([encoded[i] for i in rows], encoder.pad_id)
        )
        inputs, labels = mask_tokens(ids, mask, encoder, 0.15, generator)
        return inputs.to(device), mask.to(device), labels.to(device)

    def loss_of(model, batch):
        inputs, mask, labels = batch
        return model(input_ids=inputs, attention_mask=mask, labels=labels).loss

    return batch_size / time_steps(model, make_batch, loss_of, steps)


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--steps", type=int, default=30, show_default=True)
@click.option("--batch-size", type=int, default=32, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--families", default="cnn,small,base", show_default=True)
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
        rows = [("classification", None), ("multi-task", None)]
        if family != "cnn":
            rows.append(("masked LM", None))
        for objective, _ in rows:
            family_steps = max(3, steps // 6) if family == "base" else steps
            if objective == "masked LM":
                rate = mlm_row(family, seqs, batch_size, family_steps, device)
            else:
                rate = supervised_row(
                    family, objective, seqs, batch_size, tasks, family_steps, device
                )
            print(f"| {family} | {objective} | {rate:.1f} | {EPOCH_WINDOWS / rate / 60:.1f} min |")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
