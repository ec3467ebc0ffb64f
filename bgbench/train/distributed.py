"""Process-group setup for ``torchrun`` (DDP: gloo on CPU, nccl on CUDA) and the helpers
every stage uses so one process and K processes compute the same global batches."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist
from torch import Tensor, nn

from bgbench.errors import ParameterError


@dataclass
class Context:
    """Where this process runs: its rank among ``world`` processes and its device."""

    rank: int = 0
    world: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        """True on the one process that writes files and prints."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def shard(self, batch: Tensor) -> Tensor:
        """This rank's contiguous share of a global batch (the batch divides evenly)."""
        if self.world == 1:
            return batch
        per = batch.shape[0] // self.world
        return batch[self.rank * per:(self.rank + 1) * per]

    def split(self, n: int) -> tuple[int, int]:
        """This rank's ``[start, stop)`` of ``n`` items for evaluation (uneven is fine)."""
        return n * self.rank // self.world, n * (self.rank + 1) // self.world

    def sum(self, values: Tensor) -> Tensor:
        """Sum ``values`` over all processes (identity for one process)."""
        if self.world > 1:
            values = values.clone()
            dist.all_reduce(values)
        return values

    def average_gradients(self, params: list[nn.Parameter]) -> None:
        """All-reduce and average ``.grad`` of ``params`` (for modules not wrapped in DDP)."""
        if self.world == 1:
            return
        for p in params:
            if p.grad is not None:
                dist.all_reduce(p.grad)
                p.grad /= self.world

    def wrap(self, module: nn.Module) -> nn.Module:
        """``module`` in DistributedDataParallel under torchrun, as is otherwise."""
        if self.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(module, device_ids=ids)

    def barrier(self) -> None:
        if self.world > 1:
            dist.barrier()


def resolve_device(name: str) -> torch.device:
    """``cpu`` or ``cuda``; CUDA where there is none is a usage error, never a fallback."""
    if name == "cpu":
        return torch.device("cpu")
    if name == "cuda":
        if not torch.cuda.is_available():
            raise ParameterError("`device` cuda was asked for but no CUDA GPU is available; "
                                 "use cpu")
        return torch.device("cuda")
    raise ParameterError(f"`device` must be cpu or cuda, got {name!r}")


def setup(device_name: str) -> Context:
    """Join the torchrun process group if ``WORLD_SIZE`` > 1; return this process's context."""
    device = resolve_device(device_name)
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context(0, 1, device)
    rank = int(os.environ["RANK"])
    if device.type == "cuda":
        local = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local)
        device = torch.device("cuda", local)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return Context(rank, world, device)


def teardown(ctx: Context) -> None:
    """Leave the process group (no-op for one process)."""
    if ctx.world > 1 and dist.is_initialized():
        dist.destroy_process_group()
