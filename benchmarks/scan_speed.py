#!/usr/bin/env python3
"""`enhscan genome` against the naive scanning loop, side by side, on the same windows.

For each model size (the shipped default model, the DNABERT-2-117M shape with random
weights and the real tokenizer, and any ``--arch`` name: ``small`` is the previous default's
DNABERT-2 shape) it cuts a stretch of real sequence out of GRCh37 chr20 (from
../shared/data), runs `enhscan genome` and `benchmarks/naive_scan.py` on it in fresh
processes, checks the two agree window by window (fp32: within 1e-4), and prints:

- windows/s of both, end to end (process start to exit) and in the scan loop alone, and
  their ratios;
- each figure as the median of ``--repeats`` interleaved rounds, with the loop ratio's range
  over the rounds (this shared virtual machine's speed moves between minutes);
- the model FLOP/s enhscan achieved (a full forward at each window's real token count) as a
  fraction of the machine's measured matmul peak;
- the hg38 projection: 14.5 million windows at stride 200, 2.9 million at stride 1000;
- on the CPU, enhscan with --kernels plain (PyTorch's own kernels instead of the fused
  oneDNN ones), --quantize (int8) and --dtype bf16 as well, with how far their scores move;
- from enhscan's run record, the share of the scan loop the model spent waiting for
  tokenized input, and the reader's tokenizing rate (windows/s, on all the cores it sees):
  whether tokenizing ever held the model back.

    python benchmarks/scan_speed.py [--device cpu|cuda] [--windows default=3000,base=128]

Runs on a GPU when asked (--device cuda); enhscan then uses bf16, the naive loop fp32 as
people run it.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path

import click
import numpy as np
from common import CHR20, FP32_TOLERANCE, ROOT, genome_command, write_region

HG38_WINDOWS = {200: 14_500_000, 1000: 2_900_000}  # about 2.9 Gb of non-N sequence


def matmul_peak(device: str) -> dict[str, float]:
    """Measured FLOP/s of a large square matmul (fp32 on the CPU, bf16 on a GPU), by library.

    On a GPU: ``torch`` (cuBLAS). On the CPU: ``torch`` (PyTorch's own fp32 matmul, MKL) and
    ``onednn`` (the library of enhscan's fused kernels), each the best of three timings; the
    peak is the faster of the two.
    """
    import torch

    cuda = device.startswith("cuda")
    dtype = torch.bfloat16 if cuda else torch.float32
    n = 8192 if cuda else 2048
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    reps = 20 if cuda else 3
    multiplies = {"torch": lambda: a @ b}
    if not cuda and torch.backends.mkldnn.is_available():
        bt = b.t().contiguous()  # a Linear's weight is [out, in]
        multiplies["onednn"] = lambda: torch.ops.mkldnn._linear_pointwise(
            a, bt, None, "none", [], ""
        )
    rates = {}
    for name, multiply in multiplies.items():
        for _ in range(2):
            multiply()
        best = float("inf")
        for _ in range(1 if cuda else 3):
            if cuda:
                torch.cuda.synchronize()
            began = time.perf_counter()
            for _ in range(reps):
                multiply()
            if cuda:
                torch.cuda.synchronize()
            best = min(best, time.perf_counter() - began)
        rates[name] = reps * 2 * n**3 / best
    return rates


def forward_flops(model: Path, config: dict, tokens: np.ndarray) -> float:
    """FLOPs of the model's full forwards over windows of the given token counts.

    A DNABERT-2 model: worked out per window (matmuls only, below). Any other model (the
    hybrid, the CNN: every window the same width): counted by PyTorch's FLOP counter on one
    window (matmuls and convolutions), times the windows.

    Per token and layer: QKV 3H^2, output H^2, gated MLP 2HI + IH multiply-adds; attention
    2 L H multiply-adds per token (scores and weighted sum).
    """
    if config.get("model_type") != "dnabert2":
        return counted_flops(model, int(tokens[0])) * len(tokens)
    h, i, n = config["hidden_size"], config["intermediate_size"], config["num_hidden_layers"]
    per_token = 2 * n * (4 * h * h + 3 * h * i)
    attention = 2 * n * 2 * h * tokens.astype(np.float64) ** 2
    return float((per_token * tokens + attention).sum())


def counted_flops(model: Path, width: int) -> float:
    """FLOPs of one forward of a ``width``-base window, by torch's FLOP counter."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from enhscan.model import load_classifier

    network = load_classifier(model).network.eval()
    ids = torch.zeros(1, width, dtype=torch.int64)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        network(input_ids=ids)
    return float(counter.get_total_flops())


def run_timed(command: list[str]) -> tuple[float, str]:
    began = time.perf_counter()
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    return time.perf_counter() - began, done.stdout


def enhscan_scan(fasta: Path, model: Path, out: Path, *, device: str, extra: list[str]) -> dict:
    command = genome_command(
        fasta,
        out,
        "--model",
        str(model),
        "--device",
        device,
        "--threshold",
        "0.5",
        "--track",
        "probability",  # the naive loop writes probabilities
        *extra,
    )
    wall, _ = run_timed(command)
    record = json.loads((out / "run.json").read_text())
    stages = record["stages"]
    return {
        "wall": wall,
        "windows": record["windows"]["scored"],
        "loop": record["scan_seconds"],
        "wait": stages["input_wait_seconds"] / record["scan_seconds"],
        "tokenize": record["windows"]["scored"] / max(stages["tokenize_seconds"], 1e-9),
    }


def naive_scan(fasta: Path, model: Path, out: Path, device: str) -> dict:
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "naive_scan.py"),
        str(fasta),
        str(model),
        str(out),
        "--device",
        device,
    ]
    wall, stdout = run_timed(command)
    report = json.loads(stdout.strip().splitlines()[-1])
    return {"wall": wall, "windows": report["windows"], "loop": report["loop_seconds"]}


