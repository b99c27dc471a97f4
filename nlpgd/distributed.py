"""Several processes of one run (``torchrun`` / ``accelerate launch``): who writes, and how
they agree. Every helper is the identity in a plain single-process run."""

from __future__ import annotations

import os
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from nlpgd.errors import NlpgdError


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


@contextmanager
def main_process_first() -> Iterator[None]:
    """Rank 0 runs the block first (e.g. filling a cache), the other ranks after it."""
    if not is_main_process():
        barrier()
    yield
    if is_main_process():
        barrier()


def on_main_process(fn: Callable[[], Any]) -> Any:
    """``fn()`` run by rank 0 alone, its result handed to every rank. An :class:`NlpgdError` it
    raises is raised on every rank (each with the same sentence), so no rank waits for a
    result that never comes."""
    result: Any = None
    failure: str | None = None
    if is_main_process():
        try:
            result = fn()
        except NlpgdError as exc:
            if _dist() is None:
                raise
            failure = str(exc)
    result, failure = broadcast_object((result, failure))
    if failure is not None:
        raise NlpgdError(failure)
    return result


def share(items: list) -> list:
    """This process's part of ``items`` (all of them in a plain run): consecutive slices in rank
    order, the first ranks one item more when they do not divide evenly (accelerate's
    ``split_between_processes``), so :func:`gather_on_main` puts them back in order."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return items
    from accelerate import PartialState

    with PartialState().split_between_processes(items) as part:
        return list(part)


def gather_on_main(obj: Any) -> list | None:
    """Every process's ``obj`` in rank order on rank 0, None on the others (``[obj]`` in a plain run)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return [obj]
    out = [None] * dist.get_world_size() if dist.get_rank() == 0 else None
    dist.gather_object(obj, out, dst=0)
    return out


def finish_launch() -> None:
    """End a multi-process launch cleanly: every rank arrives, then the process group closes."""
    dist = _dist()
    if dist is not None:
        dist.barrier()
        dist.destroy_process_group()
