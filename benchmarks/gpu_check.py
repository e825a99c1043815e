#!/usr/bin/env python3
"""Every CUDA path of enhscan, proved and measured in one command of at most eight minutes
(the steps' time limits add up to 460 s; most end well before theirs).

    bash benchmarks/gpu_check.sh                 # on a lent GPU (see benchmarks/README.md)
    python benchmarks/gpu_check.py --out DIR     # where everything is installed already
    python benchmarks/gpu_check.py --out DIR --dry   # the same steps on the CPU, tiny sizes

Each step runs in its own process under its own time limit, so a crash or a hang costs that
step only; what a step printed lands in its log. Steps:

1. ``tests``: ``pytest -m gpu`` (tests/test_gpu.py: CUDA against the CPU in fp32 and bf16,
   pinned copies, the memory probe on the 117M shape, two processes sharing the GPU, a resume
   after a kill, compile, bf16 training);
2. ``scan_speed``: benchmarks/scan_speed.py (windows/s end to end and in the loop, share of the
   bf16 matmul peak, tokenizing against the model, hg38 projections, bf16 against fp32);
3. ``batching``: benchmarks/batching.py (length-sorted batches against packed sequences);
4. ``compile``: one scan with ``--compile`` and one without: windows/s and the largest score
   difference;
5. ``train``: ``enhscan train --mixed-precision bf16`` (DNABERT-2 small, a few hundred steps):
   the loss, windows/s;
6. ``pretrain``: ``enhscan pretrain`` (masked LM, bf16, a few hundred steps): the loss,
   windows/s;
7. ``training_speed``: benchmarks/training_speed.py (every objective and family);
8. ``variants``: benchmarks/variants_speed.py (``enhscan variants`` against the naive loop,
   2,000 sites).

Writes ``DIR/summary.md`` (a table to paste into benchmarks/README.md, then each benchmark's
own tables), ``DIR/results.json`` and ``DIR/logs.tar.gz``. With ``--dry`` (what CI runs) the
same steps run on the CPU at tiny sizes: it checks the script, not the GPU.
"""

from __future__ import annotations

import json
import os
import platform
import re
import signal
import subprocess
import sys
import tarfile
import tempfile
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import click

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from common import write_region  # noqa: E402

EXAMPLE_FASTA = ROOT / "examples" / "hg38_chr2_0-600k.fa.gz"
TRAIN_CSV = ROOT / "tests" / "data" / "cohn_sample.csv"

#: Sizes per mode: (GPU, dry). Chosen so the whole GPU run ends within about 8 minutes.
SIZES = {
    "scan_windows": ("default=20000,base=3000", "default=20"),
    "batching_windows": ("small=4000,base=600", "small=16"),
    "compile_windows": (20_000, 40),
    "train": (("small", "30", "16"), ("tiny", "1", "16")),  # arch, epochs, batch size
    "pretrain": (("small", "300", "64"), ("tiny", "4", "4")),  # arch, steps, batch size
    "training_speed": (
        "--families cnn,small,base --steps 40 --batch-size 64",
        "--families cnn,tiny --steps 1 --batch-size 2",
    ),  # fmt: skip
    "variants": ("2000", "10"),
}
#: Seconds each step may take: (GPU, dry). The dry run's compiling on the CPU is slow.
LIMITS = {
    "tests": (110, 60),
    "scan_speed": (100, 90),
    "batching": (45, 240),
    "compile": (45, 300),
    "train": (40, 90),
    "pretrain": (40, 60),
    "training_speed": (50, 90),
    "variants": (30, 120),
}


@dataclass
class Step:
    """One step's outcome."""

    name: str
    status: str = "not run"  # ok, failed (exit status), timed out, skipped
    seconds: float = 0.0
    numbers: dict = field(default_factory=dict)
    output: str = ""


def run_command(step: Step, command: list[str], logs: Path, limit: float) -> str:
    """Run ``command`` for ``step`` under ``limit`` seconds; its output (also in the log)."""
    began = time.time()
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    # A session of its own: at the time limit the step's whole process group is killed, so
    # nothing it started (a second scan process, compile workers) holds the GPU afterwards.
    proc = subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=ROOT,
        env=env,
        start_new_session=True,
    )
    try:
        output, _ = proc.communicate(timeout=limit)
        step.status = "ok" if proc.returncode == 0 else f"failed ({proc.returncode})"
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate()
        step.status = f"timed out ({limit:.0f} s)"
    step.seconds = round(time.time() - began, 1)
    (logs / f"{step.name}.log").write_text(f"$ {' '.join(command)}\n{output}")
    step.output = output
    return output


def enhscan(*args: str) -> list[str]:
    return [sys.executable, "-m", "enhscan", "-q", *args]


def tables(output: str) -> str:
    """The markdown table lines of a benchmark's output."""
    return "\n".join(line for line in output.splitlines() if line.startswith("|"))


# -- the steps ---------------------------------------------------------------------------------


