"""Fused fp32 kernels for inference on the CPU: oneDNN matrix multiplies with their epilogues.

PyTorch runs an fp32 ``nn.Linear`` on the CPU through MKL's sgemm. oneDNN, which PyTorch
ships too, has two advantages for scoring:

- on some processors its fp32 matmul is simply faster. Measured with PyTorch 2.13 on 2 cores
  of an AMD EPYC (Zen 4): 160-198 GFLOP/s against MKL's 110-145 for the DNABERT-2-117M
  shapes (MKL does not pick its AVX-512 kernels on AMD processors);
- it applies element-wise work to the matmul's output while it is still in cache: the
  gated GELU of the DNABERT-2 MLP, ``gelu(x W_g) * (x W_v)``, becomes two matmuls with a
  GELU and a multiply folded in, and the residual add after each output projection is
  folded into that projection.

On that machine the 117M-shape forward ran 1.3-1.5x faster; ``benchmarks/scan_speed.py``
measures the scan. The arithmetic stays fp32 (oneDNN's default math mode): scores move in
the last bits only, as with another BLAS library. Inside :func:`fused_cpu_kernels` the
network's modules use these kernels; outside it they are plain PyTorch again, and training
never sees them (they have no backward).

oneDNN compiles a kernel for each matrix shape, and it and PyTorch each keep up to 1,024 of
them by default. A scan's batches come in hundreds of shapes (one per token count), so the
caches grew the peak memory of a 6 Mb scan with the default model from 0.5 GB (plain
kernels) to 1.3 GB, and that of GRCh37 chr20 (63 Mb) to 1.8 GB. Sorted batches reuse a
shape for a batch or two, and one batch uses about a dozen, so :func:`bound_kernel_caches`
keeps :data:`PRIMITIVE_CACHE` (16). Measured on the 6 Mb scan, 2-3 rounds each: 16 kept 0.58
GB and the speed of 1,024 (46.5 s against 46 s, within the noise); 8 was 9% slower.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import Tensor, nn

__all__ = ["PRIMITIVE_CACHE", "bound_kernel_caches", "fused_cpu_kernels", "fused_kernels_apply"]

#: Compiled oneDNN kernels kept, in oneDNN's cache and in PyTorch's (ideep's) alike.
PRIMITIVE_CACHE = 16

#: The environment variables that size those two caches; each is read once, when its cache
#: is first used. A value the user set wins.
CACHE_VARIABLES = ("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "LRU_CACHE_CAPACITY")


def _ops():
    """The oneDNN linear op of this PyTorch build, or None without one."""
    if not torch.backends.mkldnn.is_available():
        return None
    return getattr(torch.ops.mkldnn, "_linear_pointwise", None)


def bound_kernel_caches() -> None:
    """Size oneDNN's kernel caches to :data:`PRIMITIVE_CACHE`, unless the user set them.

    Effective only before the process first runs oneDNN, which PyTorch itself may do for
    some ops (GELU, bf16 matmuls): call it before any model runs. Harmless after.
    """
    for name in CACHE_VARIABLES:
        os.environ.setdefault(name, str(PRIMITIVE_CACHE))


def fused_kernels_apply(network: nn.Module, device: torch.device, dtype: torch.dtype) -> str | None:
    """Why :func:`fused_cpu_kernels` cannot serve ``network``, or None if it can.

    They serve fp32 networks on the CPU whose Linear layers are plain ``nn.Linear`` (a
    quantized network's are not) in a PyTorch built with oneDNN.
    """
    if device.type != "cpu":
        return "they are for the CPU"
    if dtype != torch.float32:
        return "they compute in fp32"
    if _ops() is None:
        return "this PyTorch has no oneDNN"
    linears = [m for m in network.modules() if type(m) is nn.Linear]
    if not linears:
        return "the model has no Linear layers"
    if any(p.dtype != torch.float32 for m in linears for p in m.parameters()):
        return "the model's weights are not fp32"
    return None


@contextmanager
def fused_cpu_kernels(network: nn.Module) -> Iterator[None]:
    """Within the block, ``network`` computes with oneDNN kernels (see the module docstring).

    Every ``nn.Linear`` multiplies through oneDNN; in a DNABERT-2 network the gated MLP and
    the attention output projection also fold their GELU, gate product and residual add into
    the matmuls. Forward passes only (use it under ``torch.inference_mode``). The caller
    checks :func:`fused_kernels_apply` first.

    Calls :func:`bound_kernel_caches` (the scorer has done so before anything ran).
    """
    from enhscan.model.dnabert2 import DNABert2MLP, DNABert2SelfOutput

    bound_kernel_caches()
    linear_op = _ops()
    patched = []
    for module in network.modules():
        if type(module) is nn.Linear:
            module.forward = _linear(linear_op, module)
        elif isinstance(module, DNABert2MLP):
            module.forward = _gated_mlp(linear_op, module)
        elif isinstance(module, DNABert2SelfOutput):
            module.forward = _output_projection(linear_op, module)
        else:
            continue
        patched.append(module)
    try:
        yield
    finally:
        for module in patched:
            del module.forward


def _linear(op, linear: nn.Linear):
    weight, bias = linear.weight, linear.bias

    def forward(x: Tensor) -> Tensor:
        if x.dim() < 2:
            return torch.nn.functional.linear(x, weight, bias)
        return op(x, weight, bias, "none", [], "")

    return forward


def _gated_mlp(op, mlp: nn.Module):
    # The gated and the plain halves of `gated_layers` are its first and last I rows: two
    # contiguous views, so nothing is copied.
    size = mlp.intermediate_size
    gate_weight = mlp.gated_layers.weight[:size]
    value_weight = mlp.gated_layers.weight[size:]
    wo, layernorm = mlp.wo, mlp.layernorm

    def forward(x: Tensor) -> Tensor:
        """x: [B, L, H] -> [B, L, H]; dropout is a no-op in inference."""
        gated = op(x, gate_weight, None, "gelu", [], "none")  # "none": exact erf GELU
        h = op.binary(x, gated, value_weight, None, "mul")  # (x W_v) * gelu(x W_g)
        return layernorm(op.binary(h, x, wo.weight, wo.bias, "add"))

    return forward


def _output_projection(op, output: nn.Module):
    dense, layernorm = output.dense, output.LayerNorm

    def forward(context: Tensor, residual: Tensor) -> Tensor:
        """context, residual: [B, L, H] -> LayerNorm(context W + b + residual)."""
        return layernorm(op.binary(context, residual, dense.weight, dense.bias, "add"))

    return forward
