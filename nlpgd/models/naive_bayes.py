"""Naive Bayes: the generative classic, ``argmax_y log P(y) + sum_w n_w log P(w | y)``.

scikit-learn's ``MultinomialNB`` / ``ComplementNB`` over ``CountVectorizer`` word or
character n-grams. Saved without pickle: the vocabulary and hyperparameters as JSON, the
learned arrays as ``.npy`` (loaded with ``allow_pickle=False``), so loading a model folder
cannot execute code.

Multinomial NB is also a :class:`~nlpgd.models.base.Generator`: ``log_likelihood`` is the
multinomial log-probability of a text's n-gram counts (without the multinomial coefficient,
which is the same for every class), and ``generate`` samples a bag of words from
``P(w | y)`` with a length drawn from the class's training lengths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.naive_bayes import ComplementNB, MultinomialNB

from nlpgd.errors import NlpgdError, first_line
from nlpgd.models.base import Classifier, FitContext, check_labels, check_prior
from nlpgd.models.naive_bayes_params import NaiveBayesParams
from nlpgd.io import read_json
from nlpgd.safe_load import load_errors

_ARRAYS = ("feature_count_", "class_count_", "feature_log_prob_", "class_log_prior_")


class NaiveBayesClassifier(Classifier):
    type_name = "naive_bayes"
    family = "generative"

    def __init__(self, params: NaiveBayesParams | None = None):
        super().__init__(params or NaiveBayesParams())

    def _vectorizer(self, vocabulary: dict | None = None) -> CountVectorizer:
        p = self.params
        return CountVectorizer(
            analyzer=p.analyzer,
            ngram_range=tuple(p.ngram_range),
            lowercase=p.lowercase,
            min_df=p.min_df,
            max_features=p.max_features,
            binary=p.binary,
            vocabulary=vocabulary,
            # keep 1-letter tokens: 'u', 'r', '2' matter in SMS (only used by the word analyzer)
            token_pattern=r"(?u)\b\w+\b" if p.analyzer == "word" else None,
        )

    def _nb(self):
        p = self.params
        cls = MultinomialNB if p.variant == "multinomial" else ComplementNB
        return cls(alpha=p.alpha, fit_prior=p.fit_prior)

    def fit(self, texts: Sequence[str], labels: Sequence[str], ctx: FitContext | None = None):
        texts, labels = list(texts), [str(y) for y in labels]
        if len(texts) != len(labels):
            raise NlpgdError(f"{len(texts)} texts but {len(labels)} labels")
        self.classes_ = check_labels(labels)
        self.vectorizer_ = self._vectorizer()
        try:
            X = self.vectorizer_.fit_transform(texts)
        except ValueError as exc:  # empty vocabulary
            raise NlpgdError(f"naive Bayes could not build a vocabulary: {exc}") from None
        self.nb_ = self._nb().fit(X, labels)
        lengths = np.asarray(X.sum(axis=1)).ravel()
        y = np.asarray(labels)
        self.mean_length_ = np.array([lengths[y == c].mean() for c in self.classes_])
        return self

    def set_prior(self, prior: dict[str, float] | None) -> "NaiveBayesClassifier":
        """Replace ``P(y)`` used by predict (label shift); None restores the training prior.
        Not saved: a reloaded model has its training prior again."""
        self._check_fitted()
        if prior is not None and self.params.variant != "multinomial":
            raise NlpgdError("complement naive Bayes does not use a class prior; only variant: multinomial can take one")
        if not hasattr(self, "train_log_prior_"):
            self.train_log_prior_ = self.nb_.class_log_prior_.copy()
        self.nb_.class_log_prior_ = (
            self.train_log_prior_.copy() if prior is None else check_prior(prior, self.classes_)
        )
        return self

    def _X(self, texts: Sequence[str]):
        self._check_fitted()
        return self.vectorizer_.transform(list(texts))

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return self.nb_.predict_proba(self._X(texts))

    def predict_log_joint(self, texts: Sequence[str]) -> np.ndarray:
        """Unnormalised ``log P(x, y)`` per class (columns in ``classes_`` order)."""
        return self.nb_.predict_joint_log_proba(self._X(texts))

    # -- generator --------------------------------------------------------------------
    def _class_index(self, label: str) -> int:
        self._check_fitted()
        matches = np.flatnonzero(self.classes_ == label)
        if not len(matches):
            raise NlpgdError(f"unknown label '{label}'; the model knows {', '.join(self.classes_)}")
        return int(matches[0])

    def log_likelihood(self, texts: Sequence[str], label: str) -> np.ndarray:
        if self.params.variant != "multinomial":
            raise NlpgdError("log_likelihood needs variant: multinomial (ComplementNB is not a generative model)")
        k = self._class_index(label)
        return np.asarray(self._X(texts) @ self.nb_.feature_log_prob_[k]).ravel()

    def generate(self, label: str, n: int, *, seed: int = 0, **sampling) -> list[str]:
        if n <= 0:
            raise NlpgdError(f"number of samples must be positive, got {n}")
        if self.params.variant != "multinomial" or self.params.analyzer != "word":
            raise NlpgdError("naive Bayes can only generate with variant: multinomial and analyzer: word")
        k = self._class_index(label)
        rng = np.random.default_rng(seed)
        vocab = np.empty(len(self.vectorizer_.vocabulary_), dtype=object)
        for w, i in self.vectorizer_.vocabulary_.items():
            vocab[i] = w
        logp = self.nb_.feature_log_prob_[k] / float(sampling.get("temperature", 1.0))
        p = np.exp(logp - logp.max())
        p /= p.sum()
        out = []
        for _ in range(n):
            length = max(1, rng.poisson(self.mean_length_[k]))
            out.append(" ".join(vocab[rng.choice(len(p), size=length, p=p)]))
        return out

    # -- persistence ------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        return int(self.nb_.feature_log_prob_.size + self.nb_.class_log_prior_.size)

    def save(self, path: Path) -> None:
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        vocab = {k: int(v) for k, v in self.vectorizer_.vocabulary_.items()}
        (path / "vocabulary.json").write_text(json.dumps(vocab, ensure_ascii=False))
        for name in _ARRAYS:
            np.save(path / f"{name.rstrip('_')}.npy", getattr(self.nb_, name), allow_pickle=False)
        np.save(path / "mean_length.npy", self.mean_length_, allow_pickle=False)
        self._write_meta(path)

    @classmethod
    def load(cls, path: Path) -> "NaiveBayesClassifier":
        path = Path(path)
        meta = read_json(path / "nlpgd_model.json", "model description")
        with load_errors(path / "nlpgd_model.json", "the model description"):
            self = cls(NaiveBayesParams.model_validate(meta["params"]))
            self.classes_ = np.array([str(c) for c in meta["classes"]])
        vocab = read_json(path / "vocabulary.json", "vocabulary")
        if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
            raise NlpgdError(f"vocabulary {path / 'vocabulary.json'} is not a mapping of words to column numbers")
        self.vectorizer_ = self._vectorizer(vocabulary=vocab)
        self.vectorizer_.vocabulary_ = vocab
        self.vectorizer_.fixed_vocabulary_ = True
        nb = self._nb()
        for name in _ARRAYS:
            setattr(nb, name, _load_array(path / f"{name.rstrip('_')}.npy"))
        nb.classes_ = self.classes_
        nb.n_features_in_ = nb.feature_count_.shape[1]
        if nb.feature_log_prob_.shape != (len(self.classes_), len(vocab)):
            raise NlpgdError(
                f"{path / 'feature_log_prob.npy'} has shape {nb.feature_log_prob_.shape}, "
                f"not ({len(self.classes_)} classes, {len(vocab)} words of vocabulary.json)"
            )
        self.nb_ = nb
        self.mean_length_ = _load_array(path / "mean_length.npy")
        return self


def _load_array(path: Path) -> np.ndarray:
    """A ``.npy`` array without pickle, or one sentence naming the file."""
    if not path.is_file():
        raise NlpgdError(f"array file {path} is missing")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise NlpgdError(f"array file {path} holds Python objects (a pickle), which nlpgd never loads") from None
        raise NlpgdError(f"array file {path} is truncated or damaged ({first_line(exc)})") from None
    except (OSError, EOFError) as exc:
        raise NlpgdError(f"array file {path} is truncated or damaged ({first_line(exc)})") from None
