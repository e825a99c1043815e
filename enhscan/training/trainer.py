"""Fine-tuning on labelled windows: :func:`fit` over :func:`enhscan.training.loop.train`.

It trains both kinds of model folder: a classifier (one label per window, cross-entropy with
inverse-frequency class weights) and a multi-task model (a 0/1 target per task and window,
binary cross-entropy with each task's positives weighted up to balance its negatives,
optionally mixed with the masked-LM objective). Each epoch is one round of the loop: a
checkpoint after it, early stopping on the validation PR-AUC (mean over tasks), the best
epoch's weights kept; with ``rc_augment`` a seeded half of the windows is shown reversed,
with ``shift_augment`` each window is shown shifted by a seeded few bases each epoch.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch

from enhscan.backend import ComputeOptions
from enhscan.engine import WindowScorer
from enhscan.errors import EnhscanError
from enhscan.model.encoding import pad_batch
from enhscan.model.folder import Classifier
from enhscan.sequence import augmented_views, reverse_complement
from enhscan.training.auxiliary import (
    AuxiliaryTasks,
    PairedWindows,
    WithAuxiliaryHead,
    paired_collate,
)
from enhscan.training.loop import BEST_WEIGHTS, CHECKPOINT, LOG_FILE

__all__ = [
    "BEST_WEIGHTS",
    "CHECKPOINT",
    "LOG_FILE",
    "TrainResult",
    "TrainSettings",
    "both_strand_probabilities",
    "default_learning_rate",
    "fit",
    "positive_weights",
]

log = logging.getLogger(__name__)


@dataclass
class TrainSettings:
    """Hyperparameters and run options of :func:`fit`.

    Attributes:
        epochs: passes over the training set at most.
        batch_size: examples per optimizer step on each process, before accumulation.
        learning_rate: peak learning rate (AdamW), reached after warm-up; None:
            :func:`default_learning_rate` of the model.
        warmup_ratio: share of all optimizer steps spent warming up linearly from 0.
        weight_decay: AdamW weight decay (not applied to biases and LayerNorm weights).
        dropout: if set, the probability of every dropout layer of the network.
        grad_accum: batches whose gradients add up to one optimizer step.
        patience: epochs without a better validation PR-AUC before stopping; 0: train every
            epoch and keep the last.
        class_weighting: weight the loss by inverse class frequency (for unbalanced data).
        mixed_precision: ``no``, ``bf16``, ``fp16`` or ``auto`` (bf16 on a GPU, no on the CPU).
        max_grad_norm: gradient clipping norm.
        seed: seed of everything random in the run.
        eval_batch_size: windows per forward pass when scoring the validation set.
        cpu: train on the CPU even if a GPU is there.
        rc_augment: each epoch, show each training window as its reverse complement with
            probability 1/2 (decided by ``seed`` and the epoch alone); a multi-task model's
            validation then scores both strands and averages them.
        shift_augment: the training windows are ``2 * shift_augment`` bases longer than the
            model's window; each epoch shows each one shifted by a seeded amount in
            ``[-shift_augment, shift_augment]`` (validation windows are not shifted).
        mlm_weight: with a DNABERT-2 multi-task model, also train masked-token prediction on
            the same windows, weighted this much (the tasks get ``1 - mlm_weight``).
        mask_prob: share of tokens masked for that objective.
        ema_decay: above 0: validate, keep and return an exponential moving average of the
            weights, this decay per optimizer step (:func:`enhscan.training.loop.averaged_copy`).
        auxiliary_weight: with auxiliary tasks (:mod:`enhscan.training.auxiliary`), the
            weight of their loss beside the classifier's.
    """

    epochs: int = 10
    batch_size: int = 32
    learning_rate: float | None = None
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
    shift_augment: int = 0
    mlm_weight: float = 0.0
    mask_prob: float = 0.15
    ema_decay: float = 0.0
    auxiliary_weight: float = 1.0


@dataclass
class TrainResult:
    """What :func:`fit` returns.

    Attributes:
        classifier: the input classifier, its network now holding the best epoch's weights.
        best_epoch: 1-based epoch whose weights were kept: the best validation PR-AUC, or the
            last epoch with ``patience`` 0.
        best_pr_auc: that epoch's validation PR-AUC.
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
    """Training windows and their labels, as each epoch shows them.

    With ``rc`` each epoch shows a seeded half of the windows reverse-complemented; with
    ``shift`` > 0 the windows are ``2 * shift`` bases longer than the model's and each epoch
    shows each one cut at a seeded offset in ``[0, 2 * shift]`` (a shift of at most ``shift``
    bases either way about its centre). Both are decided by ``seed`` and the epoch alone, so a
    resumed run and every process see the same windows.
    """

    def __init__(
        self, encoder, seqs: Sequence[str], labels: np.ndarray, *, rc: bool, shift: int, seed: int
    ):
        self.encoder, self.seqs, self.labels = encoder, list(seqs), labels
        self.rc, self.shift, self.seed = rc, shift, seed
        self.shown: list[np.ndarray] | None = None  # made by set_epoch, which the loop calls
        # Without shifts every epoch draws from the same two encodings: made once.
        self.forward = None if shift else encoder.encode(self.seqs)
        self.reverse = None
        if rc and not shift:
            self.reverse = encoder.encode([reverse_complement(s) for s in self.seqs])

    def set_epoch(self, epoch: int) -> None:
        n = len(self.seqs)
        flips = np.zeros(n, dtype=bool)
        if self.rc:
            flips = np.random.default_rng([self.seed, epoch]).random(n) < 0.5
        if not self.shift:
            self.shown = [self.reverse[i] if flips[i] else self.forward[i] for i in range(n)]
            return
        starts = np.random.default_rng([self.seed, epoch, 1]).integers(0, 2 * self.shift + 1, n)
        width = len(self.seqs[0]) - 2 * self.shift
        views = augmented_views(self.seqs, starts.tolist(), flips.tolist(), width)
        self.shown = self.encoder.encode(views)

    def __len__(self) -> int:
        return len(self.seqs)

    def __getitem__(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        if self.shown is None:  # read before any epoch was set: epoch 0's views
            self.set_epoch(0)
        return self.shown[i], self.labels[i]


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


def default_learning_rate(family: str, from_base: bool = False) -> float:
    """The learning rate a run gets unless told otherwise: the family's from scratch (1e-3
    for the CNN, 5e-5 for the transformers), 5e-5 for any model fine-tuned from a base."""
    from enhscan.model.families import FAMILIES

    return 5e-5 if from_base else FAMILIES[family].learning_rate


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
    auxiliary: AuxiliaryTasks | None = None,
) -> TrainResult:
    """Fine-tune ``classifier`` and keep the weights of its best validation epoch (of its last
    epoch with ``patience`` 0).

    Args:
        classifier: model to train (its network is trained in place).
        train_seqs, train_labels: training windows (upper-case DNA) and their labels: int
            class ids [n], or 0/1 targets [n, tasks] for a multi-task model.
        val_seqs, val_labels: validation windows and labels, for early stopping.
        settings: hyperparameters.
        work_dir: folder for the checkpoint, best weights and the epoch log.
        resume: continue from the checkpoint in ``work_dir`` if there is one.
        progress: show tqdm bars (main process only).
        on_epoch: called as ``on_epoch(epoch, val_pr_auc)`` after each epoch; may raise to stop
            (Optuna pruning does).
        stop_after_epoch: end the run after this epoch as if killed (tests of resuming).
        auxiliary: tasks a classifier keeps learning beside its labels, each batch pairing
            its labelled windows with as many of theirs (:mod:`enhscan.training.auxiliary`).

    Returns:
        A :class:`TrainResult`.
    """
    from enhscan.training import loop

    multilabel = classifier.metadata.task_type == "multilabel"
    label_type = np.float32 if multilabel else np.int64
    train_labels = np.asarray(train_labels, dtype=label_type)
    val_labels = np.asarray(val_labels, dtype=label_type)
    if len(train_seqs) == 0 or len(val_seqs) == 0:
        raise EnhscanError("training needs at least one training and one validation example")
    loop_settings = loop.LoopSettings.taking(
        settings,
        learning_rate=settings.learning_rate or default_learning_rate(classifier.metadata.family),
    )
    accelerator = loop.make_accelerator(loop_settings)
    network = classifier.network
    if settings.dropout is not None:
        set_dropout(network, settings.dropout)
    encoder = classifier.encoder
    dataset = _dataset(classifier, train_seqs, train_labels, settings)
    collate = _collate(encoder.pad_id)
    objective = _objective(classifier, train_labels, settings, accelerator.device)
    if auxiliary is not None:
        dataset, collate, objective, network = _with_auxiliary(
            classifier, dataset, objective, auxiliary, settings, accelerator.device
        )
    source = loop.EpochBatches(dataset, settings.batch_size, collate, settings.epochs)
    if settings.mlm_weight:
        from enhscan.model.dnabert2 import DNABert2WithMLMHead

        network = DNABert2WithMLMHead(network)
    evaluate = _validation(classifier, val_seqs, val_labels, settings, accelerator.device)
    described = asdict(settings)
    if auxiliary is None:  # a checkpoint from before the option existed still resumes
        described.pop("auxiliary_weight")
    identity = {
        "settings": described,
        "data": _fingerprint(train_seqs, train_labels, val_seqs, val_labels),
        "processes": accelerator.num_processes,
        "model": _model_identity(classifier),
    }
    if auxiliary is not None:
        windows = auxiliary.windows
        identity["auxiliary"] = _fingerprint(windows.seqs, windows.targets, [], np.zeros(0))

    def report(entry: dict) -> None:
        if on_epoch is not None:
            on_epoch(entry["epoch"], entry["val_pr_auc"])

    try:
        result = loop.train(
            network,
            source,
            objective,
            loop_settings,
            work_dir,
            accelerator=accelerator,
            identity=identity,
            evaluate=evaluate,
            resume=resume,
            progress=progress,
            describe=_describe,
            round_name="epoch",
            on_round=report,
            stop_after_round=stop_after_epoch,
        )
    except BaseException:
        if auxiliary is not None:  # the caller's network gets its own output layer back
            network.finished()
        raise
    if auxiliary is not None:
        classifier.network = result.network.finished()
    else:
        classifier.network = result.network.network if settings.mlm_weight else result.network
    return TrainResult(
        classifier=classifier,
        best_epoch=result.best_round,
        best_pr_auc=result.best_score,
        history=result.history,
        stopped_early=result.stopped_early,
        resumed_from_epoch=result.resumed_from,
    )


