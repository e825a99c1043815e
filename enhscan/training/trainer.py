"""The training loop: fine-tune a classifier on labelled windows with accelerate.

One loop serves the CPU, one GPU and many (``accelerate launch``): mixed precision where the
device supports it, gradient accumulation, linear warm-up then decay, class weighting, early
stopping on validation PR-AUC, and a checkpoint after every epoch that a killed run resumes
from. It trains both kinds of model folder: a classifier (one label per window, cross-entropy)
and a multi-task model (a 0/1 target per task and window, binary cross-entropy with each
task's positives weighted up to balance its negatives; early stopping on the mean PR-AUC over
tasks). Each epoch reseeds every random number generator from ``seed + epoch``, and the data
order of an epoch depends only on that seed, so a resumed run retraces an uninterrupted one.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from enhscan.model.encoding import pad_batch
from enhscan.model.folder import Classifier
from enhscan.processes import on_cpu

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
BEST_WEIGHTS = "best.safetensors"
LOG_FILE = "log.jsonl"


@dataclass
class TrainSettings:
    """Hyperparameters and run options of :func:`fit`.

    Attributes:
        epochs: passes over the training set at most.
        batch_size: examples per optimizer step on each process, before accumulation.
        learning_rate: peak learning rate (AdamW), reached after warm-up.
        warmup_ratio: share of all optimizer steps spent warming up linearly from 0.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        dropout: if set, the probability of every dropout layer of the network.
        grad_accum: batches whose gradients add up to one optimizer step.
        patience: epochs without a better validation PR-AUC before stopping.
        class_weighting: weight the loss by inverse class frequency (for unbalanced data).
        mixed_precision: ``no``, ``bf16``, ``fp16`` or ``auto`` (bf16 on a GPU, no on the CPU).
        max_grad_norm: gradient clipping norm.
        seed: seed of everything random in the run.
        eval_batch_size: windows per forward pass when scoring the validation set.
        cpu: train on the CPU even if a GPU is there.
        rc_augment: each epoch, show each training window as its reverse complement with
            probability 1/2 (decided by ``seed`` and the epoch alone); a multi-task model's
            validation then scores both strands and averages them.
    """

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 5e-5
    warmup_ratio: float = 0.1
    weight_decay: float = 0.01
    dropout: float | None = None
    grad_accum: int = 1
    patience: int = 3
    class_weighting: bool = True
    mixed_precision: str = "auto"
    max_grad_norm: float = 1.0
    seed: int = 0
    eval_batch_size: int = 64
    cpu: bool = False
    rc_augment: bool = False


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        classifier: the input classifier, its network now holding the best epoch's weights.
        best_epoch: 1-based epoch with the best validation PR-AUC.
        best_pr_auc: that PR-AUC.
        history: one dict per epoch: epoch, steps, train_loss, val_pr_auc, val_roc_auc, lr.
        stopped_early: True when patience ran out before ``epochs``.
        resumed_from_epoch: the epoch a resumed run continued after (None for a fresh run).
    """

    classifier: Classifier
    best_epoch: int
    best_pr_auc: float
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from_epoch: int | None = None


class _EncodedDataset(torch.utils.data.Dataset):
    """Encoded windows and their labels; with ``reverse`` (the reverse complements, encoded),
    each epoch shows a seeded half of them reversed."""

    def __init__(
        self,
        encoded: list[np.ndarray],
        labels: np.ndarray,
        reverse: list[np.ndarray] | None = None,
        seed: int = 0,
    ):
        self.encoded, self.labels, self.reverse, self.seed = encoded, labels, reverse, seed
        self.flips: np.ndarray | None = None

    def set_epoch(self, epoch: int) -> None:
        if self.reverse is not None:
            self.flips = np.random.default_rng([self.seed, epoch]).random(len(self)) < 0.5

    def __len__(self) -> int:
        return len(self.encoded)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        flipped = self.flips is not None and self.flips[i]
        return (self.reverse[i] if flipped else self.encoded[i]), self.labels[i]


