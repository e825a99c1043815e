"""What enhscan knows about a model beyond its weights (``enhscan.json`` in a model folder)."""

from __future__ import annotations

from dataclasses import dataclass, field

from enhscan.errors import EnhscanError

METADATA_NAME = "enhscan.json"
FORMAT_VERSION = 1
WEIGHT_NAMES = ("model.safetensors", "pytorch_model.bin")
#: The model families (:mod:`enhscan.model.families` has an entry for each).
FAMILY_NAMES = ("dnabert2", "cnn", "hybrid", "dnabert", "hf")
TASK_TYPES = ("classification", "multilabel")
#: The task of a multi-task model that says "an element of any task overlaps the centre".
ANY_TASK = "any"
#: ``--task all``: every task of a multi-task model at once (one column each).
ALL_TASKS = "all"


@dataclass
class ModelMetadata:
    """What enhscan needs to know about a model beyond its weights.

    Attributes:
        family: model family: ``dnabert2``, ``cnn`` (the CNN baseline, one-hot input),
            ``hybrid`` (convolutions on one-hot input, then the DNABERT-2 encoder),
            ``dnabert`` (DNABERT, k-mer tokens) or ``hf`` (any transformers sequence
            classifier with its own DNA tokenizer).
        window: window width in bases the model was trained on.
        labels: class names, in logit order; for a multi-task model, the task names.
        positive_index: which label is "enhancer"; its probability is the score (a
            classifier's; unused by a multi-task model).
        task_type: ``classification`` (one class per window: softmax over ``labels``) or
            ``multilabel`` (one independent 0/1 target per task: a sigmoid per logit; scans
            choose a task).
        threshold: default call threshold (the best-F1 threshold from training, or 0.5).
        provenance: how the model was made (data, commands, versions).
        metrics: held-out metrics from training.
    """

    family: str = "dnabert2"
    window: int = 1000
    labels: list[str] = field(default_factory=lambda: ["background", "enhancer"])
    positive_index: int = 1
    threshold: float = 0.5
    provenance: dict = field(default_factory=dict)
    metrics: dict = field(default_factory=dict)
    task_type: str = "classification"
    format_version: int = FORMAT_VERSION

    @classmethod
    def from_dict(cls, data: dict, source: str = "metadata") -> ModelMetadata:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        meta = cls(**known)
        if meta.family not in FAMILY_NAMES:
            raise EnhscanError(
                f"{source}: unknown model family {meta.family!r}; this enhscan knows "
                f"{', '.join(FAMILY_NAMES)} (upgrade enhscan?)"
            )
        if not isinstance(meta.window, int) or meta.window <= 0:
            raise EnhscanError(f"{source}: window must be a positive integer, got {meta.window!r}")
        if meta.task_type not in TASK_TYPES:
            raise EnhscanError(
                f"{source}: unknown task_type {meta.task_type!r}; this enhscan knows "
                f"{', '.join(TASK_TYPES)} (upgrade enhscan?)"
            )
        if not 0 <= meta.threshold <= 1:
            raise EnhscanError(f"{source}: threshold must be in [0, 1], got {meta.threshold!r}")
        if not 0 <= meta.positive_index < max(len(meta.labels), 1):
            raise EnhscanError(f"{source}: positive_index {meta.positive_index} not in labels")
        return meta