def _model_identity(classifier: Classifier) -> dict:
    """What a resumed run's model must share with the checkpoint's: every weight's name and
    shape (the architecture, a hybrid's pooling included) and where a hybrid's front end came
    from (the checkpoint's weights would silently replace another one's)."""
    shapes = {name: list(t.shape) for name, t in classifier.network.state_dict().items()}
    front_end = classifier.metadata.provenance.get("front_end") or {}
    return {"shapes": shapes, "front_end": front_end.get("path")}


def _fingerprint(train_seqs, train_labels, val_seqs, val_labels) -> str:
    """A hash of the windows and labels: a resume must train on the same data."""
    import hashlib

    digest = hashlib.sha256()
    for seqs, labels in ((train_seqs, train_labels), (val_seqs, val_labels)):
        for seq in seqs:
            digest.update(seq.encode())
            digest.update(b"\n")
        digest.update(np.ascontiguousarray(labels).tobytes())
    return "sha256:" + digest.hexdigest()


def _dataset(classifier: Classifier, seqs, labels: np.ndarray, settings: TrainSettings):
    """The training windows, reversed and shifted per epoch as ``settings`` ask."""
    shift = settings.shift_augment
    wide = classifier.metadata.window + 2 * shift
    if shift and {len(s) for s in seqs} != {wide}:
        raise EnhscanError(
            f"shift augmentation of {shift} bp needs training windows of {wide} bp (the "
            f"model's {classifier.metadata.window} bp and {shift} bp on each side); draw them "
            f"{2 * shift} bp wider than the model's window"
        )
    return _EncodedDataset(
        classifier.encoder, seqs, labels, rc=settings.rc_augment, shift=shift, seed=settings.seed
    )


