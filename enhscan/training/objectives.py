"""What enhscan trains for: each objective turns a batch into a loss for
:func:`enhscan.training.loop.train`.

Batches are dicts of tensors on the training device: ``input_ids`` int64 [B, L] and
``attention_mask`` [B, L] always, ``labels`` int64 [B] (classification) or float32 [B, tasks]
(multi-task) where the objective needs them. Masked-LM objectives draw their masks on the
training device from its global generator, which the loop reseeds every round, so masks are
reproducible.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from enhscan.model.encoding import BpeEncoder

IGNORE = -100


class Classification:
    """Cross-entropy over classes, optionally weighted per class (float32 [classes])."""

    def __init__(self, class_weights: torch.Tensor | None = None):
        self.class_weights = class_weights

    def loss(self, model, batch) -> tuple[torch.Tensor, dict]:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return F.cross_entropy(logits.float(), batch["labels"], weight=self.class_weights), {}

    def summary(self, totals: dict) -> dict:
        return {}


class MultiLabel:
    """Binary cross-entropy per task, positives weighted per task (float32 [tasks])."""

    def __init__(self, positive_weights: torch.Tensor | None = None):
        self.positive_weights = positive_weights

    def loss(self, model, batch) -> tuple[torch.Tensor, dict]:
        logits = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
        return _bce(logits, batch["labels"], self.positive_weights), {}

    def summary(self, totals: dict) -> dict:
        return {}


class MaskedLM:
    """BERT's masked-token prediction (see :func:`mask_tokens`) for a model with an MLM head
    (``model(input_ids, attention_mask, labels).loss``); logs the masked-token accuracy."""

    def __init__(self, encoder: BpeEncoder, mask_prob: float = 0.15):
        self.encoder, self.mask_prob = encoder, mask_prob

    def loss(self, model, batch) -> tuple[torch.Tensor, dict]:
        inputs, labels = _masked(batch, self.encoder, self.mask_prob)
        out = model(input_ids=inputs, attention_mask=batch["attention_mask"], labels=labels)
        return out.loss, _accuracy(out.logits, labels)

    def summary(self, totals: dict) -> dict:
        return _masked_accuracy(totals)


class MultiLabelWithMaskedLM:
    """A weighted sum: ``(1 - mlm_weight) * multi-task BCE + mlm_weight * masked-LM loss``.

    For :class:`enhscan.model.dnabert2.DNABert2WithMLMHead`: the tasks are predicted from the
    intact windows and the masked tokens from a masked copy, in one call, so that processes
    stay in step under distributed training.
    """

    def __init__(
        self,
        encoder: BpeEncoder,
        mlm_weight: float,
        positive_weights: torch.Tensor | None = None,
        mask_prob: float = 0.15,
    ):
        self.encoder, self.mlm_weight, self.mask_prob = encoder, mlm_weight, mask_prob
        self.positive_weights = positive_weights

    def loss(self, model, batch) -> tuple[torch.Tensor, dict]:
        masked, labels = _masked(batch, self.encoder, self.mask_prob)
        logits, mlm = model(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            masked_input_ids=masked,
            mlm_labels=labels,
        )
        tasks = _bce(logits, batch["labels"], self.positive_weights)
        total = (1 - self.mlm_weight) * tasks + self.mlm_weight * mlm.loss
        counts = _accuracy(mlm.logits, labels)
        counts.update(task_loss=tasks.detach(), mlm_loss=mlm.loss.detach(), n=1)
        return total, counts

    def summary(self, totals: dict) -> dict:
        n = max(totals.get("n", 0), 1)
        return {
            "task_loss": totals.get("task_loss", 0.0) / n,
            "mlm_loss": totals.get("mlm_loss", 0.0) / n,
            **_masked_accuracy(totals),
        }


class ClassificationWithAuxiliaryTasks:
    """Cross-entropy of the labelled rows plus ``weight`` times the auxiliary tasks'
    positive-weighted binary cross-entropy on the auxiliary rows.

    Batches (from :class:`enhscan.training.auxiliary.PairedWindows`): ``input_ids``
    [B + A, L] with the labelled windows first, ``labels`` int64 [B], ``auxiliary_targets``
    float32 [A, tasks].
    """

    def __init__(
        self,
        weight: float,
        class_weights: torch.Tensor | None = None,
        positive_weights: torch.Tensor | None = None,
    ):
        self.weight = weight
        self.class_weights, self.positive_weights = class_weights, positive_weights

    def loss(self, model, batch) -> tuple[torch.Tensor, dict]:
        logits, auxiliary = model(batch["input_ids"], batch["attention_mask"])
        n = batch["labels"].shape[0]
        main = F.cross_entropy(logits[:n].float(), batch["labels"], weight=self.class_weights)
        tasks = _bce(auxiliary[n:], batch["auxiliary_targets"], self.positive_weights)
        counts = {"main_loss": main.detach(), "auxiliary_loss": tasks.detach(), "n": 1}
        return main + self.weight * tasks, counts

    def summary(self, totals: dict) -> dict:
        n = max(totals.get("n", 0), 1)
        return {
            "main_loss": totals.get("main_loss", 0.0) / n,
            "auxiliary_loss": totals.get("auxiliary_loss", 0.0) / n,
        }


def _bce(logits: torch.Tensor, targets: torch.Tensor, weights: torch.Tensor | None):
    return F.binary_cross_entropy_with_logits(logits.float(), targets.float(), pos_weight=weights)


def _masked(batch, encoder: BpeEncoder, mask_prob: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Masked inputs and labels of a batch, drawn on the batch's device (its global
    generator: no copy to the host and back)."""
    return mask_tokens(batch["input_ids"], batch["attention_mask"].bool(), encoder, mask_prob)


