"""The one training loop of enhscan: any objective, any source of batches, one or many devices.

Fine-tuning a classifier, masked-LM pretraining, multi-task pretraining and a weighted mix of
the last two differ only in where their batches come from and how a batch becomes a loss. So
the loop takes two small objects:

- a :class:`BatchSource` deals the batches of each *round*: an epoch over a fixed set of
  windows (:class:`EpochBatches`), or a run of freshly sampled steps between two checkpoints
  (:class:`enhscan.training.pretrain.SampledBatches`);
- an :class:`Objective` turns a batch into a scalar loss (and counters worth logging).

and gives every objective the same guarantees: AdamW with linear warm-up and decay, gradient
accumulation and clipping, mixed precision, ``accelerate launch`` on many processes, a
checkpoint after every round that a killed run resumes from, and, with an ``evaluate`` hook,
early stopping that keeps the best round's weights. Each round reseeds every random number
generator from ``seed + round`` and deals its batches from that seed alone, so a resumed run
retraces an uninterrupted one and the same seed gives the same weights on the CPU.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Protocol

import torch

from enhscan.errors import EnhscanError
from enhscan.io.atomic import atomic_output
from enhscan.processes import on_cpu

log = logging.getLogger(__name__)

CHECKPOINT = "checkpoint"
BEST_WEIGHTS = "best.safetensors"
LOG_FILE = "log.jsonl"
#: Suffixes of a checkpoint being written and of the one it replaces (see _save_checkpoint).
SWAP = (".partial", ".old")

Batch = dict[str, torch.Tensor]


class BatchSource(Protocol):
    """Where a run's batches come from, round by round (rounds count from 1)."""

    def batches_per_round(self) -> list[int]:
        """Batches every round deals, over all processes together (sets the schedule)."""
        ...

    def prepare(self, accelerator) -> None:
        """Get ready to deal this process's share of each batch."""
        ...

    def round(self, index: int) -> Iterable[Batch]:
        """This process's batches of round ``index``; a function of the seed and round."""
        ...


class Objective(Protocol):
    """How a batch becomes a loss."""

    def loss(self, model: torch.nn.Module, batch: Batch) -> tuple[torch.Tensor, dict]:
        """A float32 scalar loss and counters to add up over the round (may be empty)."""
        ...

    def summary(self, totals: dict) -> dict:
        """What a round's added-up counters mean, for the log (say, masked-token accuracy)."""
        ...


@dataclass
class LoopSettings:
    """The optimisation every objective shares.

    Attributes:
        learning_rate: peak AdamW learning rate, after warm-up.
        warmup_ratio: share of all optimizer steps warming up linearly from 0.
        weight_decay: AdamW weight decay (not on biases and normalisation weights).
        grad_accum: batches whose gradients add up to one optimizer step.
        max_grad_norm: gradient clipping norm.
        patience: rounds without a better ``evaluate`` score before stopping; 0: no early
            stopping, and the last round's weights are kept (a fixed schedule).
        mixed_precision: ``no``, ``bf16``, ``fp16`` or ``auto`` (bf16 on a GPU, no on the CPU).
        seed: seed of everything random in the run.
        cpu: train on the CPU even if a GPU is there.
        ema_decay: if above 0, evaluate, keep and return an exponential moving average of the
            weights (and buffers) over optimizer steps, this decay per step, instead of the
            weights themselves (see :func:`averaged_copy`).
    """

    learning_rate: float
    warmup_ratio: float
    weight_decay: float
    grad_accum: int = 1
    max_grad_norm: float = 1.0
    patience: int = 3
    mixed_precision: str = "auto"
    seed: int = 0
    cpu: bool = False
    ema_decay: float = 0.0

    @classmethod
    def taking(cls, settings, **overrides) -> LoopSettings:
        """The loop's fields from a command's settings dataclass (the same names; the others
        keep their defaults), ``overrides`` winning."""
        from dataclasses import fields

        given = {
            f.name: getattr(settings, f.name) for f in fields(cls) if hasattr(settings, f.name)
        }
        return cls(**{**given, **overrides})


