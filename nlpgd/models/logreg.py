"""Logistic regression: the discriminative twin of naive Bayes (Ng & Jordan, 2001).

The same ``CountVectorizer`` features as naive Bayes (:mod:`nlpgd.models.bag_of_words`),
with ``P(y | x)`` fitted directly by scikit-learn's ``LogisticRegression`` (L2, L-BFGS). It
classifies; it has no class prior to swap and cannot generate. Saved as the vocabulary
JSON plus ``coef.npy`` and ``intercept.npy``, never pickle.
"""

from __future__ import annotations

import warnings

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.linear_model import LogisticRegression

from nlpgd.models.bag_of_words import CountFeatureClassifier
from nlpgd.params import LogRegParams


class LogRegClassifier(CountFeatureClassifier):
    params_class = LogRegParams
    params: LogRegParams
    what = "logistic regression"

    def _lr(self) -> LogisticRegression:
        p = self.params
        return LogisticRegression(C=p.C, class_weight=p.class_weight, max_iter=p.max_iter)

    def _fit_counts(self, X, labels: list[str]) -> None:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            self.lr_ = self._lr().fit(X, labels)
        # L-BFGS stopping at max_iter is recorded, not printed (raise max_iter to silence it)
        self.converged_ = not any(issubclass(w.category, ConvergenceWarning) for w in caught)

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        return self.lr_.predict_proba(self.vectorizer_.transform(texts))

    def _predict_log_odds(self, texts: list[str]) -> np.ndarray:
        return self.lr_.decision_function(self.vectorizer_.transform(texts))

    def _fitted_prior(self, labels: list[str]) -> dict[str, float]:
        """``class_weight: balanced`` weights the classes equally: its outputs assume a uniform prior."""
        if self.params.class_weight == "balanced":
            return {str(c): 1.0 / len(self.classes_) for c in self.classes_}
        return super()._fitted_prior(labels)

    def n_parameters(self) -> int | None:
        return int(self.lr_.coef_.size + self.lr_.intercept_.size)

    def _meta_extra(self) -> dict:
        return {"converged": getattr(self, "converged_", None)}

    def _arrays(self) -> dict[str, np.ndarray]:
        return {"coef": self.lr_.coef_, "intercept": self.lr_.intercept_}

    def _array_shapes(self, n_classes: int, n_features: int) -> dict[str, tuple]:
        rows = 1 if n_classes == 2 else n_classes  # one row of weights for two classes
        return {"coef": (rows, n_features), "intercept": (rows,)}

    def _restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        lr = self._lr()
        lr.coef_, lr.intercept_ = arrays["coef"], arrays["intercept"]
        lr.classes_ = self.classes_
        lr.n_features_in_ = lr.coef_.shape[1]
        self.lr_ = lr
        self.converged_ = meta.get("converged")