def step_tests(step: Step, ctx: dict) -> None:
    out = run_command(
        step,
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "gpu",
            "-q",
            "-p",
            "no:cacheprovider",
            "tests/test_gpu.py",
        ],  # fmt: skip
        ctx["logs"],
        ctx["limit"]("tests"),
    )
    for key in ("passed", "failed", "skipped", "error"):
        found = re.search(rf"(\d+) {key}", out)
        step.numbers[key] = int(found.group(1)) if found else 0


def step_scan_speed(step: Step, ctx: dict) -> None:
    args = ["--device", ctx["device"], "--windows", ctx["size"]("scan_windows"), "--repeats"]
    args += ["2", "--no-quantize"] if not ctx["dry"] else ["1", "--no-quantize"]
    out = run_command(step, [sys.executable, str(HERE / "scan_speed.py"), *args], ctx["logs"],
                      ctx["limit"]("scan_speed"))  # fmt: skip
    step.numbers["table"] = tables(out)


def step_batching(step: Step, ctx: dict) -> None:
    args = ["--device", ctx["device"], "--windows", ctx["size"]("batching_windows")]
    args += ["--repeats", "1", "--padding-windows", "200" if ctx["dry"] else "5000"]
    out = run_command(step, [sys.executable, str(HERE / "batching.py"), *args], ctx["logs"],
                      ctx["limit"]("batching"))  # fmt: skip
    step.numbers["table"] = tables(out)


def step_compile(step: Step, ctx: dict) -> None:
    import numpy as np
    import pyBigWig

    n = ctx["size"]("compile_windows")
    fasta = write_region(ctx["tmp"], n, 200, 1000)
    runs = {}
    outputs = []
    for name, extra in (("eager", []), ("compiled", ["--compile"])):
        out_dir = ctx["tmp"] / f"compile_{name}"
        command = enhscan("genome", str(fasta), "--out", str(out_dir), "--device",
                          ctx["device"], "--track", "probability", "--force", *extra)  # fmt: skip
        sub = Step(f"compile_{name}")
        outputs.append(run_command(sub, command, ctx["logs"], ctx["limit"]("compile") / 2))
        if sub.status != "ok":
            step.status = f"{name}: {sub.status}"
            return
        record = json.loads((out_dir / "run.json").read_text())
        with pyBigWig.open(str(out_dir / "scores.bw")) as bw:
            chrom, length = next(iter(bw.chroms().items()))
            values = np.nan_to_num(np.array(bw.values(chrom, 0, length)))
        runs[name] = values
        step.numbers[f"{name} windows/s (scan loop)"] = record.get("scan_windows_per_second")
        step.seconds += sub.seconds
    step.numbers["max score difference"] = float(np.abs(runs["eager"] - runs["compiled"]).max())
    step.status = "ok"


def step_train(step: Step, ctx: dict) -> None:
    arch, epochs, batch = ctx["size"]("train")
    out_dir = ctx["tmp"] / "train"
    command = enhscan("train", "--sequences", str(TRAIN_CSV), "--arch", arch, "--epochs", epochs,
                      "--batch-size", batch, "--patience", "0", "--lr", "1e-4", "--no-baseline",
                      "--out", str(out_dir), "--force", *ctx["precision"])  # fmt: skip
    run_command(step, command, ctx["logs"], ctx["limit"]("train"))
    history = _history(out_dir / "training")
    if history:
        losses = [h["train_loss"] for h in history]
        examples = _train_examples(out_dir)
        step.numbers.update(first_loss=round(losses[0], 4), last_loss=round(losses[-1], 4))
        if examples:
            step.numbers["windows/s (whole command)"] = round(
                examples * len(history) / step.seconds, 1
            )


def _history(folder: Path) -> list[dict]:
    logs = sorted(folder.rglob("log.jsonl"))
    if not logs:
        return []
    return [json.loads(line) for line in logs[0].read_text().splitlines() if line.strip()]


def _train_examples(out_dir: Path) -> int | None:
    try:
        summary = json.loads((out_dir / "training" / "data_summary.json").read_text())
        return summary["splits"]["train"]["total"]
    except (OSError, KeyError, TypeError, json.JSONDecodeError):
        return None


