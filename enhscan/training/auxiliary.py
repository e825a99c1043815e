"""Auxiliary tasks while fine-tuning: the classifier keeps learning its multi-task base's
tasks (say, a regulatory atlas) on windows of their own, beside the labelled windows.

Why: a few thousand labelled enhancers are little for millions of weights; fine-tuning on them
alone drifts the network away from what multi-task pretraining taught it. Here every batch
holds ``B`` labelled windows and ``B`` atlas windows; the loss is the classifier's
cross-entropy on the first plus ``weight`` times the atlas tasks' binary cross-entropy on the
second (:class:`enhscan.training.objectives.ClassificationWithAuxiliaryTasks`), both read
from the same pooled features (the atlas head is the base's own output layer, kept training
beside the new one). Only the classifier is kept at the end.

Each epoch shows the next ``n`` atlas windows of a seeded shuffle (a new shuffle whenever the
atlas windows run out), each reversed and shifted like the labelled windows, so a resumed run
and every process see the same windows.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

from enhscan.errors import EnhscanError
from enhscan.intervals import merge_by_chrom
from enhscan.model.encoding import pad_batch
from enhscan.model.metadata import METADATA_NAME, ModelMetadata
from enhscan.model.weights import read_json
from enhscan.sequence import augmented_views
from enhscan.training.multitask import TargetOptions, TaskElements, read_targets


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
    from (the label separator, the ``any`` task and the centre bin are always the base's
    own, from its provenance), and how many windows to draw for them."""

    targets: TargetOptions
    windows: int = 30_000


#: What the base's pretraining decided about its targets, beyond the files and groups.
_BASE_TARGET_RULES = ("label_separator", "any_task", "centre_bin")


def auxiliary_elements(
    base_dir: str | os.PathLike, targets: TargetOptions, chrom_lengths: dict[str, int]
) -> tuple[TaskElements, TargetOptions]:
    """The elements of the auxiliary tasks, read by the base's own target rules, and those
    options; checked to be the multi-task ``base_dir``'s tasks, in its order (its output
    layer is their head). Cheap: run it before anything slow."""
    base = _multitask_metadata(base_dir)
    made = base.provenance.get("targets") or {}
    targets = replace(targets, **{k: made[k] for k in _BASE_TARGET_RULES if k in made})
    try:
        elements = read_targets(targets, chrom_lengths)
    except EnhscanError as err:
        raise EnhscanError(_as_aux_options(str(err))) from None
    _check_tasks(base.labels, elements.tasks)
    return elements, targets


def auxiliary_tasks(
    base_dir: str | os.PathLike,
    elements: TaskElements,
    targets: TargetOptions,
    n: int,
    genome_paths: list[str],
    width: int,
    *,
    held_out: list[str] | None = None,
    avoid: list[tuple[str, int, int]] | None = None,
    exclude: str | os.PathLike | None = None,
    max_n: int = 0,
    seed: int = 0,
) -> AuxiliaryTasks:
    """``n`` windows ``width`` bases wide with their targets, half centred on an element (as
    ``enhscan pretrain`` draws them), on the genome's sequences but ``held_out`` (names or
    patterns; the labelled data's test and validation chromosomes), touching none of the
    ``avoid`` spans (``(chrom, start, end)``: the labelled validation and test windows) nor
    the ``exclude`` BED; and the base's output layer as their head."""
    from enhscan.io.bed import read_bed
    from enhscan.io.fasta import open_genomes
    from enhscan.model.folder import load_classifier
    from enhscan.training.multitask_windows import draw_split

    with open_genomes(genome_paths) as genome:
        held = _resolved(genome.names, held_out or [])
        chroms = [c for c in genome.names if c not in held]
        spans = list(avoid or [])
        if exclude:
            bed = read_bed(exclude, genome.lengths, clip=True).by_chrom
            spans += [(chrom, lo, hi) for chrom, found in bed.items() for lo, hi in found]
        try:
            split = draw_split(
                genome, elements, chroms, n, width, centre_bin=targets.centre_bin,
                max_n=max_n, exclude=merge_by_chrom(spans), seed=seed,
            )  # fmt: skip
        except EnhscanError as err:
            raise EnhscanError(_as_aux_options(str(err))) from None
    windows = AuxiliaryWindows(list(elements.tasks), split.seqs, split.targets, split.positions)
    head = load_classifier(base_dir, require_head=False).network.classifier
    return AuxiliaryTasks(windows, head)


def _multitask_metadata(base_dir: str | os.PathLike) -> ModelMetadata:
    path = Path(base_dir) / METADATA_NAME
    if not path.is_file():
        raise EnhscanError(
            f"--base {base_dir} has no {METADATA_NAME}; give an enhscan model folder"
        )
    metadata = ModelMetadata.from_dict(read_json(path), str(path))
    if metadata.task_type != "multilabel":
        raise EnhscanError(
            "--aux-targets needs a --base made by `enhscan pretrain --targets`: its output "
            "layer is the head of those tasks"
        )
    return metadata


def _check_tasks(base_tasks: list[str], tasks: list[str]) -> None:
    if list(base_tasks) == list(tasks):
        return
    where = next(
        (i for i, (a, b) in enumerate(zip(base_tasks, tasks, strict=False)) if a != b),
        min(len(base_tasks), len(tasks)),
    )
    base_has = base_tasks[where] if where < len(base_tasks) else "nothing"
    given = tasks[where] if where < len(tasks) else "nothing"
    raise EnhscanError(
        f"the base model learned {len(base_tasks)} tasks but --aux-targets gives "
        f"{len(tasks)}; task {where + 1} is {base_has} in the base and {given} here; give "
        "the targets, --aux-label-column and --aux-task-groups its pretraining used"
    )


def _resolved(names: list[str], wanted: list[str]) -> set[str]:
    """The sequences each of ``wanted`` names; a name matching none holds no window."""
    from enhscan.naming import select_chroms

    held: set[str] = set()
    for item in wanted:
        try:
            held.update(select_chroms(names, [item]))
        except ValueError:
            continue
    return held


#: pretrain's words in an error, and what they are called in `enhscan train`.
_AUX_WORDS = {
    "--label-column": "--aux-label-column",
    "--task-groups": "--aux-task-groups",
    "--targets": "--aux-targets",
    "lower --element-share": "give elements on the training chromosomes",
    "ask for fewer windows": "lower --aux-windows",
}


def _as_aux_options(message: str) -> str:
    out = message
    for theirs, ours in _AUX_WORDS.items():
        out = out.replace(theirs, ours)
    return f"auxiliary tasks: {out}"


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
        seqs = [self.auxiliary.seqs[row] for row in self.rows]
        views = augmented_views(seqs, starts.tolist(), flips.tolist(), width)
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
