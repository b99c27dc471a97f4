"""Seed once, in one place: Python, NumPy and torch (every device), before a model is built.

The same seed then fixes weight initialisation, data order, dropout and subsampling of every
model: what transformers' ``set_seed`` does, without importing torch for a model that does not
use it (torch is seeded when it is loaded; the Trainer-based arms load it before seeding).
"""

from __future__ import annotations

import os
import random
import sys

import numpy as np


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    if "torch" in sys.modules:
        import torch

        torch.manual_seed(seed)  # seeds every CUDA device too


def device_description() -> str:
    if "torch" in sys.modules:
        import torch

        from nlpgd.hardware import current_device

        if current_device() == "cuda":  # the run's device setting (device: cpu on a GPU machine is the CPU)
            return f"cuda:{torch.cuda.get_device_name(0)} x{torch.cuda.device_count()}"
        return f"cpu ({torch.get_num_threads()} threads)"
    return f"cpu ({os.cpu_count()} cores)"