def step_pretrain(step: Step, ctx: dict) -> None:
    arch, steps, batch = ctx["size"]("pretrain")
    out_dir = ctx["tmp"] / "pretrain"
    every = str(max(1, int(steps) // 3))
    command = enhscan("pretrain", str(EXAMPLE_FASTA), "--arch", arch, "--steps", steps,
                      "--batch-size", batch, "--checkpoint-every", every, "--out", str(out_dir),
                      "--force", *ctx["precision"])  # fmt: skip
    run_command(step, command, ctx["logs"], ctx["limit"]("pretrain"))
    summary = out_dir / "pretraining" / "summary.json"
    if summary.exists():
        history = json.loads(summary.read_text())["history"]
        step.numbers.update(
            first_loss=round(history[0]["train_loss"], 4),
            last_loss=round(history[-1]["train_loss"], 4),
            last_masked_accuracy=round(history[-1]["masked_accuracy"], 4),
        )
        step.numbers["windows/s (whole command)"] = round(int(steps) * int(batch) / step.seconds, 1)


def step_training_speed(step: Step, ctx: dict) -> None:
    args = ["--device", ctx["device"], *ctx["size"]("training_speed").split()]
    out = run_command(step, [sys.executable, str(HERE / "training_speed.py"), *args],
                      ctx["logs"], ctx["limit"]("training_speed"))  # fmt: skip
    step.numbers["table"] = tables(out)


def step_variants(step: Step, ctx: dict) -> None:
    args = ["--device", ctx["device"], "--variants", ctx["size"]("variants")]
    out = run_command(step, [sys.executable, str(HERE / "variants_speed.py"), *args],
                      ctx["logs"], ctx["limit"]("variants"))  # fmt: skip
    step.numbers["table"] = tables(out)


STEPS = {
    "tests": step_tests,
    "scan_speed": step_scan_speed,
    "batching": step_batching,
    "compile": step_compile,
    "train": step_train,
    "pretrain": step_pretrain,
    "training_speed": step_training_speed,
    "variants": step_variants,
}


# -- the report --------------------------------------------------------------------------------


def machine() -> str:
    import torch

    if torch.cuda.is_available():
        return f"{torch.cuda.get_device_name()} ({torch.version.cuda}), torch {torch.__version__}"
    return f"CPU {platform.processor() or platform.machine()}, torch {torch.__version__}"


def summary_markdown(steps: list[Step], dry: bool) -> str:
    when = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        f"## GPU check {'(dry run on the CPU) ' if dry else ''}- {when}",
        "",
        f"Machine: {machine()}",
        "",
        "| step | status | seconds | numbers |",
        "|---|---|---|---|",
    ]
    for step in steps:
        numbers = ", ".join(f"{k} {v}" for k, v in step.numbers.items() if k != "table")
        lines.append(f"| {step.name} | {step.status} | {step.seconds:.0f} | {numbers} |")
    lines.append("")
    lines += _rebuild_projection(steps)
    for step in steps:
        if step.numbers.get("table"):
            lines += ["", f"### {step.name}", "", step.numbers["table"]]
    return "\n".join(lines) + "\n"


def _rebuild_projection(steps: list[Step]) -> list[str]:
    """How long tools/make_default_model.sh's training would take at the measured rates: the
    atlas CNN's multi-task pretraining (6 epochs of 80,000 windows) and the hybrid's
    fine-tuning (at most 12 epochs of about 3,700 windows), both at the rate the `train`
    step measured (the CNN trains about twice as fast as the hybrid, so this errs long)."""
    rate = {s.name: s.numbers.get("windows/s (whole command)") for s in steps}.get("train")
    if not rate:
        return []
    seconds = (6 * 80_000 + 12 * 3_700) / rate
    return [f"Default-model rebuild at these rates (training only): about {seconds / 60:.1f} min."]


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True)
@click.option("--dry", is_flag=True, help="The same steps on the CPU at tiny sizes (CI).")
@click.option("--only", multiple=True, type=click.Choice(list(STEPS)), help="Run these steps.")
def main(out_dir: Path, dry: bool, only: tuple[str, ...]) -> None:
    """Run the GPU check and write its summary (module docstring)."""
    import torch

    if not dry and not torch.cuda.is_available():
        sys.exit("PyTorch sees no CUDA GPU here; run with --dry to check the script on the CPU")
    out_dir.mkdir(parents=True, exist_ok=True)
    steps = []
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        logs = tmp / "logs"
        logs.mkdir()
        ctx = {
            "dry": dry,
            "device": "cpu" if dry else "cuda",
            "precision": ["--cpu", "--mixed-precision", "no"]
            if dry
            else ["--mixed-precision", "bf16"],  # fmt: skip
            "size": lambda key: SIZES[key][1 if dry else 0],
            "limit": lambda key: LIMITS[key][1 if dry else 0],
            "tmp": tmp,
            "logs": logs,
        }
        for name, run in STEPS.items():
            step = Step(name)
            if only and name not in only:
                step.status = "skipped"
            else:
                try:
                    run(step, ctx)
                except Exception as err:  # a broken step must not stop the others
                    step.status = f"error: {type(err).__name__}: {err}"[:200]
            steps.append(step)
            click.echo(f"{name}: {step.status} ({step.seconds:.0f} s)", err=True)
        with tarfile.open(out_dir / "logs.tar.gz", "w:gz") as tar:
            tar.add(logs, arcname="logs")
    results = [{k: v for k, v in asdict(s).items() if k != "output"} for s in steps]
    (out_dir / "results.json").write_text(json.dumps(results, indent=1))
    (out_dir / "summary.md").write_text(summary_markdown(steps, dry))
    click.echo((out_dir / "summary.md").read_text())
    if any(s.status not in ("ok", "skipped") for s in steps):
        sys.exit(1)


if __name__ == "__main__":
    main()
