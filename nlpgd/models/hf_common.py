"""Small helpers shared by the models trained with the transformers ``Trainer``.

Hardware (CUDA with bf16, or fp16 where bf16 is unsupported; CPU otherwise), seeding,
distributed launches (``torchrun`` / ``accelerate launch``), the work folder that holds the
Trainer's checkpoints, and the resume check. Nothing here knows about a particular model.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator, Sequence

from nlpgd.errors import NlpgdError

log = logging.getLogger(__name__)

FIT_RECORD = "nlpgd_fit_params.json"  # written in work_dir when a fit starts


# -- hardware ---------------------------------------------------------------------------
def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def precision_kwargs() -> dict[str, bool]:
    """TrainingArguments flags: bf16 on a CUDA GPU that supports it, else fp16; fp32 on CPU."""
    import torch

    if not torch.cuda.is_available():
        return {"bf16": False, "fp16": False}
    bf16 = torch.cuda.is_bf16_supported()
    return {"bf16": bf16, "fp16": not bf16}


def autocast_dtype():
    """The dtype to autocast inference to (None on CPU)."""
    import torch

    if not torch.cuda.is_available():
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def launched_world_size() -> int:
    """Number of processes of a torchrun / accelerate launch (1 for a plain run)."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def ddp_backend() -> str | None:
    """gloo for a multi-process launch without CUDA; the Trainer's default (nccl) otherwise."""
    if launched_world_size() > 1 and not cuda_available():
        return "gloo"
    return None


def seed_everything(seed: int) -> None:
    """Seed python, numpy and torch (all devices) before a model is built."""
    from transformers import set_seed

    set_seed(seed)


# -- distributed ------------------------------------------------------------------------
def _dist():
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def is_main_process() -> bool:
    dist = _dist()
    return dist is None or dist.get_rank() == 0


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


# -- work folder, checkpoints, resume ----------------------------------------------------
@contextmanager
def work_dir_context(work_dir: Path | None, prefix: str) -> Iterator[Path]:
    """``work_dir`` itself, or a temporary folder removed afterwards.

    Under torchrun / accelerate launch every rank derives the same temporary folder from
    the launch's run id and port (the process group may not exist yet), so the ranks of
    one machine share it; several machines need a ``work_dir`` on a shared file system.
    """
    if work_dir is not None:
        path = Path(work_dir).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    if launched_world_size() > 1:
        run = os.environ.get("TORCHELASTIC_RUN_ID", "run")
        port = os.environ.get("MASTER_PORT", "0")
        path = Path(tempfile.gettempdir()) / f"{prefix}{run}-{port}"
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        barrier()
        if is_main_process():
            shutil.rmtree(path, ignore_errors=True)


def last_checkpoint(work_dir: Path) -> Path | None:
    """The newest *complete* ``checkpoint-<step>`` folder in ``work_dir``, or None.

    The Trainer writes ``trainer_state.json`` last, so a folder without it was cut short
    (Ctrl-C or a crash while saving) and cannot be resumed from; it is skipped with a note.
    (transformers' ``get_last_checkpoint`` returns the highest step whatever its state.)
    """
    from transformers.trainer import TRAINER_STATE_NAME
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return None
    steps = []
    for d in work_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*"):
        suffix = d.name.rsplit("-", 1)[-1]
        if d.is_dir() and suffix.isdigit():
            steps.append((int(suffix), d))
    for _, d in sorted(steps, reverse=True):
        if (d / TRAINER_STATE_NAME).is_file():
            return d
        log.warning("skipping %s: it has no %s (interrupted while saving)", d, TRAINER_STATE_NAME)
    return None


def _first_difference(saved: Any, now: Any, prefix: str = "") -> str | None:
    if isinstance(saved, dict) and isinstance(now, dict):
        for key in sorted(set(saved) | set(now)):
            name = f"{prefix}{key}"
            if key not in saved or key not in now:
                return name
            diff = _first_difference(saved[key], now[key], name + ".")
            if diff is not None:
                return diff
        return None
    return None if saved == now else prefix.rstrip(".") or "value"


