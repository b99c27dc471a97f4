"""Test-time perturbations of messages: pure functions, deterministic for a seed, label-preserving.

Every function takes one text (or a list of labels) and a ``seed`` and returns a new value;
nothing here knows about models or files. The random stream of one message is seeded with
the pair ``(seed, text)`` through :class:`random.Random`, whose string seeding is stable across
processes and Python hash seeds, so the same message and seed always give the same output.

Layer 1 of the claims experiments:

- obfuscations spammers use (:func:`obfuscate`), at a *strength* = the share of a message's
  words that are changed: ``swap`` (two neighbouring letters exchanged), ``insert`` (a space or
  a punctuation mark inside the word), ``leet`` (letters written as digits: ``free`` ->
  ``fr33``), ``homoglyph`` (one letter replaced by its Cyrillic or Greek look-alike);
- missing words: :func:`word_dropout` (each word dropped with probability ``rate``, at least one
  kept) and :func:`truncate_words` (the first ``n`` words);
- label shift: :func:`resample_to_prevalence` (the largest subset with a given share of spam).

Words are maximal runs of non-whitespace; the whitespace between them is kept as it was.
"""

from __future__ import annotations

import math
import random
import re
from typing import Callable, Sequence

import numpy as np

OBFUSCATIONS = ("swap", "insert", "leet", "homoglyph")
_INSERTED = (" ", ".", "-", "*", "_")
_LEET = {"a": "4", "e": "3", "i": "1", "o": "0", "s": "5", "t": "7", "b": "8", "g": "9", "l": "1", "z": "2"}
# Latin letters and a look-alike from another script (Cyrillic unless noted)
_HOMOGLYPHS = {
    "a": "\u0430",
    "c": "\u0441",
    "e": "\u0435",
    "i": "\u0456",
    "j": "\u0458",
    "o": "\u043e",
    "p": "\u0440",
    "s": "\u0455",
    "x": "\u0445",
    "y": "\u0443",
    "A": "\u0391",  # Greek
    "B": "\u0392",  # Greek
    "E": "\u0395",  # Greek
    "H": "\u0397",  # Greek
    "K": "\u039a",  # Greek
    "M": "\u039c",  # Greek
    "O": "\u039f",  # Greek
    "P": "\u03a1",  # Greek
    "T": "\u03a4",  # Greek
    "X": "\u03a7",  # Greek
}
_SPLIT = re.compile(r"(\s+)")


def _rng(seed: int, text: str, what: str) -> random.Random:
    return random.Random(f"{what}:{int(seed)}:{text}")


def _pieces(text: str) -> tuple[list[str], list[int]]:
    """The text split into words and the whitespace between them, and the word positions."""
    parts = _SPLIT.split(text)
    return parts, [i for i, p in enumerate(parts) if p and not p.isspace()]


# -- obfuscations -------------------------------------------------------------------------


def _swap(word: str, rng: random.Random) -> str | None:
    spots = [i for i in range(len(word) - 1) if word[i] != word[i + 1] and word[i].isalpha() and word[i + 1].isalpha()]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + word[i + 1] + word[i] + word[i + 2 :]


def _insert(word: str, rng: random.Random) -> str | None:
    if len(word) < 2:
        return None
    i = rng.randrange(1, len(word))
    return word[:i] + rng.choice(_INSERTED) + word[i:]


def _leet(word: str, rng: random.Random) -> str | None:
    out = "".join(_LEET.get(c.lower(), c) for c in word)
    return out if out != word else None


def _homoglyph(word: str, rng: random.Random) -> str | None:
    spots = [i for i, c in enumerate(word) if c in _HOMOGLYPHS]
    if not spots:
        return None
    i = rng.choice(spots)
    return word[:i] + _HOMOGLYPHS[word[i]] + word[i + 1 :]


_KINDS: dict[str, Callable[[str, random.Random], str | None]] = {
    "swap": _swap,
    "insert": _insert,
    "leet": _leet,
    "homoglyph": _homoglyph,
}


def obfuscate(text: str, kind: str, strength: float, seed: int) -> str:
    """``text`` with ``round(strength * words)`` of its words obfuscated by ``kind``.

    The words are drawn at random among those ``kind`` can change (a one-letter word cannot be
    swapped, a word without a mappable letter has no leetspeak form); when fewer words can be
    changed, all of them are. Strength 0 returns the text unchanged.
    """
    return obfuscate_counted(text, kind, strength, seed)[0]


