"""torchrun / DDP helpers. The same training code runs on one device or under

    torchrun --nproc_per_node=N -m murallab.cli train --config configs/X.yaml

torchrun sets ``RANK``, ``LOCAL_RANK`` and ``WORLD_SIZE``; we join the process group (gloo on CPU, nccl on CUDA),
give every rank its own GPU, shard the data with a ``DistributedSampler`` and wrap the model in
``DistributedDataParallel``, which averages gradients across ranks. Only rank 0 logs and writes checkpoints.
``fit`` calls ``setup`` first and ``cleanup`` last, which leaves the process group it joined (a group that was
already there when ``setup`` ran, the caller's own, is left alone).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist

_joined = False  # True while this process is in a group that setup() created


def world() -> tuple[int, int]:
    """``(rank, world_size)``: ``(0, 1)`` outside torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def setup(device: torch.device) -> torch.device:
    """Join the process group when launched by torchrun; returns this rank's device."""
    global _joined
    rank, size = world()
    if size == 1 or dist.is_initialized():
        return device
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
        torch.cuda.set_device(device)
    dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    _joined = True
    return device


def is_main() -> bool:
    return world()[0] == 0


def barrier() -> None:
    if dist.is_initialized():
        dist.barrier()


def mean_across_ranks(values: dict[str, float], device: torch.device) -> dict[str, float]:
    """Average a dict of numbers over all ranks (each rank validated its own shard)."""
    if not dist.is_initialized():
        return values
    keys = sorted(values)
    t = torch.tensor([values[k] for k in keys], dtype=torch.float64, device=device)
    dist.all_reduce(t)
    return dict(zip(keys, (t / dist.get_world_size()).tolist()))


def cleanup() -> None:
    """The end of a run: wait for every rank (rank 0 may still be writing a checkpoint), then leave the process
    group that ``setup`` joined. Without it, NCCL warns at exit that the group was never destroyed."""
    global _joined
    barrier()
    if _joined and dist.is_initialized():
        dist.destroy_process_group()
    _joined = False