def _collate(pad_id: int) -> Callable:
    def collate(batch: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, torch.Tensor]:
        ids, mask = pad_batch([b[0] for b in batch], pad_id)
        # int64 [B] class ids for a classifier, float32 [B, tasks] targets for multi-task.
        return {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(np.stack([b[1] for b in batch])),
        }

    return collate


def set_dropout(network: torch.nn.Module, p: float) -> None:
    """Set the probability of every ``nn.Dropout`` in ``network`` to ``p``."""
    for module in network.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = p


def adamw(network: torch.nn.Module, learning_rate: float, weight_decay: float):
    """AdamW with weight decay on weight matrices only (not biases or normalisation weights)."""
    no_decay = ("bias", "LayerNorm.weight", "layernorm.weight", "norm.weight")
    named = list(network.named_parameters())
    groups = [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate)


def class_weights(labels: np.ndarray, n_classes: int) -> torch.Tensor:
    """Inverse-frequency class weights ``n / (k * n_c)``: float32 [n_classes]."""
    counts = np.bincount(labels, minlength=n_classes).astype(np.float64)
    counts[counts == 0] = 1
    return torch.tensor(len(labels) / (n_classes * counts), dtype=torch.float32)


def positive_weights(targets: np.ndarray, cap: float = 100.0) -> torch.Tensor:
    """Per-task weights of positive targets, ``negatives / positives`` capped at ``cap`` (and
    1 for a task without positives): float32 [tasks]."""
    positives = targets.sum(axis=0).astype(np.float64)
    negatives = len(targets) - positives
    ratio = np.where(positives > 0, negatives / np.maximum(positives, 1), 1.0)
    return torch.tensor(np.clip(ratio, 1.0 / cap, cap), dtype=torch.float32)