def obfuscate_counted(text: str, kind: str, strength: float, seed: int) -> tuple[str, int, int]:
    """:func:`obfuscate`, and how many of how many words it changed."""
    if kind not in _KINDS:
        raise ValueError(f"unknown obfuscation '{kind}' (known: {', '.join(OBFUSCATIONS)})")
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"obfuscation strength must lie in [0, 1], got {strength}")
    parts, positions = _pieces(text)
    k = int(math.floor(strength * len(positions) + 0.5))
    if k == 0:
        return text, 0, len(positions)
    rng = _rng(seed, text, kind)
    changed = {i: _KINDS[kind](parts[i], rng) for i in positions}
    eligible = [i for i in positions if changed[i] is not None]
    chosen = rng.sample(eligible, min(k, len(eligible)))
    for i in chosen:
        parts[i] = changed[i]
    return "".join(parts), len(chosen), len(positions)


# -- missing words ------------------------------------------------------------------------


def word_dropout(text: str, rate: float, seed: int) -> str:
    """Each word dropped independently with probability ``rate`` (at least one word is kept).

    The whitespace is the original's: each kept word after the first is preceded by the
    separator that preceded it in ``text`` (so a separator survives exactly when its word
    does, newlines included), and leading and trailing whitespace stay. A text with nothing
    dropped comes back unchanged, byte for byte."""
    if not 0.0 <= rate < 1.0:
        raise ValueError(f"dropout rate must lie in [0, 1), got {rate}")
    parts, positions = _pieces(text)
    if rate == 0 or len(positions) <= 1:
        return text
    rng = _rng(seed, text, "dropout")
    kept = [i for i in positions if rng.random() >= rate]
    if not kept:
        kept = [rng.choice(positions)]
    out = ["".join(parts[: positions[0]]), parts[kept[0]]]
    for i in kept[1:]:
        out += [parts[i - 1], parts[i]]
    return "".join(out + parts[positions[-1] + 1 :])


def truncate_words(text: str, n: int) -> str:
    """The first ``n`` words of ``text`` (the whitespace between them kept)."""
    if n < 1:
        raise ValueError(f"truncation needs at least one word, got {n}")
    parts, positions = _pieces(text)
    if len(positions) <= n:
        return text
    return "".join(parts[: positions[n - 1] + 1])


# -- label shift --------------------------------------------------------------------------


def resample_to_prevalence(labels: Sequence[int], prevalence: float, seed: int) -> np.ndarray:
    """Sorted indices of the largest subset of ``labels`` (0/1, 1 = spam) whose share of spam
    is ``prevalence`` (rounded to whole messages), drawn without replacement, deterministic
    for ``seed``. At least one message of each class is kept."""
    if not 0.0 < prevalence < 1.0:
        raise ValueError(f"prevalence must lie in (0, 1), got {prevalence}")
    y = np.asarray(labels).astype(int)
    spam, ham = np.flatnonzero(y == 1), np.flatnonzero(y == 0)
    if not len(spam) or not len(ham):
        raise ValueError("resampling to a prevalence needs messages of both classes")
    # as many messages as possible: limited by the ham or by the spam available
    total = min(len(ham) / (1 - prevalence), len(spam) / prevalence)
    n_spam = max(1, min(len(spam), int(round(prevalence * total))))
    n_ham = max(1, min(len(ham), int(round((1 - prevalence) * total))))
    rng = np.random.default_rng([int(seed), int(round(prevalence * 1e6))])
    pick = np.concatenate([rng.choice(spam, n_spam, replace=False), rng.choice(ham, n_ham, replace=False)])
    return np.sort(pick)


# -- one entry point for a list of texts --------------------------------------------------


def perturb_texts(texts: Sequence[str], transform: Sequence, seed: int) -> tuple[list[str], dict]:
    """``texts`` after ``transform`` (``()``, ``("obfuscate", kind, strength)``, ``("dropout",
    rate)`` or ``("truncate", words)``), and what it did: the share of words changed, dropped or
    cut, and the share of messages it changed."""
    texts = [str(t) for t in texts]
    if not transform:
        return texts, {"words_changed_share": 0.0, "messages_changed_share": 0.0}
    what, arg = transform[0], transform[1:]
    words = sum(len(t.split()) for t in texts)
    if what == "obfuscate":
        done = [obfuscate_counted(t, arg[0], float(arg[1]), seed) for t in texts]
        out, changed = [d[0] for d in done], sum(d[1] for d in done)
    elif what == "dropout":
        out = [word_dropout(t, float(arg[0]), seed) for t in texts]
        changed = words - sum(len(t.split()) for t in out)
    elif what == "truncate":
        out = [truncate_words(t, int(arg[0])) for t in texts]
        changed = words - sum(len(t.split()) for t in out)
    else:
        raise ValueError(f"unknown perturbation '{what}'")
    return out, {
        "words_changed_share": changed / words if words else 0.0,
        "messages_changed_share": sum(a != b for a, b in zip(out, texts)) / len(texts) if texts else 0.0,
    }
