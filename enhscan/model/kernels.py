"""The kernels a network computes with when it scores, by name. The engine asks for one
(:func:`computing_with`) and never reaches into a network itself:

    plain            PyTorch as it is
    fused            oneDNN fp32 kernels with their epilogues folded in (:mod:`.fused_cpu`:
                     every Linear; DNABERT-2's gated MLP and output projections too)
    batch_invariant  every Linear in blocks of a fixed number of rows, and attention one
                     window at a time where the model offers it: each window's score is then
                     independent of its batch, to the last bit

The networks offer what they can: a module with a ``one_window_at_a_time`` attribute (the
DNABERT-2 attention) runs its windows one by one when it is set.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext

import torch

#: Names of the kernels.
KINDS = ("plain", "fused", "batch_invariant")

#: Rows per matrix multiply in batch-invariant scoring, by device type: large enough that the
#: BLAS kernels run at full speed.
ROW_TILE = {"cpu": 512, "cuda": 8192}


def computing_with(
    network: torch.nn.Module, kind: str, device: torch.device
) -> AbstractContextManager:
    """A context within which ``network`` computes with the kernels ``kind`` (module
    docstring) on ``device``. Forward passes only."""
    if kind == "batch_invariant":
        return batch_invariant_kernels(network, ROW_TILE.get(device.type, ROW_TILE["cpu"]))
    if kind == "fused":
        from enhscan.model.fused_cpu import fused_cpu_kernels

        return fused_cpu_kernels(network)
    if kind != "plain":
        raise ValueError(f"unknown kernels {kind!r}; use one of {', '.join(KINDS)}")
    return nullcontext()


@contextmanager
def batch_invariant_kernels(network: torch.nn.Module, tile: int) -> Iterator[None]:
    """Within the block, every ``nn.Linear`` of ``network`` multiplies in blocks of exactly
    ``tile`` rows (the last block zero-padded), and every attention module that offers it
    (an ``one_window_at_a_time`` attribute: DNABERT-2's) runs one window at a time.

    Why: BLAS libraries choose their kernel, and with it the order in which a dot product is
    summed, from the matrix shapes. Measured with PyTorch 2.13 on an x86 CPU, a row of
    ``x @ W`` (K = 3072) comes out differently in the last bits with 16 or 333 rows than with
    700. With every multiply the same shape, a row's result depends on that row alone.
    PyTorch's CPU attention shares its work out by batch and head: on an AMD EPYC a window's
    attention output differed in the last bits between batches of 1 and 7. Quantized Linear
    layers are left as they are.
    """
    linears = [m for m in network.modules() if type(m) is torch.nn.Linear]
    attentions = [m for m in network.modules() if hasattr(m, "one_window_at_a_time")]
    for m in linears:
        m.forward = _tiled_forward(m, tile)
    for m in attentions:
        m.one_window_at_a_time = True
    try:
        yield
    finally:
        for m in linears:
            del m.forward
        for m in attentions:
            m.one_window_at_a_time = False


def _tiled_forward(linear: torch.nn.Linear, tile: int):
    weight, bias = linear.weight, linear.bias

    def multiply(block: torch.Tensor, out: torch.Tensor) -> None:
        # The same op and shape for every block; without autocast the result lands in
        # ``out`` directly (no extra copy of the activations).
        if out.dtype == block.dtype == weight.dtype:
            if bias is None:
                torch.mm(block, weight.t(), out=out)
            else:
                torch.addmm(bias, block, weight.t(), out=out)
        else:  # autocast: let it pick the kernel dtype, then copy
            out.copy_(torch.nn.functional.linear(block, weight, bias))

    def forward(x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1])
        n = flat.shape[0]
        dtype = x.dtype
        if torch.is_autocast_enabled(x.device.type):
            dtype = torch.get_autocast_dtype(x.device.type)
        out = torch.empty(n, linear.out_features, dtype=dtype, device=x.device)
        whole = n - n % tile
        for i in range(0, whole, tile):
            multiply(flat[i : i + tile], out[i : i + tile])
        if whole < n:
            block = flat.new_zeros(tile, flat.shape[1])
            block[: n - whole] = flat[whole:]
            last = torch.empty(tile, linear.out_features, dtype=dtype, device=x.device)
            multiply(block, last)
            out[whole:] = last[: n - whole]
        return out.view(*x.shape[:-1], linear.out_features)

    return forward
