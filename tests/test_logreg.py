"""Logistic regression, the discriminative twin of naive Bayes: same features, P(y | x) only."""

import numpy as np
import pytest

from nlpgd.errors import NlpgdError
from nlpgd.models.logreg import LogRegClassifier
from nlpgd.models.naive_bayes import NaiveBayesClassifier
from nlpgd.models.registry import load_model
from nlpgd.params import LogRegParams, NaiveBayesParams


def test_sees_exactly_the_features_naive_bayes_sees(tiny_corpus):
    shared = dict(analyzer="word", ngram_range=(1, 2), min_df=1, binary=True)
    lr = LogRegClassifier(LogRegParams(**shared)).fit(*tiny_corpus)
    nb = NaiveBayesClassifier(NaiveBayesParams(**shared)).fit(*tiny_corpus)
    assert lr.vectorizer_.vocabulary_ == nb.vectorizer_.vocabulary_
    assert lr.lr_.coef_.shape == (1, len(nb.vectorizer_.vocabulary_))


def test_is_discriminative_with_no_prior_and_no_sampler(tiny_corpus):
    m = LogRegClassifier().fit(*tiny_corpus)
    assert m.family == "discriminative"
    assert not any(m.can(c) for c in ("generative", "prior_replaceable", "can_generate", "token_scores"))
    assert not hasattr(m, "generate")
    with pytest.raises(NlpgdError, match="no class prior to replace"):
        m.set_prior({"spam": 0.5, "ham": 0.5})


def test_regularisation_strength_moves_confidence(tiny_corpus, tiny_test_corpus):
    weak = LogRegClassifier(LogRegParams(C=100.0)).fit(*tiny_corpus)
    strong = LogRegClassifier(LogRegParams(C=0.01)).fit(*tiny_corpus)
    texts, _ = tiny_test_corpus
    conf = lambda m: np.abs(m.predict_proba(texts)[:, 1] - 0.5).mean()  # noqa: E731
    assert conf(weak) > conf(strong)


def test_saved_as_json_and_npy_and_shapes_are_checked(tiny_corpus, tmp_path):
    m = LogRegClassifier().fit(*tiny_corpus)
    m.save(tmp_path / "lr")
    assert sorted(p.name for p in (tmp_path / "lr").iterdir()) == [
        "README.md",  # the model card
        "coef.npy",
        "intercept.npy",
        "nlpgd_model.json",
        "vocabulary.json",
    ]
    np.save(tmp_path / "lr" / "coef.npy", np.zeros((1, 3)))
    with pytest.raises(NlpgdError, match=r"coef.npy has shape \(1, 3\)"):
        load_model(tmp_path / "lr")


def test_non_convergence_is_recorded_not_printed(tiny_corpus, recwarn):
    m = LogRegClassifier(LogRegParams(max_iter=1)).fit(*tiny_corpus)
    assert m.converged_ is False
    assert not [w for w in recwarn if "converge" in str(w.message).lower()]
