"""Critic selection (nlpgd generate --select K) and the generator's log-likelihood profile."""

from __future__ import annotations

import json

import numpy as np
import pytest

from conftest import make_corpus


@pytest.fixture(scope="module")
def tiny_gpt2():
    from nlpgd.models.base import FitContext
    from nlpgd.models.gpt2 import GPT2Classifier
    from nlpgd.params import GPT2Params

    params = GPT2Params(n_layer=1, n_embd=32, n_head=2, vocab_size=300, epochs=1, max_length=32)
    return GPT2Classifier(params).fit(*make_corpus(40, seed=0), FitContext(seed=0, progress=False))


def test_token_log_probs_sum_to_the_models_log_likelihood(tiny_gpt2):
    from nlpgd.models.lm_profile import FEATURES, profile_features, token_log_probs

    model, tiny_corpus = tiny_gpt2, make_corpus(40, seed=0)
    texts = tiny_corpus[0][:7] + ["", "a much longer message " * 20]
    lps = token_log_probs(model, texts, "spam")
    np.testing.assert_allclose([lp.sum() for lp in lps], model.log_likelihood(texts, "spam"), rtol=1e-4, atol=1e-4)
    feats = profile_features(model, texts, "spam")
    assert feats.shape == (len(texts), len(FEATURES)) and np.isfinite(feats).all()


def test_real_messages_are_cut_like_samples(tiny_gpt2):
    from nlpgd.experiments.generate import cut_like

    short, long = "win cash now", " ".join(["claim your free prize"] * 20)
    real, note = cut_like(tiny_gpt2, [short, long], max_new_tokens=10)
    assert real[0] == short and len(tiny_gpt2.encode([real[1]])[0]) <= 10 and long.startswith(real[1])
    assert note.startswith("1 of 2 real messages cut to their first 10 tokens")
    # the training window (max_length 32 = start + 30 + end) bounds the cut too
    real, note = cut_like(tiny_gpt2, [long], max_new_tokens=500)
    assert "first 30 tokens" in note
    assert cut_like(tiny_gpt2, [short], 10) == ([short], None) and cut_like(None, [long]) == ([long], None)


def test_select_keeps_plain_and_selected_apart_and_reads_train_ids_only(generate_cli, tiny_run, tmp_path):
    out = tmp_path / "s.jsonl"
    args = ["--n", 10, "--select", 3, "--max-new-tokens", 10, "--reference-lm", "none", "--judge", "char"]
    res = generate_cli(tiny_run, *args, "--out", out)
    assert res.exit_code == 0, res.output
    q = json.loads((tmp_path / "s.jsonl.quality.json").read_text())
    manifest = json.loads((tiny_run / "split_manifest.json").read_text())["splits"]
    ids = {s: {str(i) for i, _, y in manifest[s] if y == "spam"} for s in manifest}
    critic = q["critic"]
    assert set(critic["train_real_ids"]) == ids["train"]  # every train spam message, and only those
    assert not set(critic["train_real_ids"]) & (ids["validation"] | ids["test"])
    assert critic["candidates"] == 30 and critic["k"] == 3 and critic["n_real"] == len(ids["train"])
    assert q["selection"] == "critic-selected, K = 3" and q["plain"]["selection"].startswith("plain sampling")
    samples = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert len(samples) == 10 and q["n_samples"] == q["plain"]["n_samples"] == 10
    assert "[plain sampling" in res.output and "[critic-selected, K = 3]" in res.output
    assert res.output.count("realism: char judge") == 2


def test_select_bad_input(generate_cli, tiny_run, tmp_path):
    out = tmp_path / "s.jsonl"
    for k in (0, -2):
        res = generate_cli(tiny_run, "--n", 5, "--select", k, "--out", out)
        assert res.exit_code == 2 and "--select must be" in res.output and "1 or more" in res.output
    res = generate_cli(tiny_run, "--n", 5, "--select", 2, "--model", "naive_bayes", "--out", out)
    assert res.exit_code == 2 and "--select needs a generative language model" in res.output
    res = generate_cli(tiny_run, "--n", 5, "--select", 2, "--prompt", "win", "--out", out)
    assert res.exit_code == 2 and "without --shots or --prompt" in res.output
    assert not out.exists() and "Traceback" not in res.output
