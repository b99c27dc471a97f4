"""The GPT-2 arm's training data, as pure functions over lists (no model, no tokenizer).

- :func:`label_token`: the special token that starts a message of a class (``<|spam|>``)
  with ``conditioning: prefix``;
- :func:`per_class_subset`: at most ``cap`` messages of each class, drawn by seed;
- :func:`class_repeats`: how often each class's messages appear per epoch (``class_balance``);
- :func:`wrap`: a message's token ids as a sequence ``[start] + x + [end]``, cut to a length;
- :func:`lm_dataset`: the sequences as a ``datasets.Dataset`` for the Trainer, the rarer
  classes repeated.
"""

from __future__ import annotations

import logging
from typing import Mapping, Sequence

import numpy as np

log = logging.getLogger(__name__)


def label_token(label: str) -> str:
    return f"<|{label}|>"


def per_class_subset(
    texts: list[str], labels: list[str], classes: Sequence[str], cap: int | None, seed: int
) -> tuple[list[str], list[str]]:
    """At most ``cap`` messages of each class (None: all), drawn with ``seed``, order kept."""
    if cap is None:
        return texts, labels
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in classes:
        idx = [i for i, y in enumerate(labels) if y == c]
        keep += idx if len(idx) <= cap else [int(i) for i in rng.choice(idx, size=cap, replace=False)]
    keep.sort()
    log.info("training on %d of %d messages (max_train_per_class %d)", len(keep), len(texts), cap)
    return [texts[i] for i in keep], [labels[i] for i in keep]


def class_repeats(labels: Sequence[str], classes: Sequence[str], power: float) -> dict[str, int]:
    """How often each class's messages appear per epoch: ``round((most / n) ** power)``, at
    least once (``power`` is ``class_balance``: 0 no balancing, 1 fully balanced)."""
    labels = list(labels)
    counts = {c: labels.count(str(c)) for c in classes}
    most = max(counts.values())
    return {c: max(1, round((most / n) ** power)) for c, n in counts.items()}


def wrap(ids: Sequence[int], start: int, end: int, max_length: int, *, with_end: bool = True) -> list[int]:
    """``[start] + ids + [end]`` in at most ``max_length`` tokens; a message that must be cut
    keeps no end token (it did not end there). ``with_end=False`` leaves the end token out
    (scoring a prefix of a message rather than a whole one)."""
    if len(ids) + 2 <= max_length:
        return [start, *ids, end] if with_end else [start, *ids]
    return [start, *ids[: max_length - 1]]


def lm_dataset(seqs: list[list[int]], class_index: list[int], repeats: Mapping[int, int] | None = None):
    """A ``datasets.Dataset`` of ``input_ids``, ``length`` and ``class_index`` (the true class,
    for the discriminative term); with ``repeats`` (class index -> times), each sequence of a
    class appears that often (the sampler shuffles the copies apart)."""
    from datasets import Dataset

    if repeats:
        times = [repeats.get(i, 1) for i in class_index]
        seqs = [s for s, k in zip(seqs, times) for _ in range(k)]
        class_index = [i for i, k in zip(class_index, times) for _ in range(k)]
    return Dataset.from_dict({"input_ids": seqs, "length": [len(s) for s in seqs], "class_index": class_index})


HEAD_CHARS_PER_TOKEN = 8  # a head this many characters per wanted token nearly always holds them


def message_head(text: str, tokens: int) -> str:
    """The beginning of ``text`` whose byte-level BPE tokens are the first tokens of the whole
    text's, long enough to hold about ``tokens`` of them (``text`` itself when short).

    The cut falls on a space after a letter or digit: the GPT-2 pre-tokenizer's pieces never
    run past such a space (a piece may only start with one), so every piece before the cut,
    and so every token, is the same in the head as in the whole text. The caller checks the
    head gave enough tokens and encodes the whole text when it did not."""
    start = tokens * HEAD_CHARS_PER_TOKEN
    if len(text) <= start:
        return text
    j = text.find(" ", start)
    while j > 0 and not text[j - 1].isalnum():
        j = text.find(" ", j + 1)
    return text if j < 0 else text[:j]