@dataclass
class LoopResult:
    """What :func:`train` returns.

    Attributes:
        network: the trained network, on the CPU in eval mode: the best round's weights with
            an ``evaluate`` hook and patience, else the last round's.
        best_round: the round whose weights were kept.
        best_score: its ``evaluate`` score (None without the hook).
        history: one log entry per round.
        stopped_early: patience ran out before the last round.
        resumed_from: the round a resumed run started after, or None.
    """

    network: torch.nn.Module
    best_round: int
    best_score: float | None
    history: list[dict] = field(default_factory=list)
    stopped_early: bool = False
    resumed_from: int | None = None


class EpochBatches:
    """Epochs over a fixed dataset: round ``r`` is epoch ``r``, shuffled from ``seed + r``.

    ``dataset`` may have a ``set_epoch(epoch)`` method (per-epoch augmentation); accelerate
    splits each epoch's batches between processes.
    """

    def __init__(self, dataset, batch_size: int, collate: Callable, epochs: int):
        self.dataset, self.epochs = dataset, epochs
        self.loader = torch.utils.data.DataLoader(
            dataset, batch_size=batch_size, shuffle=True, collate_fn=collate
        )

    def batches_per_round(self) -> list[int]:
        return [len(self.loader)] * self.epochs

    def prepare(self, accelerator) -> None:
        self.loader = accelerator.prepare(self.loader)

    def round(self, index: int) -> Iterable[Batch]:
        self.loader.set_epoch(index)
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(index)
        return self.loader