def _with_auxiliary(
    classifier: Classifier,
    dataset: _EncodedDataset,
    objective,
    auxiliary: AuxiliaryTasks,
    settings: TrainSettings,
    device: torch.device,
) -> tuple[torch.utils.data.Dataset, Callable, object, torch.nn.Module]:
    """The dataset, collate, objective and network of fine-tuning with auxiliary tasks."""
    from enhscan.training.objectives import ClassificationWithAuxiliaryTasks

    if classifier.metadata.task_type == "multilabel" or settings.mlm_weight:
        raise EnhscanError(
            "auxiliary tasks go with a classifier's fine-tuning, not with a multi-task model "
            "or --mlm-weight"
        )
    windows = auxiliary.windows
    wide = classifier.metadata.window + 2 * settings.shift_augment
    if {len(s) for s in windows.seqs} != {wide}:
        raise EnhscanError(
            f"the auxiliary windows must be {wide} bp (the model's window and the shift "
            "augmentation on each side); draw them with that flank"
        )
    paired = PairedWindows(
        dataset,
        classifier.encoder,
        windows,
        rc=settings.rc_augment,
        shift=settings.shift_augment,
        seed=settings.seed,
    )
    task_weights = None
    if settings.class_weighting:
        task_weights = positive_weights(windows.targets).to(device)
    both = ClassificationWithAuxiliaryTasks(
        settings.auxiliary_weight, objective.class_weights, task_weights
    )
    network = WithAuxiliaryHead(classifier.network, auxiliary.head)
    return paired, paired_collate(classifier.encoder.pad_id), both, network


