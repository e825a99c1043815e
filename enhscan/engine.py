"""The engine: feeds windows of sequence through a classifier and returns their scores.

It knows nothing of genomes or files: sequences in, probabilities out. Scoring is split in two
halves so a scan can run them on different threads:

- :meth:`WindowScorer.prepare` (host side, no model): tokenize, sort by token count and cut
  into batches that pad little; a batch whose windows all have the same length carries no
  mask at all, which lets attention share one bias across the batch.
- :meth:`WindowScorer.run` (device side): run the prepared batches and put the scores back in
  the order given.

Batches are a function of the windows given and the batch size only, so the same windows
always give the same bits. With another batch size a score can differ in the last bits
(about 1e-7): BLAS libraries choose their kernels, and with them the order of summation, by
matrix shape.
"""

from __future__ import annotations

import copy
import logging
import warnings
from collections.abc import Sequence
from contextlib import nullcontext
from dataclasses import dataclass, replace

import numpy as np
import torch

from enhscan.backend import (
    Backend,
    ComputeOptions,
    batch_size_for_memory,
    check_device_options,
    default_batch_size,
    resolve_device,
    resolve_dtype,
)
from enhscan.errors import EnhscanError
from enhscan.model.encoding import pad_batch
from enhscan.model.families import FAMILIES
from enhscan.model.folder import Classifier
from enhscan.model.kernels import computing_with

log = logging.getLogger(__name__)

#: What the fused CPU kernels may change in a probability, at most, in the start-up check
#: against PyTorch's own: the "same scores" tolerance of benchmarks/scan_speed.py.
FUSED_TOLERANCE = 1e-4


@dataclass
class Batch:
    """Windows ready for one forward pass.

    Attributes:
        rows: int64 [b], positions of these windows in the list given to ``prepare``.
        ids: int64 [b, L] token ids, right-padded (pinned memory when the device is a GPU).
        mask: bool [b, L], True on real tokens; None when no window in the batch is padded.
    """

    rows: np.ndarray
    ids: torch.Tensor
    mask: torch.Tensor | None


