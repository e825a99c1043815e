"""How windows are computed: what a user asks for (:class:`ComputeOptions`, with ``auto``
choices) and what was decided (:class:`Backend`, frozen). The decisions that need no model
(device, precision, which options go together, what a resumed scan keeps) are made here; the
two that must run the model on probe windows (the batch size on a GPU, the fused CPU kernels)
are made by :func:`enhscan.engine.resolve_backend`, which is the one way to get a Backend.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from enhscan.declared import setting, shown
from enhscan.errors import EnhscanError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}

#: Choices of ``--kernels``.
KERNELS = ("auto", "fused", "plain")

#: Bounds of the batch size picked from free GPU memory.
GPU_BATCH_LIMITS = (8, 1024)


@dataclass(frozen=True)
class ComputeOptions:
    """What the user asks for; see :class:`Backend` for each field. ``device`` is ``auto``,
    ``cpu``, ``cuda`` or ``cuda:N``; ``dtype`` ``auto``, ``fp32``, ``bf16`` or ``fp16``;
    ``batch_size`` None picks one; ``kernels`` ``auto``, ``fused`` or ``plain``."""

    device: str = "auto"
    dtype: str = "auto"
    batch_size: int | None = None
    quantize: bool = False
    batch_invariant: bool = False
    compile: bool = False
    kernels: str = "auto"

    def check(self) -> None:
        """Refuse options that cannot go together (before any model is loaded)."""
        if self.batch_size is not None and self.batch_size <= 0:
            raise EnhscanError("--batch-size must be positive")
        if self.kernels not in KERNELS:
            raise EnhscanError(f"--kernels takes {', '.join(KERNELS)}, not {self.kernels!r}")
        if self.dtype != "auto" and self.dtype not in DTYPES:
            raise EnhscanError(f"--dtype takes auto, {', '.join(DTYPES)}, not {self.dtype!r}")
        if self.compile and (self.quantize or self.batch_invariant):
            other = "--quantize" if self.quantize else "--batch-invariant"
            raise EnhscanError(f"--compile cannot be combined with {other}; drop one of them")

    @property
    def one_named_device(self) -> bool:
        """True when every process keeps to the device named (the CPU, or one GPU that all
        share): processes then talk over gloo, since NCCL refuses two ranks on one GPU."""
        return self.device == "cpu" or self.device.startswith("cuda:")

    def continuing(self, recorded: dict) -> ComputeOptions:
        """The options a resumed scan runs with, given its manifest (``recorded``): an
        unchosen batch size and ``auto`` kernels keep what the interrupted run used, so the
        resumed shards score to the same bits."""
        options = self
        if self.batch_size is None and not self.batch_invariant and recorded.get("batch_size"):
            options = replace(options, batch_size=recorded["batch_size"])
        if self.kernels == "auto" and recorded.get("kernels", "plain") == "plain":
            options = replace(options, kernels="plain")  # plain kernels run anywhere
        return options


@dataclass(frozen=True)
class Backend:
    """How a scorer computes, decided once (:func:`enhscan.engine.resolve_backend`).

    Attributes:
        device: where the model runs.
        dtype: compute precision; fp16/bf16 run under autocast with fp32 weights.
        batch_size: windows per forward pass.
        quantize: int8 dynamic quantization of the Linear layers (CPU only).
        batch_invariant: each window's score is independent of the batch size and of its
            batch-mates, to the last bit (see :class:`enhscan.engine.WindowScorer`).
        compile: the network runs through ``torch.compile``.
        kernels: ``fused`` (the oneDNN kernels of :mod:`enhscan.model.fused_cpu`) or
            ``plain`` (PyTorch's own).
    """

    device: torch.device = setting(None, "--device", shown="")
    dtype: torch.dtype = setting(torch.float32, "--dtype", keep=True, shown="")
    batch_size: int = setting(32, "--batch-size", keep=True, shown="batch")
    quantize: bool = setting(False, "--quantize", keep=True, shown="int8")
    batch_invariant: bool = setting(False, "--batch-invariant", keep=True, shown="batch-invariant")
    compile: bool = setting(False, "--compile", keep=True, shown="compiled")
    kernels: str = setting("plain", "--kernels", keep=True, shown="{} kernels")

    def as_options(self, device: str) -> ComputeOptions:
        """Options that resolve to this backend's choices on another process, which resolves
        ``device`` (the one asked for) itself: ``auto`` and ``cuda`` mean the GPU the
        launcher gave it, ``cpu`` and ``cuda:N`` the same for every process."""
        dtype = next(name for name, d in DTYPES.items() if d == self.dtype)
        return ComputeOptions(
            device, dtype, self.batch_size, self.quantize, self.batch_invariant, self.compile,
            self.kernels,
        )  # fmt: skip

    def describe(self) -> str:
        """``cpu, float32, batch 32, fused kernels``: for reports."""
        return ", ".join(shown(self))


def resolve_device(device: str, launched_on: torch.device | None = None) -> torch.device:
    """The device to run on: the one the launcher gave this process (``launched_on``) unless
    a particular one is named; ``auto`` is the first CUDA GPU if there is one, else the CPU."""
    if launched_on is not None and device in ("auto", "cuda"):
        return launched_on
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except RuntimeError:
        raise EnhscanError(f"unknown device {device!r}; use auto, cpu, cuda or cuda:N") from None
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise EnhscanError(
            "--device cuda asked for, but PyTorch sees no CUDA GPU; use --device cpu"
        )
    return resolved


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` -> bf16 on a GPU that supports it (else fp16), fp32 on the CPU."""
    if dtype == "auto":
        if device.type != "cuda":
            return torch.float32
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return DTYPES[dtype]


def default_batch_size(device: torch.device, network: torch.nn.Module | None = None) -> int:
    """Windows per forward pass when nothing better is known: 128 on a GPU (see
    :func:`batch_size_for_memory` for the usual GPU choice); on the CPU 32, or 8 for models
    wider than 512 (such as the DNABERT-2-117M shape), so a batch's activations stay in cache.
    Measured on 2 cores: 32 beat 64 by about 25% with the default model, and 8 beat 32 by
    10-30% with the 117M shape."""
    if device.type == "cuda":
        return 128
    hidden = getattr(getattr(network, "config", None), "hidden_size", 0) or 0
    return 8 if hidden > 512 else 32


def batch_size_for_memory(free_bytes: int, bytes_per_window: int, share: float = 0.5) -> int:
    """The largest batch whose activations fit in ``share`` of ``free_bytes``.

    Rounded down to a multiple of 8 (tensor-core friendly) and kept within
    :data:`GPU_BATCH_LIMITS`; above about a thousand windows a GPU gains nothing more.
    """
    low, high = GPU_BATCH_LIMITS
    if bytes_per_window <= 0:
        return high
    fits = int(free_bytes * share // bytes_per_window)
    return max(low, min(high, fits // 8 * 8))


def check_device_options(options: ComputeOptions, device: torch.device) -> None:
    """Refuse options the chosen device cannot run."""
    if options.quantize and device.type != "cpu":
        raise EnhscanError("--quantize is for the CPU; on a GPU use --dtype bf16 instead")
