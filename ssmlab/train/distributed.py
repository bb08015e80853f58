"""Data-parallel training through ``torchrun`` (torch.distributed, DDP).

``torchrun --nproc_per_node 4 -m ssmlab.cli train ...`` (or ``--nnodes N --node_rank i
--rdzv_endpoint host:port`` across machines) sets ``RANK``, ``WORLD_SIZE`` and ``LOCAL_RANK``;
:func:`init_distributed` reads them and joins the process group: NCCL when the run is on CUDA,
gloo on CPU. Each process takes every ``world_size``-th training batch of the epoch's shuffled
batch list (``Split.train_batches(num_replicas=..., rank=...)``, trailing batches dropped so
that every rank makes the same number of steps); DDP averages the gradients. Evaluation batches
are shared out the same way and the metric sums are all-reduced. Only rank 0 writes checkpoints
and logs; the best weights are broadcast from rank 0 at the end. ``--resume`` reads ``last.pt``
on every rank, so multi-node resumes need the run folder on a shared filesystem.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the job (``world_size == 1`` without torchrun)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_info() -> DistInfo:
    """Read the torchrun environment variables (defaults: a single process)."""
    return DistInfo(
        int(os.environ.get("RANK", "0")),
        int(os.environ.get("WORLD_SIZE", "1")),
        int(os.environ.get("LOCAL_RANK", "0")),
    )


def resolve_device(device: str | None, info: DistInfo | None = None) -> torch.device:
    """``device`` or cuda (this rank's GPU under torchrun) when available, else cpu."""
    info = info or DistInfo()
    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dev = torch.device(device)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ValueError(f"--device {device!r} asked for CUDA, but torch sees no GPU")
        if dev.index is None:
            dev = torch.device("cuda", info.local_rank if info.enabled else 0)
    return dev


def flush_denormals(device: torch.device) -> None:
    """On the CPU, treat denormal floats (|x| < 1.2e-38) as zero, process-wide
    (``torch.set_flush_denormal``): x86 computes on them ~100x slower. Training makes them:
    Caser's dead horizontal filters and their Adam moments decay into that range, and its
    epoch went from 92 to 474 CPU s at epoch 24 on Beauty; 6 of those steps take 44.2 CPU s
    as they are and 6.4 with this (2-core Intel Xeon, one thread)."""
    if device.type == "cpu":
        torch.set_flush_denormal(True)


def init_distributed(device: str | None = None) -> tuple[DistInfo, torch.device]:
    """Join the process group when launched by torchrun; returns this rank's info and device."""
    info = env_info()
    dev = resolve_device(device, info)
    if info.enabled and not dist.is_initialized():
        if dev.type == "cuda":
            torch.cuda.set_device(dev)
        dist.init_process_group(
            backend="nccl" if dev.type == "cuda" else "gloo",
            rank=info.rank,
            world_size=info.world_size,
        )
    return info, dev


def cleanup() -> None:
    """Leave the process group (no-op without one)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """Sum over ranks in place (no-op without a process group)."""
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return tensor


def broadcast_tensors(tensors: list[torch.Tensor], src: int = 0) -> None:
    """Overwrite each tensor in place with rank ``src``'s values (no-op without a group)."""
    if dist.is_available() and dist.is_initialized():
        for tensor in tensors:
            dist.broadcast(tensor, src=src)


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, indexed by rank (``[obj]`` without a process group)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def barrier() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


__all__ = [
    "DistInfo",
    "all_reduce_sum",
    "barrier",
    "broadcast_tensors",
    "cleanup",
    "env_info",
    "gather_objects",
    "init_distributed",
    "resolve_device",
]
