#!/usr/bin/env python3
"""Length-sorted batches against packed sequences: which way of feeding the model is faster.

Issue 5 leaves the choice open: batches built by token length, or windows packed into one
sequence with a per-window attention mask (FlexAttention with an ALiBi score modifier and a
document mask), whichever measures fastest. enhscan builds length-sorted batches. This script
measures both on the same windows of real sequence (GRCh37 chr20 from ../shared/data,
tokenized with the real DNABERT-2 tokenizer) and prints:

- the padding waste of length-sorted batches (tokens computed / real tokens) at batch sizes
  from 8 to 4096, next to padding every window to 512 tokens;
- per model size, windows/s of enhscan's scorer (length-sorted batches, attention through
  SDPA with an ALiBi bias) and of a packed forward (each batch's windows end to end in one
  sequence, not one padding token, FlexAttention with an ALiBi score modifier and a block mask
  that keeps each window to itself; the last layer queries the [CLS] tokens only, as
  enhscan's does), their ratio and its range over the rounds, and how far the scores differ.

    python benchmarks/batching.py [--device cpu|cuda] [--windows small=800,base=48]

The model sizes are DNABERT-2 shapes with random weights (``small``: the v1 default model's;
``base``: DNABERT-2-117M's); the shipped default is a hybrid on one-hot bases, with no tokens
to pad or pack.

Both get the same weights, the same windows in the same groups (the scorer's batches), and
the same dtype (fp32 on the CPU, bf16 autocast on a GPU). The packed forward builds its block
mask for each pack inside the timing, as a scan would have to. FlexAttention is compiled
(dynamic shapes, so packs of any length share the kernels) before the timing starts; it needs
a C++ compiler on the CPU and Triton on a GPU.
"""

from __future__ import annotations

import contextlib
import os
import platform
import sys
import time
from collections.abc import Callable, Sequence

import click
import numpy as np
from common import CHR20, FP32_TOLERANCE, region_sequence

PAD_TO = 512  # what the naive loop pads every window to
WINDOW = 1000
STRIDE = 200
BATCH_SIZES = (8, 32, 128, 512, 1024, 2048, 4096)
slopes = None  # ALiBi slopes of the model being packed (see packed_probabilities)


def real_windows(encoder, n: int) -> list[np.ndarray]:
    """Token ids of ``n`` 1 kb windows of chr20 at stride 200."""
    seq = region_sequence(n, STRIDE, WINDOW)
    return encoder.encode([seq[s : s + WINDOW] for s in range(0, len(seq) - WINDOW + 1, STRIDE)])


def padding_waste(lengths: np.ndarray, batch_size: int) -> float:
    """Tokens computed / real tokens when length-sorted windows go in batches of this size
    (each batch padded to its longest window)."""
    ordered = np.sort(lengths)
    batches = [ordered[i : i + batch_size] for i in range(0, len(ordered), batch_size)]
    return sum(int(b.max()) * len(b) for b in batches) / int(ordered.sum())


def packed_probabilities(classifier, encoded: Sequence[np.ndarray], device, flex: Callable):
    """Probabilities (float32 tensor [n]) of windows packed into one sequence, no padding.

    Token t of the pack belongs to window ``window_of[t]``; attention stays inside a window
    (the block mask) and ALiBi's distance |q - kv| inside a window is the same in the pack.
    """
    import torch
    from torch.nn.attention.flex_attention import create_block_mask

    from enhscan.model.dnabert2 import alibi_slopes, probabilities

    network = classifier.network
    bert = network.bert
    n_heads = network.config.num_attention_heads
    lengths = torch.tensor([len(e) for e in encoded], device=device)
    ids = torch.from_numpy(np.concatenate(encoded)).to(device)[None]  # [1, T]
    total = ids.shape[1]
    window_of = torch.repeat_interleave(torch.arange(len(encoded), device=device), lengths)
    starts = torch.cumsum(lengths, 0) - lengths  # [n] where each window's [CLS] is
    # A module global, not a closure variable: with two captured tensors in one score
    # modifier (slopes and starts), inductor's CPU FlexAttention template (torch 2.13) emits
    # C++ that does not compile.
    global slopes
    slopes = alibi_slopes(n_heads).to(device)

    def alibi(score, b, h, q, kv):
        return score - slopes[h] * (q - kv).abs()

    def same_window(b, h, q, kv):
        return window_of[q] == window_of[kv]

    def cls_alibi(score, b, h, q, kv):  # query q is window q's [CLS]
        return score - slopes[h] * (starts[q] - kv).abs()

    def cls_window(b, h, q, kv):
        return window_of[kv] == q

    # On a GPU the masks are built compiled, without a dense T x T mask (packs are large
    # there); on the CPU the compiled builder hits an inductor code-generation error.
    on_gpu = ids.device.type == "cuda"
    every = create_block_mask(same_window, None, None, total, total, device=device, _compile=on_gpu)
    cls = create_block_mask(
        cls_window, None, None, len(encoded), total, device=device, _compile=on_gpu
    )
    x = bert.embeddings(ids)  # [1, T, H]
    last = len(bert.encoder.layer) - 1
    for i, layer in enumerate(bert.encoder.layer):
        attention = layer.attention.self
        qkv = attention.Wqkv(x).view(1, total, 3, n_heads, attention.head_dim)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)  # each [1, nh, T, hd]
        if i == last:
            q, residual = q[:, :, starts], x[:, starts]
            y = flex(q, k, v, score_mod=cls_alibi, block_mask=cls)
        else:
            residual = x
            y = flex(q, k, v, score_mod=alibi, block_mask=every)
        y = y.transpose(1, 2).reshape(1, q.shape[2], -1)
        x = layer.mlp(layer.attention.output(y, residual))
    pooled = bert.pooler(x[0][:, None])  # [n, H]
    return probabilities(network.classifier(pooled), classifier.metadata.positive_index)


