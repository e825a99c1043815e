"""Auxiliary tasks while fine-tuning: the classifier keeps learning its multi-task base's
tasks (say, a regulatory atlas) on windows of their own, beside the labelled windows.

Why: a few thousand labelled enhancers are little for millions of weights; fine-tuning on them
alone drifts the network away from what multi-task pretraining taught it. Here every batch
holds ``B`` labelled windows and ``B`` atlas windows; the loss is the classifier's
cross-entropy on the first plus ``weight`` times the atlas tasks' binary cross-entropy on the
second, both read from the same pooled features (the atlas head is the base's own output
layer, kept training beside the new one). Only the classifier is kept at the end.

Each epoch shows the next ``n`` atlas windows of a seeded shuffle (a new shuffle whenever the
atlas windows run out), each reversed and shifted like the labelled windows, so a resumed run
and every process see the same windows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from enhscan.errors import EnhscanError
from enhscan.model.encoding import pad_batch
from enhscan.sequence import reverse_complement
from enhscan.training.multitask import TargetOptions, read_targets


@dataclass
class AuxiliaryWindows:
    """Windows of the auxiliary tasks.

    Attributes:
        tasks: the task names, in the base model's output order.
        seqs: upper-case windows, each ``2 * flank`` bases wider than the model's window
            when training shifts windows.
        targets: uint8 [n, tasks], 1 where the window's centre lies in a task's element.
        positions: ``(chrom, start)`` of each window, as cut (with its flanks).
    """

    tasks: list[str]
    seqs: list[str]
    targets: np.ndarray
    positions: list[tuple[str, int]]


@dataclass
class AuxiliaryTasks:
    """What fine-tuning with auxiliary tasks needs: their windows, and the base model's
    output layer for them (``Linear(features, tasks)``), which keeps training as their head."""

    windows: AuxiliaryWindows
    head: torch.nn.Linear


@dataclass
class AuxiliaryOptions:
    """The auxiliary tasks of ``enhscan train --aux-targets``: where their elements come
    from, and how many windows to draw for them."""

    targets: TargetOptions
    windows: int = 30_000


def auxiliary_tasks(
    base_dir: str | os.PathLike,
    options: AuxiliaryOptions,
    genome_paths: list[str],
    window: int,
    *,
    flank: int = 0,
    held_out: list[str] | None = None,
    exclude: str | os.PathLike | None = None,
    seed: int = 0,
) -> AuxiliaryTasks:
    """The auxiliary tasks of fine-tuning the multi-task model ``base_dir``: windows drawn by
    :func:`draw_auxiliary_windows`, and the base's output layer as their head."""
    from enhscan.model.folder import load_classifier

    base = load_classifier(base_dir, require_head=False)
    if base.metadata.task_type != "multilabel":
        raise EnhscanError(
            "--aux-targets needs a --base made by `enhscan pretrain --targets`: its output "
            "layer is the head of those tasks"
        )
    windows = draw_auxiliary_windows(
        genome_paths,
        options.targets,
        options.windows,
        window,
        flank=flank,
        held_out=held_out,
        exclude=exclude,
        seed=seed,
    )
    check_tasks(base.metadata.labels, windows)
    return AuxiliaryTasks(windows, base.network.classifier)


def draw_auxiliary_windows(
    genome_paths: list[str],
    targets: TargetOptions,
    n: int,
    window: int,
    *,
    flank: int = 0,
    held_out: list[str] | None = None,
    exclude: str | os.PathLike | None = None,
    seed: int = 0,
) -> AuxiliaryWindows:
    """``n`` windows of the genome's sequences but ``held_out`` with their targets (half
    centred on an element, as ``enhscan pretrain`` draws them), ``flank`` bases wider on
    each side.

    Args:
        targets: the elements of each task, as ``enhscan pretrain --targets`` reads them.
        held_out: sequences (names or patterns) no window may come from: the test and
            validation chromosomes of the labelled data.
        exclude: a BED of regions no window may touch.
    """
    from enhscan.io.bed import read_bed
    from enhscan.io.fasta import open_genomes
    from enhscan.naming import select_chroms
    from enhscan.training.multitask_windows import draw_split

    with open_genomes(genome_paths) as genome:
        elements = read_targets(targets, genome.lengths)
        try:
            held = select_chroms(genome.names, held_out) if held_out else []
        except ValueError:
            held = []  # a held-out name the genome lacks holds no window anyway
        chroms = [c for c in genome.names if c not in held]
        blocked = read_bed(exclude, genome.lengths, clip=True).by_chrom if exclude else None
        split = draw_split(
            genome,
            elements,
            chroms,
            n,
            window + 2 * flank,
            centre_bin=targets.centre_bin,
            exclude=blocked,
            seed=seed,
        )
    return AuxiliaryWindows(list(elements.tasks), split.seqs, split.targets, split.positions)


