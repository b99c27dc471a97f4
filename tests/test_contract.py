"""One contract test, parametrized over every registered model (as scikit-learn's
parametrize_with_checks does for estimators)."""

import numpy as np
import pytest

from nlpgd.models.base import FitContext, Generator
from nlpgd.models.registry import REGISTRY, build_model, load_model

# Tiny, fast settings per registered type; a new model type must add itself here.
TINY = {
    "naive_bayes": {},
    "distilbert": {"init": "scratch", "scratch_dim": 32, "scratch_layers": 1, "scratch_heads": 2,
                   "scratch_vocab_size": 200, "epochs": 3, "batch_size": 16, "learning_rate": 3e-3,
                   "max_length": 32, "early_stopping_patience": None},
    "gpt2": {"checkpoint": "scratch", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 300,
             "n_positions": 64, "epochs": 3, "batch_size": 16, "learning_rate": 3e-3, "max_length": 32},
}  # fmt: skip


def test_every_registered_type_has_tiny_settings():
    assert set(TINY) == set(REGISTRY)


@pytest.mark.parametrize("type_name", sorted(REGISTRY))
def test_contract(type_name, tiny_corpus, tiny_test_corpus, tmp_path):
    params_cls = REGISTRY[type_name][0]
    model = build_model(params_cls(type=type_name, **TINY[type_name]))
    texts, labels = tiny_corpus
    ctx = FitContext(seed=0, work_dir=tmp_path / "work", progress=False)
    assert model.fit(texts, labels, ctx) is model
    assert list(model.classes_) == ["ham", "spam"]

    test_texts, test_labels = tiny_test_corpus
    proba = model.predict_proba(test_texts)
    assert proba.shape == (len(test_texts), 2)
    assert np.all(proba >= 0) and np.allclose(proba.sum(axis=1), 1)
    pred = model.predict(test_texts)
    np.testing.assert_array_equal(pred, model.classes_[proba.argmax(axis=1)])
    assert (pred == np.array(test_labels)).mean() > 0.5  # beats chance on a separable corpus

    model.save(tmp_path / "saved")
    again = load_model(tmp_path / "saved")
    assert type(again) is type(model)
    np.testing.assert_allclose(again.predict_proba(test_texts), proba, atol=1e-6)
    assert model.n_parameters() is None or model.n_parameters() > 0
    if model.family == "generative" and isinstance(model, Generator):
        ll = model.log_likelihood(test_texts[:2], "spam")
        assert ll.shape == (2,) and np.all(np.isfinite(ll))