def score_packed(scorer, encoded: Sequence[np.ndarray], flex: Callable) -> np.ndarray:
    """Packed scores of ``encoded`` in the scorer's groups (length-sorted, batch_size each)."""
    import torch

    lengths = np.array([len(e) for e in encoded])
    order = np.argsort(lengths, kind="stable")
    groups = [order[i : i + scorer.batch_size] for i in range(0, len(order), scorer.batch_size)]
    outputs = []
    autocast = (
        torch.autocast(scorer.device.type, dtype=scorer.dtype)
        if scorer.dtype != torch.float32
        else contextlib.nullcontext()
    )
    with torch.inference_mode(), autocast:
        for rows in groups:
            outputs.append(
                packed_probabilities(
                    scorer.classifier, [encoded[r] for r in rows], scorer.device, flex
                )
            )
        flat = torch.cat(outputs).float().cpu().numpy()
    scores = np.empty(len(encoded), dtype=np.float32)
    scores[np.concatenate(groups)] = flat
    return scores


@click.command()
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option(
    "--windows",
    default="small=800,base=48",
    show_default=True,
    help="Windows timed per model size (size=count, comma-separated).",
)
@click.option(
    "--batch-size",
    type=int,
    default=None,
    help="Windows per batch and per pack (default: enhscan's own choice for the device).",
)
@click.option(
    "--padding-windows",
    type=int,
    default=5000,
    show_default=True,
    help="Windows for the padding-waste table (5,000 at stride 200: one 1 Mb scan chunk).",
)
@click.option("--repeats", type=click.IntRange(min=1), default=3, show_default=True)
def main(
    device: str, windows: str, batch_size: int | None, padding_windows: int, repeats: int
) -> None:
    import torch
    from torch.nn.attention.flex_attention import flex_attention

    from enhscan.backend import ComputeOptions, resolve_device, resolve_dtype
    from enhscan.engine import WindowScorer
    from enhscan.model import new_classifier

    if not CHR20.exists():
        sys.exit(f"needs {CHR20} (the shared data folder next to the repository)")
    torch_device = resolve_device(device)
    dtype = resolve_dtype("auto", torch_device)
    sizes = {k: int(v) for k, v in (item.split("=") for item in windows.split(","))}
    flex = torch.compile(flex_attention, dynamic=True)
    small = new_classifier("small", seed=0)  # every DNABERT-2 size shares the tokenizer
    lengths = np.array([len(e) for e in real_windows(small.encoder, padding_windows)])
    print(
        f"# {platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"device {torch_device}, {str(dtype).removeprefix('torch.')}\n"
    )
    print(
        f"Padding waste of length-sorted batches (tokens computed / real tokens), "
        f"{len(lengths):,} windows, {lengths.mean():.0f} tokens on average "
        f"(padding each to {PAD_TO}: {PAD_TO / lengths.mean():.2f}):\n"
    )
    print("| batch size | " + " | ".join(str(b) for b in BATCH_SIZES) + " |")
    print("|---|" + "---|" * len(BATCH_SIZES))
    print(
        "| tokens computed / real | "
        + " | ".join(f"{padding_waste(lengths, b):.4f}" for b in BATCH_SIZES)
        + " |\n"
    )

    print(
        "| model | windows | batch | padding waste | length-sorted win/s | packed win/s "
        "| packed x sorted | range by round | max abs diff |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for size, count in sizes.items():
        classifier = small if size == "small" else new_classifier(size, seed=0)
        encoded = real_windows(classifier.encoder, count)
        scorer = WindowScorer(classifier, ComputeOptions(str(torch_device), batch_size=batch_size))
        warm = encoded[: 2 * scorer.batch_size]
        # Each model compiles afresh: recompiling FlexAttention for a second model's shapes
        # also hits the C++ code-generation error above.
        torch._dynamo.reset()
        score_packed(scorer, warm, flex)  # compiles FlexAttention and the block masks
        scorer.score_encoded(warm)
        scanners = {
            "sorted": scorer.score_encoded,
            "packed": lambda e, scorer=scorer: score_packed(scorer, e, flex),
        }
        times: dict[str, list[float]] = {name: [] for name in scanners}
        scores = {}
        for round_ in range(repeats):
            for name in sorted(scanners, reverse=round_ % 2 == 1):
                began = time.perf_counter()
                scores[name] = scanners[name](encoded)
                times[name].append(time.perf_counter() - began)
        sorted_s, packed_s = np.median(times["sorted"]), np.median(times["packed"])
        ratios = [a / b for a, b in zip(times["sorted"], times["packed"], strict=True)]
        n = len(encoded)
        waste = padding_waste(np.array([len(e) for e in encoded]), scorer.batch_size)
        diff = np.abs(scores["sorted"] - scores["packed"]).max()
        print(
            f"| {size} | {n:,} | {scorer.batch_size} | {waste:.4f} | {n / sorted_s:.2f} "
            f"| {n / packed_s:.2f} | **{sorted_s / packed_s:.2f}** "
            f"| {min(ratios):.2f}-{max(ratios):.2f} | {diff:.1e} |",
            flush=True,
        )
        if dtype == torch.float32 and diff > FP32_TOLERANCE:
            sys.exit(f"{size}: packed and sorted fp32 scores differ by {diff:.1e}")


if __name__ == "__main__":
    main()
