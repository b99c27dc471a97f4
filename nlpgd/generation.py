"""How good are sampled messages? Pure functions over lists of strings.

:func:`sample_quality` reports, for samples drawn from ``P(x | label)``:

- diversity: distinct-1 and distinct-2 (Li et al., 2016): distinct word n-grams over all
  word n-grams of the samples;
- memorisation: the share of samples that exactly copy a training message, and the share
  that share any word 8-gram with a training message;
- label fidelity: for each classifier given, the share of samples it predicts as ``label``;
- length: mean and median length in words, samples against the real messages of ``label``.

Words are whitespace-separated tokens; n-gram matching lowercases them, exact copies compare
the stripped strings ignoring case.

In-context generation (``nlpgd generate --shots K``) builds its instructions here:
:func:`draw_shots` picks, for each sample, K distinct real messages of the class by seed, and
:func:`instruction` writes the user message that shows them and asks for a new one.
"""

from __future__ import annotations

import random
import statistics
from typing import Iterable, Mapping, Sequence

from nlpgd.errors import NlpgdError

OVERLAP_N = 8
# label-fidelity keys of the reports ``compare`` writes (``generation:`` in a config): a naive
# Bayes trained on the real train split, the same judge for every generator; and the generator
JUDGE = "naive_bayes_train_split"
SELF = "generator"
#: how an instruction names each class (other class names are used as they are)
CLASS_WORDS = {"spam": "spam (unsolicited, unwanted)", "ham": "ordinary, legitimate (not spam)"}


def words(text: str) -> list[str]:
    return text.split()


def ngrams(tokens: Sequence[str], n: int) -> list[tuple[str, ...]]:
    return [tuple(tokens[i : i + n]) for i in range(len(tokens) - n + 1)]


def distinct_n(samples: Iterable[str], n: int) -> float:
    """Distinct word n-grams / all word n-grams over ``samples`` (0.0 when there are none)."""
    total, seen = 0, set()
    for s in samples:
        grams = ngrams(words(s.lower()), n)
        total += len(grams)
        seen.update(grams)
    return len(seen) / total if total else 0.0


def copy_share(samples: Sequence[str], train_texts: Iterable[str]) -> float:
    """Share of samples equal to some training message, after stripping and ignoring case
    (a model trained on lowercased text reproduces a message lowercased)."""
    if not samples:
        return 0.0
    train = {t.strip().lower() for t in train_texts}
    return sum(s.strip().lower() in train for s in samples) / len(samples)


def ngram_overlap_share(samples: Sequence[str], train_texts: Iterable[str], n: int = OVERLAP_N) -> float:
    """Share of samples with at least one word ``n``-gram (lowercased) found in a training message."""
    if not samples:
        return 0.0
    train_grams: set[tuple[str, ...]] = set()
    for t in train_texts:
        train_grams.update(ngrams(words(t.lower()), n))
    hits = sum(any(g in train_grams for g in ngrams(words(s.lower()), n)) for s in samples)
    return hits / len(samples)


def length_stats(texts: Sequence[str]) -> dict[str, float | None]:
    """Mean and median length in words (None for no texts)."""
    lengths = [len(words(t)) for t in texts]
    if not lengths:
        return {"mean": None, "median": None}
    return {"mean": float(statistics.fmean(lengths)), "median": float(statistics.median(lengths))}


def label_fidelity(samples: Sequence[str], classifiers: Mapping[str, object], label: str) -> dict[str, float]:
    """For each classifier, the share of ``samples`` it predicts as ``label``."""
    out = {}
    for name, clf in classifiers.items():
        predicted = [str(p) for p in clf.predict(list(samples))]
        out[name] = sum(p == label for p in predicted) / len(samples) if samples else 0.0
    return out


def sample_quality(
    samples: list[str],
    train_texts: list[str] | None,
    real_texts_of_label: list[str],
    classifiers: Mapping[str, object] | None,
    label: str,
) -> dict:
    """Quality report for ``samples`` of class ``label`` (a JSON-able dict).

    ``train_texts`` None skips the memorisation metrics (reported as None, with a note).
    """
    if not samples:
        raise NlpgdError("there are no samples to assess")
    samples = [str(s) for s in samples]
    notes: list[str] = []
    if train_texts is None:
        copies = overlap = None
        notes.append("training texts unavailable: copy and 8-gram overlap metrics skipped")
    else:
        copies = copy_share(samples, train_texts)
        overlap = ngram_overlap_share(samples, train_texts)
    return {
        "label": label,
        "n_samples": len(samples),
        "n_distinct": len(set(samples)),
        "distinct_1": distinct_n(samples, 1),
        "distinct_2": distinct_n(samples, 2),
        "copy_share": copies,
        f"overlap_{OVERLAP_N}gram_share": overlap,
        "label_fidelity": label_fidelity(samples, classifiers or {}, label),
        "length_words": {
            "samples": length_stats(samples),
            "real": length_stats(list(real_texts_of_label)),
        },
        "notes": notes,
    }


def draw_shots(pool_size: int, k: int, n: int, seed: int) -> list[list[int]]:
    """For each of ``n`` prompts, ``k`` distinct indices into a pool of ``pool_size`` real
    messages, drawn with ``seed`` (the same arguments give the same draws)."""
    if k < 0:
        raise NlpgdError(f"the number of shots must be 0 or more, got {k}")
    if k > pool_size:
        raise NlpgdError(f"cannot draw {k} shots from {pool_size} messages")
    rng = random.Random(seed)
    return [rng.sample(range(pool_size), k) for _ in range(n)]


def instruction(label: str, shots: Sequence[str], medium: str = "message") -> str:
    """The user message of an in-context prompt: the ``shots`` (real messages of ``label``),
    then the request for one new message like them; with no shots, a zero-shot request."""
    kind = CLASS_WORDS.get(label, label)
    ask = "Reply with the message only, without quotes or comments."
    if not shots:
        return f"Write one {kind} {medium}, the kind people really receive. {ask}"
    examples = "\n".join(f"Example {i}: {' '.join(str(s).split())}" for i, s in enumerate(shots, start=1))
    return (
        f"Here are {len(shots)} real {kind} {medium}s:\n{examples}\n\n"
        f"Write one new {kind} {medium} in the same style, length and format as these examples, "
        f"without copying any of them. {ask}"
    )