def check_tasks(base_tasks: list[str], auxiliary: AuxiliaryWindows) -> None:
    """The auxiliary tasks must be the base model's, in its order: its output layer is
    their head."""
    if list(base_tasks) != auxiliary.tasks:
        raise EnhscanError(
            f"the base model learned {len(base_tasks)} tasks ({_names(base_tasks)}) but "
            f"--aux-targets gives {len(auxiliary.tasks)} ({_names(auxiliary.tasks)}); give the "
            "targets, --aux-label-column and --aux-task-groups its pretraining used"
        )


def _names(tasks: list[str]) -> str:
    return ", ".join(tasks[:4]) + (", ..." if len(tasks) > 4 else "")


class _BothHeads(torch.nn.Module):
    """The classifier's output layer and the auxiliary head, reading the same features:
    the classifier's logits alone, or both side by side ``[B, classes + tasks]`` while
    ``both`` is set."""

    def __init__(self, main: torch.nn.Linear, auxiliary: torch.nn.Linear):
        super().__init__()
        self.main, self.auxiliary = main, auxiliary
        self.both = False

    def forward(self, features: Tensor) -> Tensor:
        logits = self.main(features)
        return torch.cat([logits, self.auxiliary(features)], -1) if self.both else logits


class WithAuxiliaryHead(torch.nn.Module):
    """A classifier (any family with a ``classifier`` output layer) and a head for the
    auxiliary tasks on its pooled features, for training both at once.

    ``network`` is the model that is kept (:meth:`finished` restores its own output layer);
    called directly it still gives its classifier's logits alone, so validation needs no
    change.
    """

    def __init__(self, network: torch.nn.Module, auxiliary_head: torch.nn.Linear):
        super().__init__()
        head = getattr(network, "classifier", None)
        if not isinstance(head, torch.nn.Linear):
            raise EnhscanError("auxiliary tasks need a model family with a classifier layer")
        self.classes = head.out_features
        # Registered once, as the network's output layer: no module shared between two
        # names, which checkpoints could not store.
        network.classifier = _BothHeads(head, auxiliary_head)
        self.network = network

    def forward(self, input_ids: Tensor, attention_mask: Tensor) -> tuple[Tensor, Tensor]:
        """Classifier logits [B, classes] and auxiliary task logits [B, tasks] of a batch."""
        heads = self.network.classifier
        heads.both = True
        try:
            logits = self.network(input_ids=input_ids, attention_mask=attention_mask).logits
        finally:
            heads.both = False
        return logits[:, : self.classes], logits[:, self.classes :]

    def finished(self) -> torch.nn.Module:
        """The classifier with its own output layer back (this wrapper is then spent)."""
        self.network.classifier = self.network.classifier.main
        return self.network


class ClassificationWithAuxiliaryTasks:
    """Cross-entropy of the labelled rows plus ``weight`` times the auxiliary tasks'
    positive-weighted binary cross-entropy on the auxiliary rows.

    Batches (from :class:`PairedWindows`): ``input_ids`` [B + A, L] with the labelled
    windows first, ``labels`` int64 [B], ``auxiliary_targets`` float32 [A, tasks].
    """

    def __init__(
        self,
        weight: float,
        class_weights: Tensor | None = None,
        positive_weights: Tensor | None = None,
    ):
        self.weight = weight
        self.class_weights, self.positive_weights = class_weights, positive_weights

    def loss(self, model, batch) -> tuple[Tensor, dict]:
        logits, auxiliary = model(batch["input_ids"], batch["attention_mask"])
        n = batch["labels"].shape[0]
        main = F.cross_entropy(logits[:n].float(), batch["labels"], weight=self.class_weights)
        tasks = F.binary_cross_entropy_with_logits(
            auxiliary[n:].float(), batch["auxiliary_targets"], pos_weight=self.positive_weights
        )
        counts = {"main_loss": main.detach(), "auxiliary_loss": tasks.detach(), "n": 1}
        return main + self.weight * tasks, counts

    def summary(self, totals: dict) -> dict:
        n = max(totals.get("n", 0), 1)
        return {
            "main_loss": totals.get("main_loss", 0.0) / n,
            "auxiliary_loss": totals.get("auxiliary_loss", 0.0) / n,
        }


