"""Tiny fixtures shared by every test module. Nothing here reads the network."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SMS_FILE = SHARED / "data" / "sms_spam" / "SMSSpamCollection"

_SPAM_WORDS = "win free prize cash claim urgent offer winner call now txt reply stop award bonus".split()
_HAM_WORDS = "hey lunch tomorrow meeting home later mum dinner see you soon thanks love ok".split()


def make_corpus(n_per_class: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    """Two classes with disjoint vocabularies, so any sensible model separates them."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n_per_class):
        for label, words in (("spam", _SPAM_WORDS), ("ham", _HAM_WORDS)):
            k = rng.randint(4, 9)
            texts.append(" ".join(rng.choice(words) for _ in range(k)) + f" {i}")
            labels.append(label)
    return texts, labels


@pytest.fixture
def tiny_corpus() -> tuple[list[str], list[str]]:
    return make_corpus(40, seed=0)


@pytest.fixture
def tiny_test_corpus() -> tuple[list[str], list[str]]:
    return make_corpus(10, seed=1)


@pytest.fixture
def sms_file() -> Path:
    if not SMS_FILE.is_file():
        pytest.skip(f"real corpus not available: {SMS_FILE} (only developers and CI have ../shared)")
    return SMS_FILE