def multilabel_probabilities(
    network: torch.nn.Module,
    encoded: Sequence[np.ndarray],
    pad_id: int,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """Every task's probability (sigmoid of its logit) for encoded windows: float32
    [n, tasks], in the order given."""
    network.eval()
    out = []
    with torch.no_grad():
        for lo in range(0, len(encoded), batch_size):
            ids, mask = pad_batch(list(encoded[lo : lo + batch_size]), pad_id)
            logits = network(
                input_ids=torch.from_numpy(ids).to(device),
                attention_mask=torch.from_numpy(mask).to(device),
            ).logits
            out.append(torch.sigmoid(logits.float()).cpu().numpy())
    tasks = getattr(getattr(network, "config", None), "num_labels", 0)
    return np.concatenate(out) if out else np.zeros((0, tasks), dtype=np.float32)


def both_strand_probabilities(
    network: torch.nn.Module,
    encoded: Sequence[np.ndarray],
    reverse: Sequence[np.ndarray] | None,
    pad_id: int,
    batch_size: int,
    device: torch.device,
) -> np.ndarray:
    """:func:`multilabel_probabilities` of the windows, averaged with those of their reverse
    complements when ``reverse`` (encoded) is given: float32 [n, tasks]."""
    probs = multilabel_probabilities(network, encoded, pad_id, batch_size, device)
    if reverse is None:
        return probs
    other = multilabel_probabilities(network, reverse, pad_id, batch_size, device)
    return ((probs.astype(np.float64) + other) / 2).astype(np.float32)


def resolve_mixed_precision(choice: str, cpu: bool) -> str:
    if choice != "auto":
        return choice
    if cpu or not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def fit(
    classifier: Classifier,
    train_seqs: Sequence[str],
    train_labels: np.ndarray,
    val_seqs: Sequence[str],
    val_labels: np.ndarray,
    settings: TrainSettings,
    work_dir: str | os.PathLike,
    *,
    resume: bool = False,
    progress: bool = True,
    on_epoch: Callable[[int, float], None] | None = None,
    stop_after_epoch: int | None = None,
) -> TrainResult:
    """Fine-tune ``classifier`` and keep the weights of its best validation epoch.

    Args:
        classifier: model to train (its network is trained in place).
        train_seqs, train_labels: training windows (upper-case DNA) and 0/1 labels (int [n]).
        val_seqs, val_labels: validation windows and labels, for early stopping.
        settings: hyperparameters.
        work_dir: folder for the checkpoint, best weights and the epoch log.
        resume: continue from the checkpoint in ``work_dir`` if there is one.
        progress: show tqdm bars (main process only).
        on_epoch: called as ``on_epoch(epoch, val_pr_auc)`` after each epoch; may raise to stop
            (Optuna pruning does).
        stop_after_epoch: end the run after this epoch as if killed (tests of resuming).

    Returns:
        A :class:`TrainResult`.
    """
    from accelerate import Accelerator, DataLoaderConfiguration
    from accelerate.utils import set_seed
    from tqdm import tqdm
    from transformers import get_scheduler

    from enhscan.metrics import binary_metrics

    work_dir = Path(work_dir)
    multilabel = classifier.metadata.task_type == "multilabel"
    label_type = np.float32 if multilabel else np.int64
    train_labels = np.asarray(train_labels, dtype=label_type)
    val_labels = np.asarray(val_labels, dtype=label_type)
    if len(train_seqs) == 0 or len(val_seqs) == 0:
        raise EnhscanError("training needs at least one training and one validation example")
    n_classes = len(classifier.metadata.labels)

    accelerator = Accelerator(
        mixed_precision=resolve_mixed_precision(settings.mixed_precision, settings.cpu),
        gradient_accumulation_steps=settings.grad_accum,
        cpu=on_cpu(settings.cpu),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )
    main = accelerator.is_main_process
    if main:
        work_dir.mkdir(parents=True, exist_ok=True)
    set_seed(settings.seed)
    network = classifier.network
    if settings.dropout is not None:
        set_dropout(network, settings.dropout)

    encoder = classifier.encoder
    reverse = val_reverse = None
    if settings.rc_augment:
        from enhscan.sequence import reverse_complement

        reverse = encoder.encode([reverse_complement(s) for s in train_seqs])
        if multilabel:
            val_reverse = encoder.encode([reverse_complement(s) for s in val_seqs])
    dataset = _EncodedDataset(
        encoder.encode(list(train_seqs)), train_labels, reverse, settings.seed
    )
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=settings.batch_size, shuffle=True, collate_fn=_collate(encoder.pad_id)
    )
    val_encoded = encoder.encode(list(val_seqs))
    optimizer = adamw(network, settings.learning_rate, settings.weight_decay)
    steps_per_epoch = math.ceil(len(loader) / settings.grad_accum)
    total_steps = steps_per_epoch * settings.epochs
    scheduler = get_scheduler(
        "linear",
        optimizer,
        num_warmup_steps=int(settings.warmup_ratio * total_steps),
        num_training_steps=total_steps,
    )
    model, optimizer, loader, scheduler = accelerator.prepare(network, optimizer, loader, scheduler)
    if multilabel:
        pos_weight = positive_weights(train_labels).to(accelerator.device)
        loss_fn = torch.nn.BCEWithLogitsLoss(
            pos_weight=pos_weight if settings.class_weighting else None
        )
    else:
        weights = class_weights(train_labels, n_classes).to(accelerator.device)
        loss_fn = torch.nn.CrossEntropyLoss(weight=weights if settings.class_weighting else None)

    state = {"epoch": 0, "best_epoch": 0, "best_pr_auc": -1.0, "bad_epochs": 0, "history": []}
    resumed_from = None
    checkpoint = work_dir / CHECKPOINT
    if resume and (checkpoint / "state.json").exists():
        saved = json.loads((checkpoint / "state.json").read_text())
        # A setting added after the checkpoint was written had its default then.
        before = {**asdict(TrainSettings()), **saved.get("settings", {})}
        if before != asdict(settings):
            raise EnhscanError(
                f"the checkpoint in {work_dir} was made with other training settings; rerun "
                "with the same options, or without --resume (after removing it)"
            )
        accelerator.load_state(str(checkpoint))
        state = saved["state"]
        resumed_from = state["epoch"]
        log.info("resuming after epoch %d of %d", resumed_from, settings.epochs)

    stopped_early = False
    for epoch in range(state["epoch"] + 1, settings.epochs + 1):
        if state["bad_epochs"] >= settings.patience:
            stopped_early = True
            break
        # Everything random in this epoch (order, dropout) follows from seed + epoch alone.
        set_seed(settings.seed + epoch)
        loader.set_epoch(epoch)
        dataset.set_epoch(epoch)
        model.train()
        losses = []
        bar = tqdm(
            loader,
            desc=f"epoch {epoch}/{settings.epochs}",
            unit="batch",
            disable=not (progress and main),
            leave=False,
            dynamic_ncols=True,
        )
        for batch in bar:
            with accelerator.accumulate(model):
                logits = model(
                    input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]
                ).logits
                loss = loss_fn(logits.float(), batch["labels"])
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), settings.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", refresh=False)
        bar.close()

        unwrapped = accelerator.unwrap_model(model)
        if multilabel:
            from enhscan.metrics import multilabel_metrics

            probs = both_strand_probabilities(
                unwrapped,
                val_encoded,
                val_reverse,
                encoder.pad_id,
                settings.eval_batch_size,
                accelerator.device,
            )
            val_metrics = multilabel_metrics(val_labels, probs, classifier.metadata.labels)
        else:
            scorer = WindowScorer(
                Classifier(unwrapped, encoder, classifier.metadata, classifier.identity),
                accelerator.device,
                batch_size=settings.eval_batch_size,
            )
            val_metrics = binary_metrics(val_labels, scorer.score_encoded(val_encoded))
        entry = {
            "epoch": epoch,
            "steps": epoch * steps_per_epoch,
            "train_loss": float(np.mean(losses)),
            "val_pr_auc": val_metrics.pr_auc,
            "val_roc_auc": val_metrics.roc_auc,
            "lr": scheduler.get_last_lr()[0],
        }
        state["history"].append(entry)
        state["epoch"] = epoch
        if val_metrics.pr_auc > state["best_pr_auc"]:
            state.update(best_epoch=epoch, best_pr_auc=val_metrics.pr_auc, bad_epochs=0)
            if main:
                _save_weights(unwrapped, work_dir / BEST_WEIGHTS)
        else:
            state["bad_epochs"] += 1
        if main:
            line = (
                f"epoch {epoch}: loss {entry['train_loss']:.4f}, validation PR-AUC "
                f"{entry['val_pr_auc']:.4f}, ROC-AUC {entry['val_roc_auc']:.4f}"
            )
            if progress:
                tqdm.write(line, file=sys.stderr)
            else:
                log.info(line)
            with open(work_dir / LOG_FILE, "a") as out:
                out.write(json.dumps(entry) + "\n")
        save_checkpoint(accelerator, checkpoint, {"settings": asdict(settings), "state": state})
        if on_epoch is not None:
            on_epoch(epoch, val_metrics.pr_auc)
        if stop_after_epoch is not None and epoch >= stop_after_epoch:
            break

    accelerator.wait_for_everyone()
    best = accelerator.unwrap_model(model)
    _load_weights(best, work_dir / BEST_WEIGHTS)
    classifier.network = best.cpu().eval()
    accelerator.free_memory()
    return TrainResult(
        classifier=classifier,
        best_epoch=state["best_epoch"],
        best_pr_auc=state["best_pr_auc"],
        history=state["history"],
        stopped_early=stopped_early,
        resumed_from_epoch=resumed_from,
    )


def _save_weights(network: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_file

    tmp = path.with_name(path.name + ".partial")
    state = {k: v.detach().cpu().contiguous() for k, v in network.state_dict().items()}
    save_file(state, str(tmp))
    os.replace(tmp, path)


def _load_weights(network: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_file

    network.load_state_dict(load_file(str(path)))


def save_checkpoint(accelerator, checkpoint: Path, meta: dict) -> None:
    """Save the full training state, replacing the previous checkpoint only once complete."""
    tmp = checkpoint.with_name(checkpoint.name + ".partial")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    accelerator.save_state(str(tmp))
    if accelerator.is_main_process:
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        old = checkpoint.with_name(checkpoint.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if checkpoint.exists():
            os.replace(checkpoint, old)
        os.replace(tmp, checkpoint)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()