def _lookup(record: dict, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(record, dict) or part not in record:
            return "<absent>"
        record = record[part]
    return record


def start_or_resume(
    work_dir: Path, record: dict[str, Any], resume: bool, *, fit_dirs: Sequence[str] = ()
) -> Path | None:
    """Check/record the fit's parameters in ``work_dir``; return the checkpoint to resume from.

    ``record`` is JSON-able (hyperparameters, seed, classes). A resume whose record differs
    from the saved one raises an :class:`NlpgdError` naming the first differing key. A fresh
    fit (``resume`` False, or nothing to resume) removes stale ``checkpoint-*`` folders left
    by an earlier fit. ``fit_dirs`` are glob patterns of sub-folders a fit owns, such as one
    Trainer output folder per language model; their checkpoints count for the record check
    (each is resumed by its own Trainer) and a fresh fit removes them whole.
    """
    record_file = work_dir / FIT_RECORD
    record = json.loads(json.dumps(record))  # normalise (tuples -> lists, ...)
    owned = [d for pattern in fit_dirs for d in sorted(work_dir.glob(pattern)) if d.is_dir()]
    ckpt = last_checkpoint(work_dir)
    if resume:
        if ckpt is not None or any(last_checkpoint(d) for d in owned):
            if not record_file.is_file():
                raise NlpgdError(
                    f"cannot resume from {work_dir}: it has checkpoints but no {FIT_RECORD}, so "
                    "its parameters cannot be checked; start a fresh fit (resume: false)"
                )
            saved = json.loads(record_file.read_text())
            key = _first_difference(saved, record)
            if key is not None:
                raise NlpgdError(
                    f"cannot resume from {work_dir}: parameter '{key}' differs from the "
                    f"checkpoint's (saved {_lookup(saved, key)!r}, now {_lookup(record, key)!r}); "
                    "restore it or start a fresh fit (resume: false)"
                )
            if ckpt is not None:
                log.info("resuming from %s", ckpt)
            return ckpt
        log.info("resume requested but %s holds no checkpoint: starting a fresh fit", work_dir)
    if is_main_process():
        for stale in [*work_dir.glob("checkpoint-*"), *owned]:
            if stale.is_dir():
                log.info("removing %s left by an earlier fit", stale)
                shutil.rmtree(stale, ignore_errors=True)
        record_file.write_text(json.dumps(record, indent=2))
    barrier()
    return None


def training_arguments(output_dir: Path, *, seed: int, progress: bool, **kwargs: Any):
    """TrainingArguments that write only under ``output_dir``, report nowhere, pick the
    hardware and precision, and take the model-specific settings from ``kwargs``."""
    from transformers import TrainingArguments

    defaults: dict[str, Any] = dict(
        output_dir=str(output_dir),
        seed=seed,
        data_seed=seed,
        report_to="none",
        disable_tqdm=not progress,
        save_only_model=False,  # optimizer and scheduler states too, so resume continues
        push_to_hub=False,
        ddp_backend=ddp_backend(),
        # a multi-process launch without CUDA: accelerate's MULTI_CPU mode (DDP over gloo)
        use_cpu=launched_world_size() > 1 and not cuda_available(),
        dataloader_num_workers=0,
        dataloader_pin_memory=cuda_available(),
        **precision_kwargs(),
    )
    defaults.update(kwargs)
    return TrainingArguments(**defaults)


def quiet(trainer: Any, progress: bool) -> None:
    """Without progress, drop the callback that prints every log dict to stdout."""
    if not progress:
        from transformers.trainer_callback import PrinterCallback

        trainer.remove_callback(PrinterCallback)


@contextmanager
def hf_progress_bars(enabled: bool) -> Iterator[None]:
    """Turn transformers' own progress bars (checkpoint writing, weight loading) off for a
    block when ``enabled`` is False, then restore the previous setting."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    if before and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before and not enabled:
            hf_logging.enable_progress_bar()