class WindowScorer:
    """Scores DNA windows with a :class:`~enhscan.model.folder.Classifier`.

    Args:
        classifier: the loaded model (its network is moved to the backend's device).
        backend: how to compute, decided by :func:`resolve_backend`; or the
            :class:`~enhscan.backend.ComputeOptions` to decide it from (None: the defaults).
            The scorer never changes it. With ``quantize`` the scorer works on a quantized
            copy (``classifier.network`` is left as it was); with ``compile`` it compiles at
            start-up on probe batches (seconds to a minute; scores change in the last bits).
            With ``batch_invariant``, batches hold windows of one token count only (no
            padding), every matrix multiply runs in blocks of a fixed number of rows, and
            attention one window at a time (:mod:`enhscan.model.kernels`).
        task: for a multi-task model, the task to score (the sigmoid of its logit); None
            takes ``any`` where the model has it; ``all`` every task ([n, tasks] scores).
            Classifiers take None.
    """

    def __init__(
        self,
        classifier: Classifier,
        backend: Backend | ComputeOptions | None = None,
        *,
        task: str | None = None,
    ):
        if not isinstance(backend, Backend):
            backend = resolve_backend(classifier, backend or ComputeOptions())
        self.classifier = classifier
        self.backend = backend
        self.task, self._column, self._sigmoid = output_column(classifier.metadata, task)
        # ``--task all``: a column per task, [n, tasks] scores instead of [n].
        self.outputs = len(classifier.metadata.labels) if isinstance(self._column, slice) else 0
        self.network = classifier.network.to(backend.device).eval()
        if backend.quantize:
            self.network = quantize_linear_int8(self.network)
        # A classifier reads only the first token of the last layer; families that can skip
        # the rest say so.
        first_only = FAMILIES[classifier.metadata.family].first_only
        self._forward_kwargs = {"first_only": True} if first_only else {}
        self._pin = backend.device.type == "cuda"
        self._model = self.network
        if backend.compile:
            self._model = torch.compile(self.network, dynamic=True)
            self._compile_now()

    @property
    def device(self) -> torch.device:
        return self.backend.device

    @property
    def dtype(self) -> torch.dtype:
        return self.backend.dtype

    @property
    def batch_size(self) -> int:
        return self.backend.batch_size

    @property
    def kernels(self) -> str:
        return self.backend.kernels

    def _autocast(self):
        if self.dtype == torch.float32:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    # -- host side --------------------------------------------------------------------------

    def prepare(self, seqs: Sequence[str]) -> list[Batch]:
        """Tokenize ``seqs`` and cut them into length-sorted batches (no model involved).

        Safe to call from another thread than :meth:`run`: the tokenizer releases the GIL and
        tokenizes on all cores.
        """
        return self.prepare_encoded(self.classifier.encoder.encode(seqs))

    def prepare_encoded(
        self, encoded: Sequence[np.ndarray], batch_size: int | None = None
    ) -> list[Batch]:
        """Like :meth:`prepare`, for sequences already encoded (int64 token id arrays);
        ``batch_size`` overrides the scorer's own."""
        batch_size = batch_size or self.batch_size
        lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
        order = np.argsort(lengths, kind="stable")
        pad_id = self.classifier.encoder.pad_id
        if self.backend.batch_invariant:  # one group per token count: nothing is ever padded
            groups = np.split(order, np.flatnonzero(np.diff(lengths[order])) + 1)
        else:
            groups = [order]
        slices = [g[i : i + batch_size] for g in groups for i in range(0, len(g), batch_size)]
        batches = []
        for rows in slices:
            ids_np, mask_np = pad_batch([encoded[r] for r in rows], pad_id)
            ids = torch.from_numpy(ids_np)
            # A batch of one token count needs no mask: attention then shares one bias.
            mask = None if mask_np.all() else torch.from_numpy(mask_np)
            if self._pin:
                ids = ids.pin_memory()
                mask = mask.pin_memory() if mask is not None else None
            batches.append(Batch(rows, ids, mask))
        return batches

    # -- device side ------------------------------------------------------------------------

    def run(self, batches: Sequence[Batch], n: int | None = None) -> np.ndarray:
        """Scores of prepared batches.

        Args:
            batches: all the batches one call of :meth:`prepare` returned.
            n: number of windows prepared (default: the rows the batches hold).

        Returns:
            float32 [n] ([n, tasks] for ``task="all"``), in the order the windows were given
            to :meth:`prepare`.
        """
        if n is None:
            n = sum(len(b.rows) for b in batches)
        scores = np.empty((n, self.outputs) if self.outputs else n, dtype=np.float32)
        if not batches:
            return scores
        was_training = self.network.training
        self.network.eval()
        outputs = []
        with torch.inference_mode(), self._autocast(), self._kernels():
            for batch in batches:
                ids = batch.ids.to(self.device, non_blocking=True)
                mask = batch.mask
                if mask is not None:
                    mask = mask.to(self.device, non_blocking=True)
                outputs.append(self._probabilities(ids, mask))
            # One copy back per call, not one per batch: a GPU never waits for the host mid-way.
            flat = torch.cat(outputs).float().cpu().numpy()
        self.network.train(was_training)
        scores[np.concatenate([b.rows for b in batches])] = flat
        return scores

    def _kernels(self):
        """The kernels the network offers for this backend (:mod:`enhscan.model.kernels`)."""
        kind = "batch_invariant" if self.backend.batch_invariant else self.backend.kernels
        return computing_with(self.network, kind, self.device)

    def _probabilities(self, ids: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
        from enhscan.model.dnabert2 import probabilities

        logits = self._model(input_ids=ids, attention_mask=mask, **self._forward_kwargs).logits
        if self._sigmoid:
            return torch.sigmoid(logits[..., self._column].float())
        return probabilities(logits, self._column)

    # -- both -------------------------------------------------------------------------------

    def score(self, seqs: Sequence[str], rc: str | None = None) -> np.ndarray:
        """Enhancer probability of each sequence.

        Args:
            seqs: upper-case DNA strings (any length; normally one window each).
            rc: ``mean`` or ``max``: also score each reverse complement and combine the two
                strands (:func:`combine_strands`); None scores the sequences as given.

        Returns:
            float32 [len(seqs)], in the order given.
        """
        inputs = strand_inputs(seqs, rc)
        return strand_scores(self.run(self.prepare(inputs), len(inputs)), rc)

    def score_encoded(self, encoded: Sequence[np.ndarray]) -> np.ndarray:
        """Like :meth:`score`, for sequences already encoded (int64 token id arrays)."""
        return self.run(self.prepare_encoded(encoded), len(encoded))

    def probe_encoded(self) -> list[np.ndarray]:
        """Two start-up probe windows, encoded: random ACGT (the same every time) a window
        long and 50 bases shorter, so that a batch of both is padded. Random sequence
        tokenizes into more tokens than real DNA, so probes err on the heavy side."""
        rng = np.random.default_rng(0)
        window = self.classifier.metadata.window
        probes = ["".join(rng.choice(list("ACGT"), size=n)) for n in (window, window - 50)]
        return self.classifier.encoder.encode(probes)

    def _compile_now(self) -> None:
        """Compile on probe batches: two windows without padding, two with, and one alone
        (each its own graph: PyTorch specializes a batch of one), so the cost falls at
        start-up and a machine that cannot compile (no C++ compiler for the CPU, no Triton
        for the GPU) fails here, in one line."""
        encoded = self.probe_encoded()
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                self.run(self.prepare_encoded([encoded[0]] * 2), 2)
                self.run(self.prepare_encoded(encoded), 2)
                self.run(self.prepare_encoded(encoded[:1]), 1)
        except Exception as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise EnhscanError(
                f"--compile failed on this machine ({first[:200]}); drop --compile"
            ) from err


def resolve_backend(
    classifier: Classifier,
    options: ComputeOptions,
    launched_on: torch.device | None = None,
) -> Backend:
    """Decide how ``classifier`` computes: the one place every compute option is decided.

    The device (``launched_on``: the one the launcher gave this process, used unless the
    options name a particular one) and the precision; then, where the options leave them
    open, the CPU kernels (fused where they apply and pass a check against plain ones on
    probe windows: :func:`choose_kernels`) and the batch size (on the CPU
    :func:`~enhscan.backend.default_batch_size`; on a GPU what half its free memory holds,
    measured with a probe batch).

    Raises:
        EnhscanError: options that cannot go together or cannot run here, in one line.
    """
    from enhscan.model.fused_cpu import bound_kernel_caches

    bound_kernel_caches()  # before anything runs: PyTorch's own ops use oneDNN too
    options.check()
    device = resolve_device(options.device, launched_on)
    check_device_options(options, device)
    backend = Backend(
        device,
        resolve_dtype(options.dtype, device),
        options.batch_size or 8,
        options.quantize,
        options.batch_invariant,
        options.compile,
        "plain",
    )
    if options.kernels != "plain":
        backend = replace(backend, kernels=choose_kernels(classifier, backend, options.kernels))
    if options.batch_size is None:
        if device.type == "cuda":
            size = batch_size_from_memory(classifier, backend)
        else:
            size = default_batch_size(device, classifier.network)
        backend = replace(backend, batch_size=size)
    return backend


def choose_kernels(classifier: Classifier, backend: Backend, asked: str) -> str:
    """``fused`` if the fused CPU kernels serve this backend and pass a check against
    PyTorch's own on probe windows (a padded batch, and each window alone); else ``plain``,
    or, when ``asked`` is ``fused``, an error saying why. Under ``auto``, ``plain`` for a
    family that opts out (:attr:`enhscan.model.families.Family.auto_fused`)."""
    from enhscan.model.fused_cpu import fused_kernels_apply

    if asked == "auto" and not FAMILIES[classifier.metadata.family].auto_fused:
        return "plain"  # measured slower than PyTorch's own for this family
    modes = (
        ("--quantize", backend.quantize),
        ("--batch-invariant", backend.batch_invariant),
        ("--compile", backend.compile),
    )
    clash = next((flag for flag, on in modes if on), None)
    network = classifier.network.to(backend.device)
    why = (
        f"not with {clash}"
        if clash
        else fused_kernels_apply(network, backend.device, backend.dtype)
    )
    checked = why is None
    if checked:
        why = check_fused(classifier, backend)
    if why is None:
        return "fused"
    if asked == "fused":
        raise EnhscanError(f"--kernels fused: {why}; use --kernels auto or plain")
    if checked:  # they should have run here and did not: say so
        log.warning("fused CPU kernels not used: %s", why)
    return "plain"


def check_fused(classifier: Classifier, backend: Backend) -> str | None:
    """Score the probe windows with plain and with fused kernels: None if they agree within
    :data:`FUSED_TOLERANCE`, else what went wrong."""
    plain = WindowScorer(classifier, replace(backend, kernels="plain"))
    fused = WindowScorer(classifier, replace(backend, kernels="fused"))
    encoded = plain.probe_encoded()
    probes = [plain.prepare_encoded(encoded, 2), plain.prepare_encoded(encoded, 1)]
    try:
        want = [plain.run(b, 2) for b in probes]
        got = [fused.run(b, 2) for b in probes]
    except Exception as err:  # a oneDNN build without one of the kernels or post-ops
        return f"they failed on this machine ({type(err).__name__}: {str(err)[:120]})"
    diff = max(float(np.abs(f - p).max()) for f, p in zip(got, want, strict=True))
    log.debug("fused CPU kernels: probe scores within %.1e of plain ones", diff)
    if not diff <= FUSED_TOLERANCE:
        return f"their probe scores differ from plain ones by {diff:.1e}"
    return None


def batch_size_from_memory(classifier: Classifier, backend: Backend) -> int:
    """Measure one window's activation memory on the GPU with a probe batch, then fill half
    the free memory (:func:`~enhscan.backend.batch_size_for_memory`).

    The probe batch holds 7 random windows a window long and one shorter: random sequence
    tokenizes into more tokens than real DNA, so real batches stay below the estimate, and
    the batch is padded, so the per-window attention mask is counted too (after the length
    sort, most real batches hold more than one token count).
    """
    n = 8
    probe = WindowScorer(classifier, replace(backend, batch_size=n, compile=False))
    batches = memory_probe(probe, n)
    device = backend.device
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    probe.run(batches, n)
    per_window = (torch.cuda.max_memory_allocated(device) - before) // n
    free, _ = torch.cuda.mem_get_info(device)
    size = batch_size_for_memory(free, per_window)
    log.info("batch size %d (%.1f MB per window, %.1f GB free)", size, per_window / 1e6, free / 1e9)
    return size


def memory_probe(scorer: WindowScorer, n: int) -> list[Batch]:
    """One padded batch of ``n`` probe windows (:meth:`WindowScorer.probe_encoded`): n - 1
    a window long and one shorter."""
    full, shorter = scorer.probe_encoded()
    return scorer.prepare_encoded([full] * (n - 1) + [shorter], batch_size=n)


def output_column(metadata, task: str | None) -> tuple[str | None, int | slice, bool]:
    """Which logit a scorer reads and how: ``(task, column, sigmoid)``.

    A classifier reads the softmax probability of its positive label (``task`` must be None);
    a multi-task model the sigmoid of ``task``'s logit (None: ``any``, where it has one), or
    of every task's with ``task="all"`` (column ``slice(None)``).

    Raises:
        EnhscanError: a task for a classifier, or a task the model does not have.
    """
    if metadata.task_type != "multilabel":
        if task is not None:
            raise EnhscanError(
                "--task is for multi-task models (enhscan pretrain --targets); this model is a "
                "classifier: drop --task"
            )
        return None, metadata.positive_index, False
    from enhscan.model.metadata import ALL_TASKS, ANY_TASK

    if task == ALL_TASKS and ALL_TASKS not in metadata.labels:
        return ALL_TASKS, slice(None), True
    if task is None:
        if ANY_TASK not in metadata.labels:
            raise EnhscanError(
                f"this model predicts {len(metadata.labels)} tasks; choose one with --task ("
                + ", ".join(metadata.labels[:6])
                + (", ..." if len(metadata.labels) > 6 else "")
                + ")"
            )
        task = ANY_TASK
    if task not in metadata.labels:
        shown = ", ".join(metadata.labels[:8]) + (", ..." if len(metadata.labels) > 8 else "")
        raise EnhscanError(f"--task {task}: the model has no such task; it has {shown}")
    return task, metadata.labels.index(task), True


def combine_strands(forward: np.ndarray, reverse: np.ndarray, how: str) -> np.ndarray:
    """A window's score from its two strands' scores: their ``mean`` or their ``max``.

    forward, reverse: float32 [n] -> float32 [n].
    """
    if how == "mean":
        return ((forward.astype(np.float64) + reverse) / 2).astype(np.float32)
    if how == "max":
        return np.maximum(forward, reverse)
    raise ValueError(f"unknown strand combination {how!r}; use mean or max")


def strand_inputs(seqs: Sequence[str], rc: str | None) -> list[str]:
    """What to score for ``seqs``: the sequences, followed by their reverse complements when
    ``rc`` asks for both strands (:func:`strand_scores` undoes it)."""
    if rc is None:
        return list(seqs)
    from enhscan.sequence import with_reverse_complements

    return with_reverse_complements(list(seqs))


def strand_scores(scores: np.ndarray, rc: str | None) -> np.ndarray:
    """Scores of :func:`strand_inputs` back to one per sequence: float32 [2n] -> [n] with
    ``rc`` (their strands combined), else as they are."""
    if rc is None:
        return scores
    half = len(scores) // 2
    return combine_strands(scores[:half], scores[half:], rc)


def quantize_linear_int8(network: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``network`` whose Linear layers compute in int8 (dynamic quantization).

    Weights are quantized once, activations per batch; on the CPU this runs 1.6-1.9x faster
    than fp32 for DNABERT-2 models and no faster for the hybrid (benchmarks/README.md), moving
    scores by up to about 0.02. It uses PyTorch's
    own ``torch.ao`` dynamic quantization, which PyTorch now marks deprecated in favour of the
    separate torchao package; its warnings are silenced here.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            from torch.ao.quantization import quantize_dynamic
        except ImportError:  # pragma: no cover - a future torch without torch.ao
            raise EnhscanError(
                "this PyTorch has no torch.ao dynamic quantization; drop --quantize"
            ) from None
        return quantize_dynamic(copy.deepcopy(network), {torch.nn.Linear}, dtype=torch.qint8)
