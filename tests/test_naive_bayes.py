import numpy as np
import pytest

from nlpgd.errors import NlpgdError
from nlpgd.models.naive_bayes import NaiveBayesClassifier
from nlpgd.params import NaiveBayesParams


@pytest.mark.parametrize(
    "params",
    [
        NaiveBayesParams(),
        NaiveBayesParams(variant="complement", alpha=0.5),
        NaiveBayesParams(analyzer="char_wb", ngram_range=(2, 4), alpha=0.1),
        NaiveBayesParams(ngram_range=(1, 2), binary=True, min_df=2),
    ],
)
def test_fits_separable_corpus_and_round_trips(params, tiny_corpus, tiny_test_corpus, tmp_path):
    m = NaiveBayesClassifier(params).fit(*tiny_corpus)
    texts, labels = tiny_test_corpus
    assert (m.predict(texts) == np.array(labels)).mean() >= 0.9
    m.save(tmp_path / "nb")
    assert not list((tmp_path / "nb").glob("*.pkl"))
    m2 = NaiveBayesClassifier.load(tmp_path / "nb")
    np.testing.assert_array_equal(m.predict_proba(texts), m2.predict_proba(texts))


def test_generative_view_is_consistent(tiny_corpus):
    m = NaiveBayesClassifier(NaiveBayesParams(alpha=0.5)).fit(*tiny_corpus)
    texts = ["free prize cash now", "see you at lunch tomorrow"]
    ll_spam = m.log_likelihood(texts, "spam")
    ll_ham = m.log_likelihood(texts, "ham")
    assert ll_spam[0] > ll_ham[0] and ll_ham[1] > ll_spam[1]
    # log P(x|y) + log P(y), normalised, is exactly predict_proba
    joint = np.stack([ll_ham, ll_spam], axis=1) + m.nb_.class_log_prior_
    proba = np.exp(joint - np.logaddexp.reduce(joint, axis=1, keepdims=True))
    np.testing.assert_allclose(proba, m.predict_proba(texts), rtol=1e-10)


def test_generate_is_seeded_and_on_topic(tiny_corpus):
    m = NaiveBayesClassifier(NaiveBayesParams(alpha=0.01)).fit(*tiny_corpus)
    a = m.generate("spam", 5, seed=3)
    assert a == m.generate("spam", 5, seed=3)
    assert (m.predict(a) == "spam").all()
    with pytest.raises(NlpgdError, match="unknown label"):
        m.generate("eggs", 1)
    with pytest.raises(NlpgdError, match="positive"):
        m.generate("spam", 0)


def test_one_class_is_an_error():
    with pytest.raises(NlpgdError, match="only one class"):
        NaiveBayesClassifier().fit(["a b", "c d"], ["spam", "spam"])


def test_prior_swap_moves_predictions_and_restores(tiny_corpus):
    texts, labels = tiny_corpus
    model = NaiveBayesClassifier(NaiveBayesParams()).fit(texts, labels)
    ambiguous = ["7"]  # only a number: the prior decides
    base = model.predict_proba(ambiguous)[0, 1]
    assert model.set_prior({"spam": 0.9, "ham": 0.1}).predict_proba(ambiguous)[0, 1] > base
    assert model.set_prior({"spam": 0.1, "ham": 0.9}).predict_proba(ambiguous)[0, 1] < base
    assert model.set_prior(None).predict_proba(ambiguous)[0, 1] == pytest.approx(base)
    with pytest.raises(NlpgdError, match="prior must sum to 1"):
        model.set_prior({"spam": 0.5, "ham": 0.6})