def adamw(network: torch.nn.Module, learning_rate: float, weight_decay: float):
    """AdamW with weight decay on weight matrices only (not biases or normalisation weights)."""
    no_decay = ("bias", "LayerNorm.weight", "layernorm.weight", "norm.weight")
    named = list(network.named_parameters())
    groups = [
        {"params": [p for n, p in named if not n.endswith(no_decay)], "weight_decay": weight_decay},
        {"params": [p for n, p in named if n.endswith(no_decay)], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW(groups, lr=learning_rate)


def averaged_copy(network: torch.nn.Module, decay: float) -> torch.nn.Module | None:
    """An exponential moving average of ``network``'s weights and buffers (torch's
    ``AveragedModel``), updated after each optimizer step; None when ``decay`` is 0.

    Why: with a few thousand labelled windows, where training stops (the best of a noisy
    validation set's epochs) moves a model about as much as a recipe change does; the average
    of the last ~1 / (1 - decay) steps' weights is a steadier point to evaluate and keep.
    """
    if not decay:
        return None
    from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

    return AveragedModel(network, multi_avg_fn=get_ema_multi_avg_fn(decay), use_buffers=True)


def resolve_mixed_precision(choice: str, cpu: bool) -> str:
    """``auto`` becomes bf16 (or fp16) on a GPU and ``no`` on the CPU; others stay."""
    if choice != "auto":
        return choice
    if cpu or not torch.cuda.is_available():
        return "no"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


def make_accelerator(settings: LoopSettings):
    """The run's accelerate ``Accelerator`` (create it before building data that needs the
    process's rank)."""
    from accelerate import Accelerator, DataLoaderConfiguration

    return Accelerator(
        mixed_precision=resolve_mixed_precision(settings.mixed_precision, settings.cpu),
        gradient_accumulation_steps=settings.grad_accum,
        cpu=on_cpu(settings.cpu),
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
    )


@dataclass
class _State:
    """What a checkpoint must remember besides the weights and optimizer."""

    round: int = 0
    steps: int = 0
    best_round: int = 0
    best_score: float | None = None
    bad_rounds: int = 0
    history: list[dict] = field(default_factory=list)


def train(
    network: torch.nn.Module,
    source: BatchSource,
    objective: Objective,
    settings: LoopSettings,
    work_dir: str | os.PathLike,
    *,
    accelerator=None,
    identity: dict | None = None,
    evaluate: Callable[[torch.nn.Module], dict] | None = None,
    resume: bool = False,
    progress: bool = True,
    describe: Callable[[dict], str] | None = None,
    round_name: str = "round",
    on_round: Callable[[dict], None] | None = None,
    stop_after_round: int | None = None,
) -> LoopResult:
    """Train ``network`` in place, round by round, checkpointing after each.

    Args:
        network: the model to train (any ``nn.Module`` the objective knows how to call).
        source: the batches of each round.
        objective: the loss of a batch.
        settings: the optimisation.
        work_dir: folder for the checkpoint, the best weights and ``log.jsonl``.
        accelerator: from :func:`make_accelerator`, if the caller needed one earlier.
        identity: what a resumed run must share with the interrupted one (settings, model
            shape, data); a checkpoint made with another is refused.
        evaluate: ``evaluate(network) -> metrics`` after every round, with a ``score`` key
            (higher is better) that early stopping and the best weights follow.
        resume: continue from the checkpoint in ``work_dir`` if there is one.
        progress: show a progress bar (main process only).
        describe: the line to print for a round's log entry (default: none printed).
        round_name: what a round is called on the progress bar (``epoch``, say).
        on_round: called with each round's log entry; may raise to stop (Optuna pruning).
        stop_after_round: end the run after this round as if killed (tests of resuming).
    """
    from accelerate.utils import set_seed
    from transformers import get_scheduler

    accelerator = accelerator or make_accelerator(settings)
    work_dir = Path(work_dir)
    if accelerator.is_main_process:
        work_dir.mkdir(parents=True, exist_ok=True)
    set_seed(settings.seed)
    per_round = source.batches_per_round()
    total_steps = sum(math.ceil(n / settings.grad_accum) for n in per_round)
    # accelerate's prepared scheduler advances once per process for each optimizer step, as
    # if the counts covered all processes together; a source whose every process takes every
    # step (sampled batches) counts per process, so its schedule is stretched to match.
    stretch = accelerator.num_processes if getattr(source, "counts_per_process", False) else 1
    optimizer = adamw(network, settings.learning_rate, settings.weight_decay)
    scheduler = get_scheduler(
        "linear",
        optimizer,
        num_warmup_steps=int(settings.warmup_ratio * total_steps) * stretch,
        num_training_steps=total_steps * stretch,
    )
    source.prepare(accelerator)
    # Copied before prepare: prepare wraps the network's forward for mixed precision, and a
    # copy made after it would still call the original's.
    average = averaged_copy(network, settings.ema_decay)
    model, optimizer, scheduler = accelerator.prepare(network, optimizer, scheduler)
    if average is not None:  # on the training device; saved and resumed with the checkpoint
        average.to(accelerator.device)
        accelerator.register_for_checkpointing(average)
    parts = _Parts(accelerator, model, optimizer, scheduler, objective, settings, average)
    parts.label = f"{round_name} {{}}/{len(per_round)}"
    checkpoint = work_dir / CHECKPOINT
    identity = identity or {}
    state = _resume(accelerator, checkpoint, identity) if resume else None
    resumed_from = state.round if state else None
    state = state or _State()
    if accelerator.is_main_process:  # the log holds exactly the rounds the state has
        lines = "".join(json.dumps(entry) + "\n" for entry in state.history)
        (work_dir / LOG_FILE).write_text(lines)

    selecting = evaluate is not None and settings.patience > 0
    stopped_early = False
    for index in range(state.round + 1, len(per_round) + 1):
        if selecting and state.bad_rounds >= settings.patience:
            stopped_early = True
            break
        # Everything random in this round (order, masks, dropout) follows from seed + round.
        # device_specific: each process its own dropout and masks (one process: the same).
        set_seed(settings.seed + index, device_specific=True)
        batches = source.round(index)
        total = len(batches) if hasattr(batches, "__len__") else per_round[index - 1]
        entry = {round_name: index, **parts.run_round(batches, index, total, progress)}
        if not math.isfinite(entry["train_loss"]):
            raise EnhscanError(
                f"the training loss became {entry['train_loss']} in {round_name} {index}: the "
                f"run diverged; lower the learning rate (now {settings.learning_rate:g}) or "
                "train without mixed precision"
            )
        state.steps += math.ceil(per_round[index - 1] / settings.grad_accum)
        entry["steps"] = state.steps
        entry["lr"] = scheduler.get_last_lr()[0]
        if evaluate is not None:
            kept = average.module if average is not None else accelerator.unwrap_model(model)
            entry.update(evaluate(kept))
            _keep_if_best(accelerator, kept, state, index, entry, work_dir, selecting)
        state.history.append(entry)
        if accelerator.is_main_process:
            _log_entry(entry, work_dir, describe, progress)
        state.round = index
        _save_checkpoint(accelerator, checkpoint, identity, state)
        if on_round is not None:
            on_round(entry)
        if stop_after_round is not None and index >= stop_after_round:
            break

    accelerator.wait_for_everyone()
    trained = accelerator.unwrap_model(model)
    if evaluate is not None:
        _load_weights(trained, work_dir / BEST_WEIGHTS)
    elif average is not None:
        trained.load_state_dict(average.module.state_dict())
    accelerator.free_memory()
    return LoopResult(
        network=trained.cpu().eval(),
        best_round=state.best_round if evaluate is not None else state.round,
        best_score=state.best_score,
        history=state.history,
        stopped_early=stopped_early,
        resumed_from=resumed_from,
    )


@dataclass
class _Parts:
    """The prepared pieces one round of training needs."""

    accelerator: object
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: object
    objective: Objective
    settings: LoopSettings
    average: torch.nn.Module | None = None  # from averaged_copy
    label: str = "round {}"

    def run_round(self, batches: Iterable[Batch], index: int, total: int, progress: bool) -> dict:
        """Train on one round's batches; the round's mean loss and summarised counters."""
        from tqdm import tqdm

        accelerator, model = self.accelerator, self.model
        model.train()
        losses, totals = [], {}
        bar = tqdm(
            batches,
            total=total,
            desc=self.label.format(index),
            unit="batch",
            disable=not (progress and accelerator.is_main_process),
            leave=False,
            dynamic_ncols=True,
        )
        for i, batch in enumerate(bar, 1):
            with accelerator.accumulate(model):
                loss, counts = self.objective.loss(model, batch)
                accelerator.backward(loss)
                if accelerator.sync_gradients:
                    accelerator.clip_grad_norm_(model.parameters(), self.settings.max_grad_norm)
                self.optimizer.step()
                self.scheduler.step()
                self.optimizer.zero_grad()
                if self.average is not None and accelerator.sync_gradients:
                    self.average.update_parameters(accelerator.unwrap_model(model))
            # Kept on the device: reading a value makes the host wait for the GPU, so the bar
            # reads one every 25 batches and the round's totals are read once, at its end.
            losses.append(loss.detach())
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
            if i % 25 == 0:
                recent = torch.stack(losses[-50:]).double().mean().item()
                bar.set_postfix(loss=f"{recent:.4f}", refresh=False)
        bar.close()
        mean = torch.stack(losses).double().mean() if losses else torch.tensor(float("nan"))
        if accelerator.num_processes > 1:  # the log speaks for all processes
            mean = accelerator.reduce(mean.to(accelerator.device), "mean")
            totals = {
                k: accelerator.reduce(torch.as_tensor(v, device=accelerator.device).double(), "sum")
                for k, v in totals.items()
            }
        mean = mean.item()
        totals = {key: float(value) for key, value in totals.items()}
        return {"train_loss": mean, **self.objective.summary(totals)}


def _keep_if_best(
    accelerator,
    network: torch.nn.Module,
    state: _State,
    index: int,
    entry: dict,
    work_dir: Path,
    selecting: bool,
) -> None:
    """Keep ``network``'s weights (the unwrapped model's, or their average) if this round's
    score is the best so far (always, without ``selecting``: then the last round's are kept)."""
    score = entry["score"] if math.isfinite(entry["score"]) else -math.inf  # NaN: worst
    if not selecting or state.best_score is None or score > state.best_score:
        state.best_round, state.best_score, state.bad_rounds = index, score, 0
        if accelerator.is_main_process:
            _save_weights(network, work_dir / BEST_WEIGHTS)
    else:
        state.bad_rounds += 1


def _log_entry(entry: dict, work_dir: Path, describe, progress: bool) -> None:
    from tqdm import tqdm

    if describe is not None:
        line = describe(entry)
        if progress:
            tqdm.write(line, file=sys.stderr)
        else:
            log.info(line)
    with open(work_dir / LOG_FILE, "a") as out:
        out.write(json.dumps(entry) + "\n")


def _resume(accelerator, checkpoint: Path, identity: dict) -> _State | None:
    """The state of the checkpoint in ``checkpoint`` (None if there is none), its weights and
    optimizer loaded; refuse one made for another run. A run killed while swapping in a new
    checkpoint left it complete as ``.partial`` (or the previous one as ``.old``): used."""
    for candidate in (checkpoint, *(checkpoint.with_name(checkpoint.name + s) for s in SWAP)):
        if (candidate / "state.json").exists():
            checkpoint = candidate
            break
    else:
        return None
    saved = json.loads((checkpoint / "state.json").read_text())
    if "identity" not in saved:
        raise EnhscanError(
            f"the checkpoint in {checkpoint.parent} was written by an older enhscan; start "
            "again without --resume (with --force)"
        )
    now = json.loads(json.dumps(identity))
    if saved["identity"] != now:
        raise EnhscanError(
            f"the checkpoint in {checkpoint.parent} was made with other "
            f"{', '.join(_differences(saved['identity'], now))}; rerun with the same options, "
            "or start again with --force instead of --resume"
        )
    accelerator.load_state(str(checkpoint))
    state = _State(**saved["state"])
    log.info("resuming after round %d", state.round)
    return state


def _differences(saved: dict, now: dict) -> list[str]:
    """What differs between a checkpoint's identity and this run's, in words: a setting by
    name and both values, or a part (data, model, processes) by name."""
    found = []
    for key in sorted(set(saved) | set(now)):
        old, new = saved.get(key), now.get(key)
        if old == new:
            continue
        if isinstance(old, dict) and isinstance(new, dict) and key == "settings":
            found += [
                f"{name} ({old.get(name)}, now {new.get(name)})"
                for name in sorted(set(old) | set(new))
                if old.get(name) != new.get(name)
            ]
        else:
            found.append({"data": "training data", "model": "model"}.get(key, key))
    return found or ["settings"]


def _save_checkpoint(accelerator, checkpoint: Path, identity: dict, state: _State) -> None:
    """Save the full training state, replacing the previous checkpoint only once complete."""
    from dataclasses import asdict

    tmp = checkpoint.with_name(checkpoint.name + ".partial")
    if accelerator.is_main_process:
        shutil.rmtree(tmp, ignore_errors=True)
    accelerator.wait_for_everyone()
    # accelerate warns at every save that it "removed shared tensor" (the masked-LM decoder
    # tied to the token embeddings); the tie is rebuilt on load, and resuming is tested exact.
    shared = logging.getLogger("accelerate.utils.other")
    level = shared.level
    shared.setLevel(logging.ERROR)
    try:
        accelerator.save_state(str(tmp))
    finally:
        shared.setLevel(level)
    if accelerator.is_main_process:
        meta = {
            "identity": identity,
            "round": state.round,
            "step": state.steps,
            "state": asdict(state),
        }
        (tmp / "state.json").write_text(json.dumps(meta, indent=1))
        old = checkpoint.with_name(checkpoint.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        if checkpoint.exists():
            os.replace(checkpoint, old)
        os.replace(tmp, checkpoint)
        shutil.rmtree(old, ignore_errors=True)
    accelerator.wait_for_everyone()


def _save_weights(network: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import save_model

    with atomic_output(path) as tmp:
        save_model(network, str(tmp))


def _load_weights(network: torch.nn.Module, path: Path) -> None:
    from safetensors.torch import load_model

    load_model(network, str(path))