def _objective(classifier: Classifier, labels, settings: TrainSettings, device):
    """The loss of a batch: cross-entropy, per-task BCE, or BCE mixed with masked LM."""
    from enhscan.training.objectives import Classification, MultiLabel, MultiLabelWithMaskedLM

    if classifier.metadata.task_type != "multilabel":
        if settings.mlm_weight:
            raise EnhscanError("a masked-LM weight needs a multi-task model (pretrain --targets)")
        weights = class_weights(labels, len(classifier.metadata.labels)).to(device)
        return Classification(weights if settings.class_weighting else None)
    weights = positive_weights(labels).to(device) if settings.class_weighting else None
    if not settings.mlm_weight:
        return MultiLabel(weights)
    if getattr(classifier.encoder, "mask_id", None) is None or not hasattr(
        classifier.network, "bert"
    ):
        raise EnhscanError(
            "--mlm-weight needs a DNABERT-2 architecture with a [MASK] token (--arch tiny, "
            "small or base)"
        )
    return MultiLabelWithMaskedLM(
        classifier.encoder, settings.mlm_weight, weights, settings.mask_prob
    )


def _validation(classifier: Classifier, seqs, labels, settings: TrainSettings, device):
    """``evaluate(network)``: validation PR-AUC (mean over tasks) and ROC-AUC; the PR-AUC is
    the score early stopping follows. A multi-task model with ``rc_augment`` is scored on both
    strands."""
    from enhscan.metrics import binary_metrics, multilabel_metrics

    encoder = classifier.encoder
    multilabel = classifier.metadata.task_type == "multilabel"
    encoded = encoder.encode(list(seqs))
    reverse = None
    if multilabel and settings.rc_augment:
        reverse = encoder.encode([reverse_complement(s) for s in seqs])

    def evaluate(network: torch.nn.Module) -> dict:
        network = getattr(network, "network", network)  # the classifier of a joint model
        if multilabel:
            probs = both_strand_probabilities(
                network, encoded, reverse, encoder.pad_id, settings.eval_batch_size, device
            )
            metrics = multilabel_metrics(labels, probs, classifier.metadata.labels)
        else:
            scorer = WindowScorer(
                Classifier(network, encoder, classifier.metadata, classifier.identity),
                ComputeOptions(device=str(device), batch_size=settings.eval_batch_size),
            )
            metrics = binary_metrics(labels, scorer.score_encoded(encoded))
        return {
            "val_pr_auc": metrics.pr_auc,
            "val_roc_auc": metrics.roc_auc,
            "score": metrics.pr_auc,
        }

    return evaluate


def _describe(entry: dict) -> str:
    line = (
        f"epoch {entry['epoch']}: loss {entry['train_loss']:.4f}, validation PR-AUC "
        f"{entry['val_pr_auc']:.4f}, ROC-AUC {entry['val_roc_auc']:.4f}"
    )
    if "mlm_loss" in entry:
        line += f" (tasks {entry['task_loss']:.4f}, masked LM {entry['mlm_loss']:.4f})"
    if "auxiliary_loss" in entry:
        line += f" (labels {entry['main_loss']:.4f}, auxiliary {entry['auxiliary_loss']:.4f})"
    return line