class PairedWindows(torch.utils.data.Dataset):
    """Each labelled window of an epoch paired with the next auxiliary window of a seeded
    shuffle (module docstring): item ``i`` is ``(ids, label, auxiliary ids, targets)``.

    ``labelled`` is the fine-tuning dataset (with ``set_epoch``); the auxiliary windows are
    reversed with probability 1/2 (``rc``) and cut at a seeded offset in ``[0, 2 * shift]``,
    decided by ``seed`` and the epoch alone.
    """

    def __init__(
        self, labelled, encoder, auxiliary: AuxiliaryWindows, *, rc: bool, shift: int, seed: int
    ):
        if not auxiliary.seqs:
            raise EnhscanError("no auxiliary windows to train on")
        self.labelled, self.encoder, self.auxiliary = labelled, encoder, auxiliary
        self.rc, self.shift, self.seed = rc, shift, seed
        self.shown: list[np.ndarray] | None = None
        self.rows: np.ndarray | None = None

    def set_epoch(self, epoch: int) -> None:
        self.labelled.set_epoch(epoch)
        self.rows = self._rows(epoch)
        rng = np.random.default_rng([self.seed, epoch, 4])
        flips = rng.random(len(self.rows)) < 0.5 if self.rc else np.zeros(len(self.rows), bool)
        starts = rng.integers(0, 2 * self.shift + 1, len(self.rows))
        width = len(self.auxiliary.seqs[0]) - 2 * self.shift
        cuts = [
            self.auxiliary.seqs[r][a : a + width]
            for r, a in zip(self.rows, starts.tolist(), strict=True)
        ]
        views = [
            reverse_complement(c) if f else c for c, f in zip(cuts, flips.tolist(), strict=True)
        ]
        self.shown = self.encoder.encode(views)

    def _rows(self, epoch: int) -> np.ndarray:
        """The auxiliary windows of ``epoch`` (1-based): the next ``len(self)`` of the
        shuffles, shuffle ``c`` being a permutation seeded by ``(seed, c)``."""
        total = len(self.auxiliary.seqs)
        positions = (max(epoch, 1) - 1) * len(self) + np.arange(len(self))
        cycles, within = np.divmod(positions, total)
        rows = np.empty(len(self), dtype=np.int64)
        for cycle in np.unique(cycles).tolist():
            order = np.random.default_rng([self.seed, cycle, 3]).permutation(total)
            rows[cycles == cycle] = order[within[cycles == cycle]]
        return rows

    def __len__(self) -> int:
        return len(self.labelled)

    def __getitem__(self, i: int):
        if self.shown is None:  # read before any epoch was set: epoch 0's views
            self.set_epoch(0)
        ids, label = self.labelled[i]
        return ids, label, self.shown[i], self.auxiliary.targets[self.rows[i]]


def paired_collate(pad_id: int):
    """Batches of :class:`PairedWindows` items: the labelled windows, then the auxiliary
    ones, in one padded ``input_ids``."""

    def collate(batch: list[tuple]) -> dict[str, Tensor]:
        ids, mask = pad_batch([b[0] for b in batch] + [b[2] for b in batch], pad_id)
        return {
            "input_ids": torch.from_numpy(ids),
            "attention_mask": torch.from_numpy(mask),
            "labels": torch.from_numpy(np.stack([b[1] for b in batch])),
            "auxiliary_targets": torch.from_numpy(
                np.stack([b[3] for b in batch]).astype(np.float32)
            ),
        }

    return collate
