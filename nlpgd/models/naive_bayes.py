"""Naive Bayes: the generative classic, ``argmax_y log P(y) + sum_w n_w log P(w | y)``.

scikit-learn's ``MultinomialNB`` / ``ComplementNB`` over ``CountVectorizer`` word or
character n-grams (:mod:`nlpgd.models.bag_of_words`). Saved without pickle: the vocabulary
as JSON, the learned arrays as ``.npy`` (loaded with ``allow_pickle=False``).

Multinomial NB is generative: ``log_likelihood`` is the multinomial log-probability of a
text's n-gram counts (without the multinomial coefficient, the same for every class), and
``generate`` samples a bag of words from ``P(w | y)`` with a length drawn around the
class's mean training length. Complement NB is not a generative model, so it declares
none of those capabilities.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn.naive_bayes import ComplementNB, MultinomialNB

from nlpgd.errors import NlpgdError
from nlpgd.models.bag_of_words import CountFeatureClassifier
from nlpgd.models.base import Capabilities, ScoredClassifier, check_prior
from nlpgd.params import NaiveBayesParams
from nlpgd.sampling import TEMPERATURE, SamplingSettings, check_count

NOT_COMPLEMENT = ("generative", "prior_replaceable", "can_generate")
_ARRAYS = ("feature_count_", "class_count_", "feature_log_prob_", "class_log_prior_")


class NaiveBayesClassifier(CountFeatureClassifier, ScoredClassifier):
    params_class = NaiveBayesParams
    capabilities = Capabilities(generative=True, prior_replaceable=True, can_generate=True, seed_free=True)
    params: NaiveBayesParams
    what = "naive Bayes"

    def can(self, capability: str) -> bool:
        if self.params.variant == "complement" and capability in NOT_COMPLEMENT:
            return False  # no class prior and no P(x | y)
        if capability == "can_generate" and self.params.analyzer != "word":
            return False  # character n-grams cannot be strung back into text
        return super().can(capability)

    def _nb(self):
        p = self.params
        cls = MultinomialNB if p.variant == "multinomial" else ComplementNB
        return cls(alpha=p.alpha, fit_prior=p.fit_prior)

    def _fit_counts(self, X, labels: list[str]) -> None:
        self.nb_ = self._nb().fit(X, labels)
        lengths = np.asarray(X.sum(axis=1)).ravel()
        y = np.asarray(labels)
        self.mean_length_ = np.array([lengths[y == c].mean() for c in self.classes_])

    def _fitted_prior(self, labels: list[str]) -> dict[str, float]:
        """Multinomial: ``class_log_prior_`` (the training share, or uniform with ``fit_prior:
        false``); complement: uniform (its decision has no prior term)."""
        if self.params.variant == "complement":
            return {str(c): 1.0 / len(self.classes_) for c in self.classes_}
        return {str(c): float(v) for c, v in zip(self.classes_, np.exp(self.nb_.class_log_prior_))}

    def set_prior(self, prior: dict[str, float] | None) -> "NaiveBayesClassifier":
        if prior is not None and not self.can("prior_replaceable"):
            raise NlpgdError(
                "complement naive Bayes does not use a class prior; only variant: multinomial can take one"
            )
        return super().set_prior(prior)

    def _class_scores(self, texts: Sequence[str]) -> np.ndarray:
        """``log P(x, y)`` up to a constant, with the replaced prior when there is one."""
        jll = self.nb_.predict_joint_log_proba(self._X(texts))
        if getattr(self, "replaced_prior_", None) is not None:
            jll = jll - self.nb_.class_log_prior_ + check_prior(self.replaced_prior_, self.classes_)
        return jll

    def _X(self, texts: Sequence[str]):
        self._check_fitted()
        return self.vectorizer_.transform([str(t) for t in texts])

    def predict_log_joint(self, texts: Sequence[str]) -> np.ndarray:
        """Unnormalised ``log P(x, y)`` per class (columns in ``classes_`` order)."""
        return self._class_scores(texts)

    # -- generator --------------------------------------------------------------------
    def log_likelihood(self, texts: Sequence[str], label: str) -> np.ndarray:
        if not self.can("generative"):
            raise NlpgdError("log_likelihood needs variant: multinomial (ComplementNB is not a generative model)")
        k = self._class_index(label)
        return np.asarray(self._X(texts) @ self.nb_.feature_log_prob_[k]).ravel()

    def generate(self, label: str, n: int, *, seed: int = 0, temperature: float = TEMPERATURE, **_ignored) -> list[str]:
        """``n`` bags of words drawn from ``P(w | label)`` (word order carries no meaning)."""
        n = check_count(n)
        if not self.can("can_generate"):
            raise NlpgdError("naive Bayes can only generate with variant: multinomial and analyzer: word")
        temperature = SamplingSettings(temperature=temperature).temperature
        k = self._class_index(label)
        rng = np.random.default_rng(seed)
        vocab = np.empty(len(self.vectorizer_.vocabulary_), dtype=object)
        for w, i in self.vectorizer_.vocabulary_.items():
            vocab[i] = w
        logp = self.nb_.feature_log_prob_[k] / float(temperature)
        p = np.exp(logp - logp.max())
        p /= p.sum()
        out = []
        for _ in range(n):  # length then words, sample by sample: the same seed gives the same list
            length = max(1, rng.poisson(self.mean_length_[k]))
            out.append(" ".join(vocab[rng.choice(len(p), size=length, p=p)]))
        return out

    # -- persistence ------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        return int(self.nb_.feature_log_prob_.size + self.nb_.class_log_prior_.size)

    def _arrays(self) -> dict[str, np.ndarray]:
        return {**{name.rstrip("_"): getattr(self.nb_, name) for name in _ARRAYS}, "mean_length": self.mean_length_}

    def _array_shapes(self, n_classes: int, n_features: int) -> dict[str, tuple]:
        k, v = n_classes, n_features
        return {
            "feature_count": (k, v),
            "class_count": (k,),
            "feature_log_prob": (k, v),
            "class_log_prior": (k,),
            "mean_length": (k,),
        }

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        nb = self._nb()
        for name in _ARRAYS:
            setattr(nb, name, arrays[name.rstrip("_")])
        nb.classes_ = self.classes_
        nb.n_features_in_ = len(self.vectorizer_.vocabulary_)
        self.nb_ = nb
        self.mean_length_ = arrays["mean_length"]