def compare(tsv: Path, bigwig: Path) -> float:
    """Largest |difference| between the naive scores and enhscan's track at window centres."""
    import pyBigWig

    diffs = []
    with pyBigWig.open(str(bigwig)) as bw:
        for line in tsv.read_text().splitlines():
            chrom, start, end, p = line.split("\t")
            centre = (int(start) + int(end)) // 2
            diffs.append(abs(bw.values(chrom, centre, centre + 1)[0] - float(p)))
    return max(diffs)


def token_counts(model: Path, fasta: Path, stride: int) -> tuple[dict, np.ndarray]:
    from enhscan.io.fasta import open_genome
    from enhscan.model import load_classifier

    classifier = load_classifier(model)
    config = json.loads((model / "config.json").read_text())
    window = classifier.metadata.window
    with open_genome(fasta) as genome:
        seq = genome.fetch("chr20", 0, genome.lengths["chr20"])
    windows = [seq[s : s + window] for s in range(0, len(seq) - window + 1, stride)]
    return config, np.array([len(e) for e in classifier.encoder.encode(windows)])


@click.command()
@click.option("--device", default="cpu", show_default=True, help="cpu or cuda.")
@click.option(
    "--windows",
    default="default=3000,base=128",
    show_default=True,
    help="Windows per model size (size=count, comma-separated).",
)
@click.option("--stride", type=int, default=200, show_default=True)
@click.option(
    "--quantize/--no-quantize",
    default=True,
    help="Also time --quantize and --dtype bf16 on the CPU.",
)
@click.option(
    "--repeats",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="Runs of each scanner, interleaved (the order turns each round); medians are shown.",
)
def main(device: str, windows: str, stride: int, quantize: bool, repeats: int) -> None:
    import torch

    from enhscan.model import default_model_path, new_classifier, save_classifier

    if not CHR20.exists():
        sys.exit(f"needs {CHR20} (the shared data folder next to the repository)")
    sizes = dict(item.split("=") for item in windows.split(","))
    peaks = matmul_peak(device)
    peak = max(peaks.values())
    rows = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        for size, count in sizes.items():
            if size == "default":
                model = default_model_path()
            else:
                model = save_classifier(new_classifier(size, seed=0), tmp / f"model_{size}")
            fasta = write_region(tmp, int(count), stride, 1000)
            config, tokens = token_counts(model, fasta, stride)
            flops = forward_flops(model, config, tokens)
            ours = partial(enhscan_scan, fasta, model, device=device)
            scanners = {
                "naive": lambda out, fasta=fasta, model=model: naive_scan(
                    fasta, model, out.with_suffix(".tsv"), device
                ),
                "enhscan": partial(ours, extra=[]),
                "enhscan --batch-inv": partial(ours, extra=["--batch-invariant"]),
            }
            if device == "cpu":  # what the fused CPU kernels bring, side by side
                scanners["enhscan --kernels plain"] = partial(ours, extra=["--kernels", "plain"])
            if quantize and device == "cpu":
                scanners["enhscan --quantize"] = partial(ours, extra=["--quantize"])
                scanners["enhscan --dtype bf16"] = partial(ours, extra=["--dtype", "bf16"])
            if device != "cpu":  # measured on the CPU to gain nothing (benchmarks/README.md)
                scanners["enhscan --compile"] = partial(ours, extra=["--compile"])
            # Interleaved rounds, the order turning each round, so that a slow spell of a
            # shared machine falls on every scanner alike rather than on one.
            runs: dict[str, list[dict]] = {who: [] for who in scanners}
            order = list(scanners)
            for round_ in range(repeats):
                for who in order[round_ % len(order) :] + order[: round_ % len(order)]:
                    out = tmp / f"{size}_{who.replace(' ', '_')}_{round_}"
                    runs[who].append(scanners[who](out))
            naive_tsv = tmp / f"{size}_naive_0.tsv"
            for who, measured in runs.items():
                assert {m["windows"] for m in measured} == {runs["naive"][0]["windows"]}
                bigwig = tmp / f"{size}_{who.replace(' ', '_')}_0" / "scores.bw"
                diff = 0.0 if who == "naive" else compare(naive_tsv, bigwig)
                rows.append((size, who, measured, diff, flops))
            print(f"... {size}: done", file=sys.stderr)

    print(
        f"date: {time.strftime('%Y-%m-%d')}  machine: {platform.machine()}, "
        f"{os.cpu_count()} CPU threads, torch {torch.__version__}, device {device}"
        + (f" ({torch.cuda.get_device_name()})" if device.startswith("cuda") else "")
    )
    print(
        f"measured matmul peak: {peak / 1e9:,.0f} GFLOP/s "
        f"({'bf16' if device.startswith('cuda') else 'fp32'}; "
        + ", ".join(f"{name} {rate / 1e9:,.0f}" for name, rate in peaks.items())
        + ")"
    )
    header = (
        f"{'model':8} {'scanner':24} {'windows':>7} {'wall s':>7} {'win/s e2e':>9} "
        f"{'win/s loop':>10} {'x naive e2e':>11} {'x naive loop':>12} {'by round':>12} "
        f"{'max |diff|':>10} "
        f"{'% peak':>6} {'wait %':>6} {'tok win/s':>9} {'hg38 s200':>10} {'hg38 s1000':>10}"
    )
    print(header)  # "% peak": of the faster library's peak
    naive_runs = {r[0]: r[2] for r in rows if r[1] == "naive"}
    differ = []
    for size, who, measured, diff, flops in rows:
        windows_ = measured[0]["windows"]
        wall = float(np.median([m["wall"] for m in measured]))
        loop_s = float(np.median([m["loop"] for m in measured]))
        e2e, loop = windows_ / wall, windows_ / loop_s
        base = naive_runs[size]
        x_e2e = float(np.median([b["wall"] for b in base])) / wall
        x_loop = float(np.median([b["loop"] for b in base])) / loop_s
        # the ratio within each round, to show how far the machine moved between rounds
        rounds = [b["loop"] / m["loop"] for b, m in zip(base, measured, strict=True)]
        share = f"{flops / loop_s / peak:.1%}"
        if "quantize" in who or "bf16" in who:  # not fp32: a share of the fp32 peak misleads
            share = "(int8)" if "quantize" in who else "(bf16)"
        elif not device.startswith("cuda") and diff > FP32_TOLERANCE:
            differ.append(f"{size} {who}")
        proj = {s: n / loop / 60 for s, n in HG38_WINDOWS.items()}
        wait, tok = "-", "-"
        if "wait" in measured[0]:
            wait = f"{np.median([m['wait'] for m in measured]):.1%}"
            tok = f"{np.median([m['tokenize'] for m in measured]):,.0f}"
        print(
            f"{size:8} {who:24} {windows_:7,} {wall:7.1f} {e2e:9.1f} {loop:10.1f} "
            f"{x_e2e:11.2f} {x_loop:12.2f} {min(rounds):6.2f}-{max(rounds):<5.2f} {diff:10.2g} "
            f"{share:>6} {wait:>6} {tok:>9} {proj[200]:8,.0f} m {proj[1000]:8,.0f} m"
        )
    if differ:
        sys.exit(
            f"fp32 scores differ from the naive loop's by more than {FP32_TOLERANCE}: "
            + ", ".join(differ)
        )


if __name__ == "__main__":
    main()
