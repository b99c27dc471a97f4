"""The contract every model follows, so one evaluation path serves all of them.

Shaped after scikit-learn's estimator contract: ``__init__`` only stores hyperparameters
(one pydantic ``params`` object); learned state ends in ``_`` and is set in ``fit``; ``fit``
returns ``self``; ``predict`` is ``classes_[argmax(predict_proba)]``.

Labels are class *names* (``"ham"``, ``"spam"``). ``classes_`` is sorted, so for spam
detection column 1 of ``predict_proba`` is the spam probability.

Generative models (naive Bayes, the GPT-2 language model) also implement
:class:`Generator`: they can score ``log P(x | y)`` and sample ``x ~ P(x | y)``.
"""

from __future__ import annotations

import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Protocol, Sequence, runtime_checkable

import numpy as np

from nlpgd.errors import NlpgdError

MODEL_META = "nlpgd_model.json"  # written by save() in every model folder


@dataclass
class FitContext:
    """What ``compare`` hands a model besides its training data.

    ``validation`` is the experiment's validation split (for early stopping / model
    selection); ``work_dir`` is where a model may keep checkpoints so that ``resume`` can
    continue an interrupted fit; ``seed`` is the run's seed (models seed themselves from it).
    """

    seed: int = 0
    validation: tuple[list[str], list[str]] | None = None
    work_dir: Path | None = None
    resume: bool = False
    progress: bool = True
    extra: dict[str, Any] = field(default_factory=dict)


class Classifier(ABC):
    """A text classifier with the shared contract."""

    type_name: ClassVar[str]  # registry key, e.g. "naive_bayes"
    family: ClassVar[str]  # "generative" or "discriminative"

    def __init__(self, params: Any):
        self.params = params

    # -- learning ---------------------------------------------------------------------
    @abstractmethod
    def fit(self, texts: Sequence[str], labels: Sequence[str], ctx: FitContext | None = None):
        """Learn from ``texts`` and their class names; set ``classes_``; return ``self``."""

    @abstractmethod
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_classes) float array, rows sum to 1, columns in ``classes_`` order."""

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        proba = self.predict_proba(texts)
        return self.classes_[np.argmax(proba, axis=1)]

    # -- persistence ------------------------------------------------------------------
    @abstractmethod
    def save(self, path: Path) -> None:
        """Write everything needed to rebuild the fitted model into folder ``path``.

        Implementations call :meth:`_write_meta` so the folder describes itself. No pickle.
        """

    @classmethod
    @abstractmethod
    def load(cls, path: Path) -> "Classifier":
        """Rebuild a fitted model from a folder written by :meth:`save`."""

    # -- costs (reported by compare) ---------------------------------------------------
    def n_parameters(self) -> int | None:
        """Number of learned parameters (None when not meaningful)."""
        return None

    # -- helpers ----------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NlpgdError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _write_meta(self, path: Path, **extra: Any) -> None:
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        meta = {
            "type": self.type_name,
            "family": self.family,
            "classes": [str(c) for c in self.classes_],
            "params": self.params.model_dump(mode="json"),
            **extra,
        }
        (path / MODEL_META).write_text(json.dumps(meta, indent=2))


@runtime_checkable
class Generator(Protocol):
    """A class-conditional generative model: scores and samples text given a label."""

    classes_: np.ndarray

    def generate(self, label: str, n: int, *, seed: int = 0, **sampling: Any) -> list[str]: ...

    def log_likelihood(self, texts: Sequence[str], label: str) -> np.ndarray:
        """``log P(text | label)`` for each text (natural log, one float per text)."""
        ...


def check_labels(labels: Sequence[str]) -> np.ndarray:
    """Sorted class names seen in ``labels``; error unless there are at least two."""
    classes = np.array(sorted({str(x) for x in labels}))
    if len(classes) < 2:
        raise NlpgdError(
            f"training data has only one class ({', '.join(classes) or 'none'}); "
            "a classifier needs examples of at least two"
        )
    return classes


def training_inputs(
    texts: Sequence[str], labels: Sequence[str], max_train_samples: int | None = None, seed: int = 0
) -> tuple[list[str], list[str], np.ndarray]:
    """``(texts, labels, classes)`` as strings, checked to be the same length and to hold at
    least two classes; with ``max_train_samples`` a seeded random subset in original order."""
    texts, labels = [str(t) for t in texts], [str(y) for y in labels]
    if len(texts) != len(labels):
        raise NlpgdError(f"got {len(texts)} texts but {len(labels)} labels")
    if max_train_samples is not None and max_train_samples < len(texts):
        keep = np.sort(np.random.default_rng(seed).permutation(len(texts))[:max_train_samples])
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    return texts, labels, check_labels(labels)


def check_prior(prior: dict[str, float], classes: Sequence[str]) -> np.ndarray:
    """``log P(y)`` in ``classes`` order from a ``{class: probability}`` mapping, or one
    :class:`NlpgdError` sentence naming what is wrong (unknown class, missing class,
    a value outside [0, 1], a sum other than 1)."""
    classes = [str(c) for c in classes]
    unknown = [k for k in prior if k not in classes]
    if unknown:
        raise NlpgdError(f"prior names unknown class '{unknown[0]}'; the model knows {', '.join(classes)}")
    missing = [c for c in classes if c not in prior]
    if missing:
        raise NlpgdError(f"prior gives no probability for class '{missing[0]}'")
    for k, v in prior.items():
        if not 0.0 <= float(v) <= 1.0:
            raise NlpgdError(f"prior probability of class '{k}' must lie in [0, 1], got {v}")
    total = float(sum(prior.values()))
    if abs(total - 1.0) > 1e-6:
        raise NlpgdError(f"prior must sum to 1 (tolerance 1e-6), got {total:.6g}")
    with np.errstate(divide="ignore"):
        return np.log(np.array([float(prior[c]) for c in classes], dtype=np.float64))


def apply_prior(models: dict, prior: dict[str, float] | None) -> list[str]:
    """Give every model of ``{key: model}`` that has a class prior (the generative ones)
    ``prior``; returns the keys of those that have none (``P(y|x)`` models, complement NB)."""
    if prior is None:
        return []
    skipped = []
    for key, model in models.items():
        if hasattr(model, "set_prior") and getattr(model.params, "variant", "multinomial") == "multinomial":
            model.set_prior(prior)
        else:
            skipped.append(key)
    return skipped


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Numerically stable row-wise softmax in float64, returned as float64."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)
