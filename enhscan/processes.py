"""Running as one of several processes started by ``accelerate launch`` (or torchrun).

enhscan never opens a socket itself: accelerate reads the launcher's environment (RANK,
WORLD_SIZE, MASTER_ADDR, ...) and sets up torch.distributed, with NCCL between GPUs and gloo
on CPUs; this module only asks it for the process's rank and device, waits for the others,
and broadcasts small objects from the main process.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import torch

#: How long a process waits for the others (a whole genome can take days on CPUs).
WAIT = timedelta(days=7)


def on_cpu(requested: bool) -> bool:
    """Whether accelerate must be told ``cpu=True``: when asked, and always where PyTorch sees
    no GPU. Without it, accelerate on a GPU-less machine treats each process of a torchrun
    launch as a lone process (measured with accelerate 1.15): all of them would write."""
    return requested or not torch.cuda.is_available()


@dataclass
class Processes:
    """This process's place among the processes of a run.

    Attributes:
        rank: 0 for the main process.
        world: number of processes (1 when not launched by accelerate / torchrun).
        device: the device accelerate gives this process (None when running alone).
    """

    rank: int = 0
    world: int = 1
    device: torch.device | None = None

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @classmethod
    def current(cls, cpu: bool = False) -> Processes:
        """Join the launcher's process group, or run alone when there is none.

        Args:
            cpu: keep to the CPU (gloo) even where GPUs are visible.
        """
        if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
            return cls()
        from accelerate import PartialState

        state = PartialState(cpu=on_cpu(cpu), timeout=WAIT)
        return cls(state.process_index, state.num_processes, state.device)

    def wait_for_everyone(self) -> None:
        if self.world > 1:
            torch.distributed.barrier()

    def broadcast(self, value: Any) -> Any:
        """The main process's ``value``, on every process (picklable objects)."""
        if self.world == 1:
            return value
        box = [value if self.is_main else None]
        torch.distributed.broadcast_object_list(box, src=0)
        return box[0]

    def on_main(self, job: Callable[[], Any]) -> Any:
        """Run ``job`` on the main process and hand its result, or its one-line error, to
        every process (each then raises it too)."""
        from enhscan.errors import EnhscanError

        outcome = None
        if self.is_main:
            try:
                outcome = (job(), None)
            except EnhscanError as err:
                outcome = (None, str(err))
        result, error = self.broadcast(outcome)
        if error is not None:
            raise EnhscanError(error)
        return result
