"""``--processes N``: the same command again as N processes under ``accelerate launch``."""

from __future__ import annotations

from collections.abc import Mapping

import click


def launch_processes(n: int, device: str) -> int:
    """Run this same command as ``n`` processes under ``accelerate launch``; its exit status.

    The command line is taken from ``sys.argv`` with ``--processes`` removed.
    """
    import os
    import subprocess
    import sys

    import torch

    from enhscan.backend import resolve_device
    from enhscan.scan.dryrun import cpu_cores

    if os.environ.get("WORLD_SIZE"):
        raise click.UsageError("--processes inside `accelerate launch`: give one or the other")
    resolve_device(device)  # a bad --device is refused once, here, not by every process
    gpus = torch.cuda.device_count() if device != "cpu" else 0
    shared = device.startswith("cuda:")  # every process on one named GPU
    if gpus and n > gpus and not shared:
        raise click.BadParameter(
            f"{n} processes but {gpus} GPUs; use --processes {gpus}, --device cuda:0 (all "
            "processes share that GPU), or --device cpu",
            param_hint="--processes",
        )
    args = _without_option(sys.argv[1:], "--processes")
    # accelerate's --multi_gpu launcher is torchrun: it starts N processes on CPUs too (its
    # --cpu launcher starts one), and enhscan then picks gloo or NCCL by --device.
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--multi_gpu",
        "--num_processes",
        str(n),
        "--num_machines",
        "1",
        "--mixed_precision",
        "no",
        "--dynamo_backend",
        "no",
    ]
    env = launch_environment(os.environ, n, on_gpus=bool(gpus), cores=cpu_cores())
    return subprocess.call([*command, "-m", "enhscan", *args], env=env)


def launch_environment(
    environ: Mapping[str, str], n: int, on_gpus: bool, cores: int
) -> dict[str, str]:
    """The environment of ``n`` launched processes: each gets its share of the CPU cores
    for its tokenizer's threads (``RAYON_NUM_THREADS``; left alone, every process's
    tokenizer would start a thread per core) and, without GPUs, for PyTorch's
    (``OMP_NUM_THREADS``; torchrun would give each process one). Values the user set win."""
    env = dict(environ)
    share = str(max(1, cores // n))
    env.setdefault("RAYON_NUM_THREADS", share)
    if not on_gpus:
        env.setdefault("OMP_NUM_THREADS", share)
    return env


def _without_option(args: list[str], name: str) -> list[str]:
    out, skip = [], False
    for arg in args:
        if skip:
            skip = False
        elif arg == name:
            skip = True
        elif not arg.startswith(name + "="):
            out.append(arg)
    return out
