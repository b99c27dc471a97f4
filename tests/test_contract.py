"""One contract test suite, parametrized over every registered model type (as scikit-learn's
``parametrize_with_checks`` does for estimators). A new type joins by registering itself in
``nlpgd.params``; its tiny settings are its params class's ``smoke`` dict. No silent skips:
every capability a type declares is exercised."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from nlpgd.errors import NlpgdError
from nlpgd.models.base import CAPABILITIES, MODEL_META, FitContext, read_model_meta
from nlpgd.models.registry import build_model, load_model, model_class
from nlpgd.params import REGISTRY

TYPES = sorted(REGISTRY)


def tiny_params(type_name: str):
    params_cls = REGISTRY[type_name].params
    return params_cls(**params_cls.smoke)


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    """Each type fitted once on the tiny corpus (seed 0), and again with the same seed."""
    from conftest import make_corpus

    texts, labels = make_corpus(40, seed=0)
    out = {}
    for t in TYPES:
        runs = []
        for attempt in range(2):
            work = tmp_path_factory.mktemp(f"{t}-work{attempt}")
            params = tiny_params(t)
            before = copy.deepcopy(params.model_dump())
            model = build_model(params)
            assert model.fit(texts, labels, FitContext(seed=0, work_dir=work, progress=False)) is model
            assert params.model_dump() == before, f"{t}: fit changed its params"
            runs.append(model)
        out[t] = runs
    return out


def test_registry_and_classes_agree():
    for t in TYPES:
        cls = model_class(t)
        assert cls.type_name == t and cls.params_class is REGISTRY[t].params
        assert set(vars(cls.capabilities)) == set(CAPABILITIES)


@pytest.mark.parametrize("type_name", TYPES)
def test_classifies(type_name, fitted, tiny_test_corpus):
    model = fitted[type_name][0]
    assert list(model.classes_) == ["ham", "spam"]
    texts, labels = tiny_test_corpus
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), 2)
    assert np.all(proba >= 0) and np.allclose(proba.sum(axis=1), 1)
    pred = model.predict(texts)
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(axis=1)])
    assert (pred == np.array(labels)).mean() > 0.5  # beats chance on a separable corpus
    assert model.n_parameters() is None or model.n_parameters() > 0
    assert model.family in ("generative", "discriminative", "hybrid")
    assert (model.family == "discriminative") <= (not model.can("generative"))


@pytest.mark.parametrize("type_name", TYPES)
def test_same_seed_same_predictions_on_cpu(type_name, fitted, tiny_test_corpus):
    a, b = fitted[type_name]
    texts, _ = tiny_test_corpus
    np.testing.assert_array_equal(a.predict_proba(texts), b.predict_proba(texts))


@pytest.mark.parametrize("type_name", TYPES)
def test_predict_before_fit_is_a_clear_error(type_name):
    model = build_model(tiny_params(type_name))
    with pytest.raises(NlpgdError, match="not fitted yet"):
        model.predict_proba(["hello"])
    with pytest.raises(NlpgdError, match="not fitted yet"):
        model.save("/nonexistent/never-written")


@pytest.mark.parametrize("type_name", TYPES)
def test_one_class_is_refused(type_name):
    with pytest.raises(NlpgdError, match="only one class"):
        build_model(tiny_params(type_name)).fit(["a b", "c d"], ["spam", "spam"], FitContext(progress=False))


@pytest.mark.parametrize("type_name", TYPES)
def test_save_then_load_gives_identical_probabilities(type_name, fitted, tiny_test_corpus, tmp_path):
    model = fitted[type_name][0]
    model.save(tmp_path / "saved")
    meta = read_model_meta(tmp_path / "saved")
    assert meta["type"] == type_name and meta["seed"] == 0 and len(meta["train_data_sha256"]) == 16
    again = load_model(tmp_path / "saved")
    assert type(again) is type(model) and again.fit_info_ == model.fit_info_
    texts, _ = tiny_test_corpus
    np.testing.assert_allclose(again.predict_proba(texts), model.predict_proba(texts), atol=1e-6)


@pytest.mark.parametrize("type_name", TYPES)
def test_loading_checks_the_type(type_name, fitted, tmp_path):
    fitted[type_name][0].save(tmp_path / "saved")
    other = next(t for t in TYPES if t != type_name)
    with pytest.raises(NlpgdError, match=f"holds a '{type_name}' model, not '{other}'"):
        model_class(other).load(tmp_path / "saved")
    meta_file = tmp_path / "saved" / MODEL_META
    meta_file.write_text(meta_file.read_text().replace('"format": 2', '"format": 99'))
    with pytest.raises(NlpgdError, match="format 99"):
        load_model(tmp_path / "saved")


GENERATIVE = [t for t in TYPES if model_class(t).capabilities.generative]
GENERATORS = [t for t in TYPES if model_class(t).capabilities.can_generate]
PRIORS = [t for t in TYPES if model_class(t).capabilities.prior_replaceable]
TOKENS = [t for t in TYPES if model_class(t).capabilities.token_scores]
DATA_PARALLEL = [t for t in TYPES if model_class(t).capabilities.data_parallel]  # run by tests/test_distributed.py


def test_every_capability_has_a_type():
    assert GENERATIVE and GENERATORS and PRIORS and TOKENS and DATA_PARALLEL


@pytest.mark.parametrize("type_name", GENERATIVE)
def test_log_likelihood_has_one_value_per_text(type_name, fitted, tiny_test_corpus):
    model = fitted[type_name][0]
    texts, _ = tiny_test_corpus
    for label in model.classes_:
        ll = model.log_likelihood(texts[:3], label)
        assert ll.shape == (3,) and np.all(np.isfinite(ll)) and np.all(ll < 0)
    joint = model.predict_log_joint(texts[:3])
    np.testing.assert_allclose(
        np.exp(joint - joint.max(1, keepdims=True)) / np.exp(joint - joint.max(1, keepdims=True)).sum(1, keepdims=True),
        model.predict_proba(texts[:3]),
        atol=1e-6,
    )


@pytest.mark.parametrize("type_name", GENERATORS)
def test_generate_returns_n_texts_of_the_asked_label(type_name, fitted):
    model = fitted[type_name][0]
    for label in ("spam", "ham"):
        samples = model.generate(label, 5, seed=0)
        assert len(samples) == 5 and all(isinstance(s, str) and s.strip() for s in samples)
        assert samples == model.generate(label, 5, seed=0)  # reproducible by seed
    with pytest.raises(NlpgdError, match="unknown label"):
        model.generate("junk", 2)
    with pytest.raises(NlpgdError):
        model.generate("spam", 0)


@pytest.mark.parametrize("type_name", PRIORS)
def test_prior_can_be_replaced_and_restored(type_name, fitted, tiny_test_corpus):
    model = fitted[type_name][0]
    texts, _ = tiny_test_corpus
    base = model.predict_proba(texts)[:, 1]
    model.set_prior({"spam": 0.999, "ham": 0.001})
    try:
        assert np.all(model.predict_proba(texts)[:, 1] >= base - 1e-12)
        with pytest.raises(NlpgdError, match="unknown class"):
            model.set_prior({"junk": 1.0})
    finally:
        model.set_prior(None)
    np.testing.assert_allclose(model.predict_proba(texts)[:, 1], base)


@pytest.mark.parametrize("type_name", TOKENS)
def test_token_scores_sum_to_the_log_likelihood(type_name, fitted):
    model = fitted[type_name][0]
    text = "free prize call now"
    for label in model.classes_:
        total = sum(v for _, v in model.token_log_likelihoods(text, label))
        assert total == pytest.approx(model.log_likelihood([text], label)[0], abs=1e-3)


@pytest.mark.parametrize("type_name", TYPES)
def test_log_odds_agree_with_the_probabilities(type_name, fitted, tiny_test_corpus):
    model = fitted[type_name][0]
    texts, _ = tiny_test_corpus
    z = model.predict_log_odds(texts)
    assert z.shape == (len(texts),) and z.dtype == np.float64 and np.all(np.isfinite(z))
    p = model.predict_proba(texts)[:, 1]
    with np.errstate(divide="ignore"):
        from_p = np.log(p) - np.log1p(-p)
    ok = np.abs(z) < 30  # beyond that P(spam) has too few digits to compare
    np.testing.assert_allclose(z[ok], from_p[ok], atol=1e-5)


@pytest.mark.parametrize("type_name", TYPES)
def test_the_prior_the_outputs_assume_is_recorded_and_saved(type_name, fitted, tmp_path):
    model = fitted[type_name][0]
    prior = model.output_prior()
    assert set(prior) == {"ham", "spam"} and sum(prior.values()) == pytest.approx(1.0)
    model.save(tmp_path / "saved")
    assert read_model_meta(tmp_path / "saved")["output_prior"] == prior
    assert load_model(tmp_path / "saved").output_prior() == prior


@pytest.mark.parametrize("type_name", TYPES)
def test_set_prior_means_one_thing(type_name, fitted, tiny_test_corpus, tmp_path):
    """The replaced prior is fitted state (``replaced_prior_``), saved as such and never written
    into params; a model without a prior to replace refuses in one sentence."""
    model = fitted[type_name][0]
    before = model.params.model_dump(mode="json")
    if not model.can("prior_replaceable"):
        with pytest.raises(NlpgdError, match="prior"):
            model.set_prior({"spam": 0.5, "ham": 0.5})
        return
    texts, _ = tiny_test_corpus
    model.set_prior({"spam": 0.8, "ham": 0.2})
    try:
        assert model.params.model_dump(mode="json") == before
        assert model.replaced_prior_ == {"ham": 0.2, "spam": 0.8} == model.output_prior()
        model.save(tmp_path / "saved")
        expected = model.predict_log_odds(texts)
    finally:
        model.set_prior(None)
    meta = read_model_meta(tmp_path / "saved")
    assert meta["replaced_prior"] == {"ham": 0.2, "spam": 0.8} and meta["params"] == before
    again = load_model(tmp_path / "saved")
    assert again.replaced_prior_ == {"ham": 0.2, "spam": 0.8}
    np.testing.assert_allclose(again.predict_log_odds(texts), expected, atol=1e-6)
    assert not hasattr(model, "replaced_prior_") and model.output_prior() == again.set_prior(None).output_prior()
