"""Where the neural models run and in which precision: one setting for the run, read by
every Trainer arm (training arguments, autocast, where a loaded model is placed).

``device``: ``auto`` (a CUDA GPU when there is one, else the CPU), ``cpu`` or ``cuda``.
``precision``: ``auto`` (bf16 on a GPU that has it, fp16 on one that does not, fp32 on the
CPU), ``bf16``, ``fp16`` (CUDA only) or ``fp32``. Weights stay float32 either way; bf16 and
fp16 are mixed precision (autocast), as the Trainer does it.

The setting holds inside :func:`use_hardware` (``compare`` and ``experiment`` open it from the
config) and is restored afterwards; outside it, ``auto`` / ``auto``.
"""

from __future__ import annotations

import contextlib
from contextlib import contextmanager
from typing import Iterator

from nlpgd.distributed import cuda_available, launched_world_size
from nlpgd.errors import NlpgdError

DEVICES = ("auto", "cpu", "cuda")
PRECISIONS = ("auto", "bf16", "fp16", "fp32")
_current = {"device": "auto", "precision": "auto"}


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()


def _bf16_gpu() -> bool:
    import torch

    return torch.cuda.is_bf16_supported()


def check(device: str, precision: str) -> tuple[str, str]:
    """The (device, precision) that ``device`` and ``precision`` resolve to on this machine, or
    one sentence saying why they cannot be had here."""
    if device not in DEVICES:
        raise NlpgdError(f"device must be one of {', '.join(DEVICES)}, got {device!r}")
    if precision not in PRECISIONS:
        raise NlpgdError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    cuda = _cuda()
    if device == "cuda" and not cuda:
        raise NlpgdError("device is 'cuda' but torch sees no CUDA GPU here; set device: auto or cpu")
    dev = "cuda" if device == "cuda" or (device == "auto" and cuda) else "cpu"
    if precision == "auto":
        return dev, ("bf16" if _bf16_gpu() else "fp16") if dev == "cuda" else "fp32"
    if precision == "fp16" and dev == "cpu":
        raise NlpgdError("precision 'fp16' needs a CUDA GPU (the device here is the CPU); use bf16 or fp32")
    if precision == "bf16" and dev == "cuda" and not _bf16_gpu():
        raise NlpgdError("precision 'bf16' is not supported by this GPU; use fp16 or fp32")
    return dev, precision


@contextmanager
def use_hardware(device: str = "auto", precision: str = "auto") -> Iterator[tuple[str, str]]:
    """Run the block with this device and precision (checked first); yields the resolved pair."""
    resolved = check(device, precision)
    before = dict(_current)
    _current.update(device=device, precision=precision)
    try:
        yield resolved
    finally:
        _current.update(before)


def current() -> tuple[str, str]:
    """The resolved (device, precision) in force: ``("cuda" | "cpu", "bf16" | "fp16" | "fp32")``."""
    return check(_current["device"], _current["precision"])


def describe() -> dict[str, str]:
    """What ``run.json`` records: the settings asked for and what they resolved to."""
    dev, prec = current()
    return {
        "device": dev,
        "precision": prec,
        "device_setting": _current["device"],
        "precision_setting": _current["precision"],
    }


def current_device() -> str:
    return current()[0]


# -- what the Trainer arms read ------------------------------------------------------------
def precision_kwargs() -> dict[str, bool]:
    """TrainingArguments flags for the precision in force."""
    _, precision = current()
    return {"bf16": precision == "bf16", "fp16": precision == "fp16"}


def use_cpu() -> bool:
    """TrainingArguments' ``use_cpu``: on the CPU when a GPU is there (device: cpu), for bf16 on
    the CPU, and for DDP over gloo; False otherwise, the Trainer's own choice."""
    dev, precision = current()
    return dev == "cpu" and (cuda_available() or precision != "fp32" or launched_world_size() > 1)


def autocast_dtype():
    """The dtype to autocast inference to (None in fp32)."""
    import torch

    _, precision = current()
    return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(precision)


def device():
    import torch

    return torch.device(current()[0])


def autocast(device_type: str = "cuda"):
    """Autocast to the precision in force, for a model on the run's device; nothing in fp32 or
    for a model elsewhere (a CPU-bound reference LM in a GPU run). Log-softmax is always done
    in float32."""
    import torch

    dtype = autocast_dtype()
    if dtype is None or device_type != current_device():
        return contextlib.nullcontext()
    return torch.autocast(device_type, dtype=dtype)
