"""Several processes of one run (``torchrun`` / ``accelerate launch``): who writes, and how
they agree. Every helper is the identity in a plain single-process run."""

from __future__ import annotations

import os
from typing import Any


def launched_world_size() -> int:
    """Number of processes of a torchrun / accelerate launch (1 for a plain run)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def launched_rank() -> int:
    return int(os.environ.get("RANK", "0"))


def _dist():
    if "torch" not in __import__("sys").modules:
        return None
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def ddp_backend() -> str | None:
    """gloo for a multi-process launch without CUDA; the Trainer's default (nccl) otherwise."""
    if launched_world_size() > 1 and not cuda_available():
        return "gloo"
    return None


def init_launch() -> None:
    """Start the process group of a multi-process launch (before any rank-dependent work),
    through accelerate so the Trainer later finds the same state. No-op in a plain run."""
    if launched_world_size() > 1 and _dist() is None:
        from accelerate import PartialState

        PartialState(backend=ddp_backend() or None)


def is_main_process() -> bool:
    dist = _dist()
    if dist is None:
        return launched_rank() == 0
    return dist.get_rank() == 0


def broadcast_object(obj: Any) -> Any:
    """Rank 0's ``obj`` on every rank (identity when not distributed)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return obj
    box = [obj if dist.get_rank() == 0 else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def barrier() -> None:
    dist = _dist()
    if dist is not None:
        dist.barrier()