def _masked_accuracy(totals: dict) -> dict:
    return {"masked_accuracy": totals.get("correct", 0) / max(totals.get("scored", 0), 1)}


def _accuracy(logits: torch.Tensor, labels: torch.Tensor) -> dict:
    """Counts of correctly predicted scored tokens (``logits`` [N, V] for the N scored), left
    on the device: the loop adds them up and reads them once per round."""
    target = labels[labels != IGNORE]
    return {"correct": (logits.argmax(-1) == target).sum(), "scored": target.numel()}


def mask_tokens(
    ids: torch.Tensor,
    mask: torch.Tensor,
    encoder: BpeEncoder,
    mask_prob: float,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """BERT masking of a padded batch.

    Args:
        ids: int64 [B, L] token ids; mask: bool [B, L], True on real tokens (same device).
        encoder: gives the special token ids and vocabulary size.
        mask_prob: share of (non-special) tokens chosen for prediction.
        generator: torch RNG deciding the masks, on the tensors' device (None: that device's
            global generator).

    Returns:
        ``(inputs, labels)``: int64 [B, L] each; labels hold the original token where a
        prediction is scored and -100 elsewhere. Every row gets at least one scored token.
        Of the scored tokens 80% become [MASK], 10% a random token and 10% stay.
    """
    device = ids.device
    special = torch.tensor(encoder.special_ids, device=device)
    candidates = mask & ~torch.isin(ids, special)
    chosen = (torch.rand(ids.shape, generator=generator, device=device) < mask_prob) & candidates
    # Rows where chance chose nothing: score their first candidate, so no row is wasted.
    empty = ~chosen.any(dim=1) & candidates.any(dim=1)
    first = candidates.float().argmax(dim=1)
    chosen[empty, first[empty]] = True
    labels = torch.where(chosen, ids, torch.full_like(ids, IGNORE))
    roll = torch.rand(ids.shape, generator=generator, device=device)
    inputs = ids.clone()
    inputs[chosen & (roll < 0.8)] = encoder.mask_id
    randomised = chosen & (roll >= 0.8) & (roll < 0.9)
    first_normal = max(encoder.special_ids) + 1
    inputs[randomised] = torch.randint(
        first_normal, encoder.vocab_size, ids.shape, generator=generator, device=device
    )[randomised]
    return inputs, labels
