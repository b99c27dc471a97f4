"""Test-time perturbations: deterministic for a seed, and they change what they say they change."""

import numpy as np
import pytest

from nlpgd.perturb import (
    OBFUSCATIONS,
    obfuscate,
    obfuscate_counted,
    perturb_texts,
    resample_to_prevalence,
    truncate_words,
    word_dropout,
)

from conftest import make_corpus

TEXT = (
    "Congratulations you have won a free prize claim your reward today by calling our hotline "
    "before midnight tonight otherwise the special bonus offer expires and goes to another lucky winner"
)


@pytest.mark.parametrize("kind", OBFUSCATIONS)
def test_obfuscation_is_deterministic_for_a_seed(kind):
    assert obfuscate(TEXT, kind, 0.4, seed=3) == obfuscate(TEXT, kind, 0.4, seed=3)
    outs = {obfuscate(TEXT, kind, 0.4, seed=s) for s in range(6)}
    assert len(outs) > 1  # another seed draws other words


@pytest.mark.parametrize("kind", ("swap", "leet", "homoglyph"))
@pytest.mark.parametrize("strength", (0.1, 0.2, 0.4))
def test_obfuscation_changes_the_stated_share_of_words(kind, strength):
    words = TEXT.split()
    out = obfuscate(TEXT, kind, strength, seed=0)
    changed = sum(a != b for a, b in zip(words, out.split()))
    assert len(out.split()) == len(words)
    assert changed == round(strength * len(words))


@pytest.mark.parametrize("strength", (0.1, 0.2, 0.4))
def test_inserted_characters_change_the_stated_share_of_words(strength):
    words = TEXT.split()
    out, n_changed, n_words = obfuscate_counted(TEXT, "insert", strength, seed=1)
    assert n_words == len(words) and n_changed == round(strength * len(words))
    assert len(out) == len(TEXT) + n_changed  # one character inserted into each chosen word
    stripped = "".join(c for c in out if c not in " .-*_")
    assert stripped == "".join(c for c in TEXT if c not in " .-*_")  # nothing else changed


def test_obfuscation_keeps_labels_and_strength_zero_is_identity():
    texts, labels = make_corpus(10)
    out, effect = perturb_texts(texts, ("obfuscate", "leet", 0.0), seed=0)
    assert out == texts and effect["words_changed_share"] == 0
    out, effect = perturb_texts(texts, ("obfuscate", "homoglyph", 0.4), seed=0)
    assert len(out) == len(labels) and out != texts  # one text per message, in order: labels still apply
    assert 0.2 < effect["words_changed_share"] <= 0.45


def test_homoglyphs_look_alike_but_differ():
    out = obfuscate("spam", "homoglyph", 1.0, seed=0)
    assert out != "spam" and len(out) == 4 and not out.isascii()


def test_word_dropout_rate_within_tolerance_and_deterministic():
    texts = [TEXT] * 200
    for rate in (0.1, 0.3, 0.5):
        out, effect = perturb_texts(texts, ("dropout", rate), seed=2)
        # every copy of the same text with the same seed drops the same words
        assert len(set(out)) == 1
        many = [word_dropout(f"{TEXT} {i}", rate, seed=2) for i in range(300)]
        kept = sum(len(t.split()) for t in many) / (300 * (len(TEXT.split()) + 1))
        assert abs((1 - kept) - rate) < 0.03, (rate, kept)
    assert word_dropout("single", 0.9, seed=0) == "single"
    assert word_dropout(TEXT, 0.99, seed=0)  # never empty


def _after_separator(text: str) -> dict[str, str]:
    """Each word of ``text`` (all distinct) and the whitespace just before it."""
    import re

    return {m.group(2): m.group(1) for m in re.finditer(r"(\s*)(\S+)", text)}


def test_word_dropout_keeps_the_separators_of_the_words_that_stay():
    text = "  Dear friend,\n\nWIN a\tprize now!\r\n-- \nBob  "
    # nothing dropped: the message is unchanged, byte for byte (newlines, tabs, edges)
    assert word_dropout(text, 1e-12, seed=0) == text
    assert perturb_texts([text], ("dropout", 1e-12), seed=0)[0] == [text]
    original = _after_separator(text)
    for seed in range(20):
        out = word_dropout(text, 0.4, seed)
        assert out.startswith("  ") and out.endswith("  ")
        kept = _after_separator(out)
        assert list(kept) == [w for w in original if w in kept]  # the kept words, in order
        for w in list(kept)[1:]:  # each after the separator that preceded it in the original
            assert kept[w] == original[w], (seed, out)
    # newlines survive at the rate their words do
    lines = "\n".join(f"line{i} word{i}" for i in range(200))
    out = word_dropout(lines, 0.5, seed=1)
    assert abs(out.count("\n") / len(out.split()) - lines.count("\n") / len(lines.split())) < 0.15


def test_truncation_keeps_the_first_words():
    assert truncate_words(TEXT, 5) == " ".join(TEXT.split()[:5])
    assert truncate_words("a  b\tc d", 3) == "a  b\tc"
    assert truncate_words("short one", 5) == "short one"


@pytest.mark.parametrize(
    "call",
    [
        lambda: word_dropout(TEXT, 1.0, 0),
        lambda: truncate_words(TEXT, 0),
        lambda: obfuscate(TEXT, "rot13", 0.1, 0),
        lambda: obfuscate(TEXT, "swap", 1.5, 0),
    ],
)
def test_out_of_range_arguments_are_errors(call):
    with pytest.raises(ValueError):
        call()


@pytest.mark.parametrize("q", (0.01, 0.13, 0.5))
def test_resampling_reaches_the_prevalence(q):
    y = np.array([1] * 180 + [0] * 410)
    idx = resample_to_prevalence(y, q, seed=0)
    assert len(set(idx)) == len(idx)  # without replacement
    assert abs(y[idx].mean() - q) < 0.006
    assert np.array_equal(idx, resample_to_prevalence(y, q, seed=0))
    assert not np.array_equal(idx, resample_to_prevalence(y, q, seed=1))


def test_resampling_rejects_a_prevalence_outside_0_1():
    for q in (0.0, 1.0, 1.5):
        with pytest.raises(ValueError):
            resample_to_prevalence([0, 1, 0], q, seed=0)
