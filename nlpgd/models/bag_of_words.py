"""Word or character n-gram counts (scikit-learn ``CountVectorizer``), shared by naive Bayes and
logistic regression so the two halves of the generative/discriminative twin pair see the
same features. Saved as ``vocabulary.json`` plus ``.npy`` arrays, never pickle."""

from __future__ import annotations

import json
from abc import abstractmethod
from pathlib import Path
from typing import Sequence

import numpy as np
from sklearn.feature_extraction.text import CountVectorizer

from nlpgd.errors import NlpgdError, first_line
from nlpgd.io import atomic_write_text, atomic_writer, check_regular_file, read_json
from nlpgd.models.base import Capabilities, Classifier, FitContext
from nlpgd.params import CountFeatureParams

VOCABULARY = "vocabulary.json"


class CountFeatureClassifier(Classifier):
    """A classifier on count features: one of the linear pair, paired on identical features.

    The fitted vectorizer (``vectorizer_``) and the persistence live here: the vocabulary
    JSON plus one ``.npy`` file per array a subclass names in :meth:`_arrays`. A subclass
    fits its estimator on the count matrix (:meth:`_fit_counts`) and rebuilds it from the
    arrays read back at the shapes it gives (:meth:`_array_shapes`, :meth:`_restore`)."""

    params: CountFeatureParams
    capabilities = Capabilities(seed_free=True)
    what = "a count-feature model"  # named in the sentence when no vocabulary can be built

    def _fit(self, texts: list[str], labels: list[str], ctx: FitContext) -> None:
        self.vectorizer_, X = fit_counts(self.params, texts, self.what)
        self._fit_counts(X, labels)

    @abstractmethod
    def _fit_counts(self, X, labels: list[str]) -> None:
        """Fit the estimator on the training count matrix ``X``."""

    @abstractmethod
    def _arrays(self) -> dict[str, np.ndarray]:
        """The fitted arrays to save, by file stem (``coef`` -> ``coef.npy``)."""

    @abstractmethod
    def _array_shapes(self, n_classes: int, n_features: int) -> dict[str, tuple]:
        """The shape each saved array must have, by file stem, in the order they are read."""

    @abstractmethod
    def _restore(self, arrays: dict[str, np.ndarray], meta: dict) -> None:
        """Rebuild the fitted estimator from the arrays read back (``vectorizer_`` is set)."""

    def _save(self, path: Path) -> None:
        save_vocabulary(self.vectorizer_, path)
        for stem, array in self._arrays().items():
            save_array(path / f"{stem}.npy", array)

    def _load(self, path: Path, meta: dict) -> None:
        self.vectorizer_ = load_vectorizer(self.params, path)
        shapes = self._array_shapes(len(self.classes_), len(self.vectorizer_.vocabulary_))
        self._restore({stem: load_array(path / f"{stem}.npy", shape) for stem, shape in shapes.items()}, meta)

    @property
    def pair_kind(self) -> str | None:
        return "linear"

    def input_settings(self) -> dict:
        return self.params.model_dump(include=set(CountFeatureParams.model_fields))


def count_vectorizer(p: CountFeatureParams, vocabulary: dict | None = None) -> CountVectorizer:
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


def fit_counts(p: CountFeatureParams, texts: Sequence[str], what: str):
    """A fitted vectorizer and the training count matrix."""
    vectorizer = count_vectorizer(p)
    try:
        X = vectorizer.fit_transform(list(texts))
    except ValueError as exc:  # empty vocabulary
        raise NlpgdError(f"{what} could not build a vocabulary: {first_line(exc)}") from None
    return vectorizer, X


def save_vocabulary(vectorizer: CountVectorizer, path: Path) -> None:
    vocab = {k: int(v) for k, v in vectorizer.vocabulary_.items()}
    atomic_write_text(path / VOCABULARY, json.dumps(vocab, ensure_ascii=False))


def load_vectorizer(p: CountFeatureParams, path: Path) -> CountVectorizer:
    """The fitted vectorizer saved in folder ``path``, or one sentence naming the file."""
    vocab = read_json(path / VOCABULARY, "vocabulary")
    if not isinstance(vocab, dict) or not all(isinstance(v, int) for v in vocab.values()):
        raise NlpgdError(f"vocabulary {path / VOCABULARY} is not a mapping of n-grams to column numbers")
    if sorted(vocab.values()) != list(range(len(vocab))):
        raise NlpgdError(f"vocabulary {path / VOCABULARY} does not number its n-grams 0..{len(vocab) - 1}")
    vectorizer = count_vectorizer(p, vocabulary=vocab)
    vectorizer.vocabulary_ = vocab
    vectorizer.fixed_vocabulary_ = True
    return vectorizer


def save_array(path: Path, array: np.ndarray) -> None:
    with atomic_writer(path, "wb") as f:
        np.save(f, np.asarray(array), allow_pickle=False)


def load_array(path: Path, shape: tuple[int | None, ...] | None = None) -> np.ndarray:
    """A ``.npy`` array without pickle, optionally checked against ``shape`` (None: any size
    along that axis), or one sentence naming the file."""
    check_regular_file(path, "array file")
    try:
        array = np.load(path, allow_pickle=False)
    except ValueError as exc:
        if "allow_pickle" in str(exc):
            raise NlpgdError(f"array file {path} holds Python objects (a pickle), which nlpgd never loads") from None
        raise NlpgdError(f"array file {path} is truncated or damaged ({first_line(exc)})") from None
    except (OSError, EOFError) as exc:
        raise NlpgdError(f"array file {path} is truncated or damaged ({first_line(exc)})") from None
    if shape is not None and (
        array.ndim != len(shape) or any(want is not None and got != want for got, want in zip(array.shape, shape))
    ):
        want = "(" + ", ".join("any" if s is None else str(s) for s in shape) + ")"
        raise NlpgdError(f"array file {path} has shape {array.shape}, expected {want}")
    return array
