"""The contract every model follows, so one evaluation path serves all of them.

Shaped after scikit-learn's estimator contract: ``__init__`` only stores hyperparameters (one
params object from :mod:`nlpgd.params`); learned state ends in ``_`` and is set by ``fit``;
``fit`` returns ``self``; ``predict`` is ``classes_[argmax(predict_proba)]``.

Scores: ``predict_log_odds`` gives ``log P(classes_[1] | x) - log P(classes_[0] | x)`` without
ever passing through a probability (a P(spam) of exactly 1.0 is reached at log-odds 37 and
ties everything above); every metric, temperature, prior correction and threshold is computed
from it. The class prior those outputs assume is recorded at fit (``fitted_prior_``, saved in
``nlpgd_model.json`` as ``output_prior``): the training share by default, uniform for a model
that weights or samples the classes to balance, a configured prior where there is one; None
when it cannot be known. ``set_prior`` (models that can take one) replaces it: the replaced
prior is fitted state (``replaced_prior_``), saved as such and never written into ``params``.

Labels are class *names* (``"ham"``, ``"spam"``). ``classes_`` is sorted, so for spam
detection column 1 of ``predict_proba`` is the spam probability.

A model arm subclasses :class:`Classifier`, names its params class and declares what it can
do in :class:`Capabilities` (the way scikit-learn declares estimator tags); callers read
the capabilities, never a type name. It implements ``_fit``, ``_predict_proba``, ``_save`` and
``_load``; the base does the rest: input checks, the fitted-state guard, the training-data
hash and the model folder's self-description ``nlpgd_model.json``.
"""

from __future__ import annotations

import hashlib
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Sequence

import numpy as np

from nlpgd.errors import NlpgdError
from nlpgd.io import ensure_dir, read_json, write_json
from nlpgd.model_card import write_card
from nlpgd.params import ModelParams, validate_prior
from nlpgd.safe_load import load_errors

MODEL_META = "nlpgd_model.json"  # written by save() in every model folder
MODEL_FORMAT = 2  # 1: before the format, seed and training-data hash were recorded


@dataclass(frozen=True)
class Capabilities:
    """What a model type can do beyond classifying."""

    generative: bool = False  # models P(x | y): log_likelihood, predict_log_joint
    prior_replaceable: bool = False  # set_prior replaces P(y) at predict time (label shift)
    can_generate: bool = False  # generate(label, n) samples text
    token_scores: bool = False  # token_log_likelihoods(text, label): log P per token
    # predict_log_joint(texts, prefix=True): a text scored as the beginning of a message (no
    # end-of-message term), for messages cut short; a type without it has no such term
    prefix_scores: bool = False
    autoregressive: bool = False  # samples token by token: prompts, top_k, top_p, max_new_tokens
    data_parallel: bool = False  # fit trains across the processes of a torchrun / accelerate launch (DDP)
    launchable: bool = True  # can be part of a torchrun / accelerate launch at all (False: it fits other
    # models inside its own fit, on one process, which a launch cannot do: a stack)
    epoch_trained: bool = False  # fit runs epochs of minibatch updates (a tiny training set is repeated)
    seed_free: bool = False  # the fit is a function of its data alone: another seed gives the same model


CAPABILITIES = tuple(Capabilities.__dataclass_fields__)

#: the automatic matched pairs a model can belong to (:attr:`Classifier.pair_kind`): the same
#: count features; neural networks trained from scratch; neural networks from a pretrained checkpoint
PAIR_KINDS = {
    "linear": "count features",
    "scratch": "neural, from scratch",
    "pretrained": "neural, pretrained",
}
FAMILIES = ("generative", "discriminative", "hybrid")


@dataclass
class FitContext:
    """What ``compare`` hands a model besides its training data.

    ``validation`` is the experiment's validation split (early stopping, choosing the epoch);
    ``work_dir`` is where a model may keep checkpoints so that ``resume`` can continue an
    interrupted fit; ``seed`` is the run's seed; ``name`` labels log lines (``gpt2/seed0``).
    ``report_to`` is where a Trainer-trained model also sends its logs (``none``,
    ``tensorboard``, ``wandb``), and ``log_dir`` where TensorBoard event files go (the model's
    folder in a run).
    """

    seed: int = 0
    validation: tuple[list[str], list[str]] | None = None
    work_dir: Path | None = None
    resume: bool = False
    progress: bool = True
    name: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    report_to: str = "none"
    log_dir: Path | None = None


def data_hash(texts: Sequence[str], labels: Sequence[str]) -> str:
    """A short SHA-256 of the training texts and labels, in order."""
    return hashlib.sha256(json.dumps([list(texts), list(labels)]).encode()).hexdigest()[:16]


class Classifier(ABC):
    """A text classifier with the shared contract."""

    params_class: ClassVar[type[ModelParams]]
    capabilities: ClassVar[Capabilities] = Capabilities()
    type_name: ClassVar[str]  # set from params_class: the params' ``type`` literal

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "params_class" in cls.__dict__:
            cls.type_name = cls.params_class.type_name()

    progress: bool = True  # progress bars while fitting, scoring or sampling (the CLI turns them off a terminal)
    #: while it scores a stream (nlpgd/scoring.py's ``freed_memory_kept``), the C heap keeps the
    #: blocks it frees for the next batch up to this many bytes, and maps larger ones afresh;
    #: None: every block is kept. A limit is for batches whose tensors change size from batch to
    #: batch (a fixed count of messages padded to the longest), whose kept blocks of every size
    #: would fragment the heap over millions of messages; the LMs' batches hold a steady logits
    #: budget and keep everything.
    scoring_block_limit: ClassVar[int | None] = None

    def __init__(self, params: ModelParams | None = None):
        self.params = params if params is not None else self.params_class()

    # -- what this model can do --------------------------------------------------------
    def can(self, capability: str) -> bool:
        """Whether this model, as configured, has ``capability`` (a :class:`Capabilities`
        field). A type may narrow its class-level capabilities per configuration."""
        return bool(getattr(self.capabilities, capability))

    @property
    def family(self) -> str:
        """``generative`` (trained on P(x, y)), ``discriminative`` (trained on P(y | x) alone) or
        ``hybrid`` (both): what the model, as configured, was trained to model. This is the one
        definition the claims pairing, the reports and ``costs.json`` read."""
        return "generative" if self.can("generative") else "discriminative"

    @property
    def pair_kind(self) -> str | None:
        """Which automatic matched pair (a :data:`PAIR_KINDS` key) this model, as configured,
        belongs to; None: none (a hybrid, an ensemble)."""
        return None

    def objective_free_settings(self) -> dict | None:
        """Every setting but those that choose the training objective (the params class's
        ``objective_settings``), for a type trained along the generative-discriminative
        continuum: two models of one type with equal settings here differ in the objective
        alone (the continuum pair). None: the type has no such continuum."""
        chosen = type(self.params).objective_settings
        return self.params.model_dump(mode="json", exclude=set(chosen)) if chosen else None

    def checkpoints_kept(self) -> int:
        """Training checkpoints a fit keeps in its work folder besides the saved model (disk space)."""
        return 0

    def combines(self) -> list[str]:
        """The config entries this model combines (an ensemble's members); empty for one model."""
        return []

    def input_settings(self) -> dict:
        """The settings that decide what the model sees of a message (features, tokenizer)."""
        return {}

    def training_data_settings(self) -> dict:
        """Settings that change which messages the fit trains on (the params class's
        ``data_settings``, e.g. a per-class cap); one a model does not have counts as unset."""
        return self.params.model_dump(include=set(type(self.params).data_settings))

    def training_summary(self) -> dict[str, str]:
        """How this model is trained, row by row for the claims page's "what differs" table:
        ``epochs``, ``schedule``, ``oversampling``, ``init``, ``selection rule`` and
        ``tuning budget`` (settings chosen on validation), where they apply."""
        return {
            "epochs": "n/a (closed form or run to convergence)",
            "selection rule": "none: the fit is final",
            "tuning budget": "none: fixed settings",
        }

    # -- learning ---------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[str], ctx: FitContext | None = None):
        """Learn from ``texts`` and their class names; set ``classes_``; return ``self``.
        A failed fit leaves the model unfitted."""
        ctx = ctx or FitContext()
        texts, labels = [str(t) for t in texts], [str(y) for y in labels]
        if len(texts) != len(labels):
            raise NlpgdError(f"got {len(texts)} texts but {len(labels)} labels")
        self.__dict__.pop("classes_", None)
        self.classes_ = check_labels(labels)
        self.fit_info_ = {"seed": ctx.seed, "train_data_sha256": data_hash(texts, labels), "n_train": len(texts)}
        self.progress = ctx.progress
        self.__dict__.pop("replaced_prior_", None)
        try:
            self._fit(texts, labels, ctx)
            self.fitted_prior_ = self._fitted_prior(labels)
        except BaseException:
            self.__dict__.pop("classes_", None)
            raise
        return self

    def _fitted_prior(self, labels: list[str]) -> dict[str, float] | None:
        """The class prior the fitted model's outputs assume (None: unknown). By default the
        training share of each class; a type that weights, samples or sets its classes
        otherwise says so here."""
        return {str(c): labels.count(str(c)) / len(labels) for c in self.classes_}

    # -- the class prior the outputs assume ---------------------------------------------
    def output_prior(self) -> dict[str, float] | None:
        """``{class: P(class)}`` the model's outputs are made under now: the prior ``set_prior``
        replaced, else the one recorded at fit; None when it is unknown (a model saved before
        nlpgd recorded it)."""
        self._check_fitted()
        return getattr(self, "replaced_prior_", None) or getattr(self, "fitted_prior_", None)

    def set_prior(self, prior: dict[str, float] | None) -> "Classifier":
        """Replace ``P(y)`` used by predict (label shift); None restores the fitted prior. The
        replaced prior is fitted state (``replaced_prior_``): saved with the model, never
        written into ``params``."""
        self._check_fitted()
        if not self.can("prior_replaceable"):
            raise NlpgdError(f"a {self.type_name} model, as configured, has no class prior to replace")
        if prior is None:
            self.__dict__.pop("replaced_prior_", None)
            return self
        prior = {str(k): float(v) for k, v in dict(prior).items()}
        check_prior(prior, self.classes_)
        self.replaced_prior_ = {str(c): prior[str(c)] for c in self.classes_}
        return self

    def log_output_prior(self) -> np.ndarray:
        """``log`` of :meth:`output_prior` in ``classes_`` order (an error when it is unknown)."""
        prior = self.output_prior()
        if prior is None:
            raise NlpgdError(f"the class prior a {self.type_name} model's outputs assume is not recorded")
        return check_prior(prior, self.classes_)

    @abstractmethod
    def _fit(self, texts: list[str], labels: list[str], ctx: FitContext) -> None:
        """Learn the model's state (``classes_`` and ``fit_info_`` are already set)."""

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        """(n, n_classes) float array, rows sum to 1, columns in ``classes_`` order."""
        self._check_fitted()
        return self._predict_proba([str(t) for t in texts])

    @abstractmethod
    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        """``predict_proba`` of a fitted model on a list of strings."""

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        proba = self.predict_proba(texts)
        return self.classes_[np.argmax(proba, axis=1)]

    def predict_log_odds(self, texts: Sequence[str]) -> np.ndarray:
        """``log P(classes_[1] | x) - log P(classes_[0] | x)`` per text, float64, never through
        a saturated probability (two classes)."""
        self._check_fitted()
        if len(self.classes_) != 2:
            raise NlpgdError(f"log-odds need two classes; the model knows {len(self.classes_)}")
        return np.asarray(self._predict_log_odds([str(t) for t in texts]), dtype=np.float64)

    def _predict_log_odds(self, texts: list[str]) -> np.ndarray:
        """By default from the joint log-probabilities of a generative model, else from the
        log of ``predict_proba`` (a type with logits or a decision function overrides this:
        the log of a saturated probability is infinite)."""
        if self.can("generative"):
            joint = self.predict_log_joint(texts)
            return joint[:, 1] - joint[:, 0]
        with np.errstate(divide="ignore"):
            logp = np.log(self._predict_proba(texts))
        return logp[:, 1] - logp[:, 0]

    def n_parameters(self) -> int | None:
        """Number of learned parameters (None when not meaningful)."""
        return None

    def stack_scores(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Named per-text scores a stacked ensemble (``nlpgd.models.stack``) combines. By default
        the log-odds of ``classes_[1]`` over ``classes_[0]``: from the joint log-probabilities
        when the model is generative (no underflow however sure it is), else from
        its decision function or logits (:meth:`predict_log_odds`)."""
        return {"log_odds": self.predict_log_odds(texts)}

    # -- persistence ------------------------------------------------------------------
    def save(self, path: Path) -> None:
        """Write everything needed to rebuild the fitted model into folder ``path``; the
        self-description is written last, so a folder without it is incomplete. No pickle."""
        self._check_fitted()
        path = ensure_dir(Path(path))
        self._save(path)
        meta = {
            "format": MODEL_FORMAT,
            "type": self.type_name,
            "family": self.family,
            "classes": [str(c) for c in self.classes_],
            "params": self.params.model_dump(mode="json"),
            **getattr(self, "fit_info_", {}),
            "output_prior": getattr(self, "fitted_prior_", None),
            "replaced_prior": getattr(self, "replaced_prior_", None),
            "n_parameters": self.n_parameters(),
            **self._meta_extra(),
        }
        write_card(path, meta)  # the model card; scored runs rewrite it with data and metrics
        write_json(path / MODEL_META, meta)

    @abstractmethod
    def _save(self, path: Path) -> None:
        """Write the learned state into the existing folder ``path``."""

    def _meta_extra(self) -> dict[str, Any]:
        """Extra facts for ``nlpgd_model.json`` (training loss, truncations, ...)."""
        return {}

    @classmethod
    def load(cls, path: Path) -> "Classifier":
        """Rebuild a fitted model from a folder written by :meth:`save`; a damaged, crafted or
        foreign folder is one sentence naming the file."""
        path = Path(path)
        meta = read_model_meta(path)
        if meta["type"] != cls.type_name:
            raise NlpgdError(f"{path} holds a '{meta['type']}' model, not '{cls.type_name}'")
        with load_errors(path / MODEL_META, "the model description"):
            self = cls(cls.params_class.model_validate(meta["params"]))
            self.classes_ = np.array([str(c) for c in meta["classes"]])
            self.fit_info_ = {k: meta.get(k) for k in ("seed", "train_data_sha256", "n_train")}
            for key, attr in (("output_prior", "fitted_prior_"), ("replaced_prior", "replaced_prior_")):
                if meta.get(key) is not None:
                    prior = {str(k): float(v) for k, v in dict(meta[key]).items()}
                    try:
                        check_prior(prior, self.classes_)
                    except NlpgdError as exc:
                        raise NlpgdError(f"{path / MODEL_META}, '{key}': {exc}") from None
                    setattr(self, attr, prior)
        self._load(path, meta)
        return self

    @abstractmethod
    def _load(self, path: Path, meta: dict) -> None:
        """Read the learned state written by :meth:`_save` (params and classes are set)."""

    # -- helpers ----------------------------------------------------------------------
    def log_name(self) -> str:
        """How log lines name this model: the fit's name (``distilbert/seed0``) or its type."""
        return getattr(self, "name_", "") or self.type_name

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            raise NlpgdError(f"{type(self).__name__} is not fitted yet: call fit() first")

    def _class_index(self, label: str) -> int:
        self._check_fitted()
        matches = np.flatnonzero(self.classes_ == str(label))
        if not len(matches):
            raise NlpgdError(f"unknown label '{label}'; the model knows {', '.join(self.classes_)}")
        return int(matches[0])


def read_model_meta(path: Path) -> dict:
    """A model folder's ``nlpgd_model.json``, checked for its format and type."""
    path = Path(path)
    if not (path / MODEL_META).is_file():
        raise NlpgdError(f"{path} is not a saved nlpgd model folder (no {MODEL_META})")
    meta = read_json(path / MODEL_META, "model description")
    if not isinstance(meta, dict) or not isinstance(meta.get("type"), str):
        raise NlpgdError(f"model description {path / MODEL_META} does not name a model type")
    fmt = meta.get("format", 1)
    if not isinstance(fmt, int) or fmt > MODEL_FORMAT:
        raise NlpgdError(
            f"{path / MODEL_META} has format {fmt!r}; this nlpgd reads formats up to {MODEL_FORMAT} (upgrade nlpgd)"
        )
    for key in ("classes", "params"):
        if key not in meta:
            raise NlpgdError(f"model description {path / MODEL_META} has no '{key}'")
    return meta


def check_labels(labels: Sequence[str]) -> np.ndarray:
    """Sorted class names seen in ``labels``; error unless there are at least two."""
    classes = np.array(sorted({str(x) for x in labels}))
    if len(classes) < 2:
        raise NlpgdError(
            f"training data has only one class ({', '.join(classes) or 'none'}); "
            "a classifier needs examples of at least two"
        )
    return classes


def check_prior(prior: dict[str, float], classes: Sequence[str]) -> np.ndarray:
    """``log P(y)`` in ``classes`` order from a ``{class: probability}`` mapping, or one
    :class:`NlpgdError` sentence naming what is wrong (unknown or missing class, a value
    outside [0, 1], a sum other than 1)."""
    classes = [str(c) for c in classes]
    unknown = [k for k in prior if k not in classes]
    if unknown:
        raise NlpgdError(f"prior names unknown class '{unknown[0]}'; the model knows {', '.join(classes)}")
    missing = [c for c in classes if c not in prior]
    if missing:
        raise NlpgdError(f"prior gives no probability for class '{missing[0]}'")
    try:
        prior = validate_prior(prior)
    except ValueError as exc:
        raise NlpgdError(str(exc)) from None
    with np.errstate(divide="ignore"):
        return np.log(np.array([prior[c] for c in classes], dtype=np.float64))


def apply_prior(models: dict, prior: dict[str, float] | None) -> list[str]:
    """Give every model of ``{key: model}`` whose prior is replaceable ``prior``; returns the
    keys of those that have none (``P(y|x)`` models, complement naive Bayes)."""
    if prior is None:
        return []
    skipped = []
    for key, model in models.items():
        if model.can("prior_replaceable"):
            model.set_prior(prior)
        else:
            skipped.append(key)
    return skipped


class ScoredClassifier(Classifier):
    """A classifier whose ``P(y | x)`` is the row-wise softmax of per-class scores (logits, or
    ``log P(x, y)`` up to a constant): its probabilities and its log-odds both come from
    :meth:`_class_scores`, the log-odds as a difference of scores (finite however sure it is)."""

    @abstractmethod
    def _class_scores(self, texts: list[str]) -> np.ndarray:
        """(n, n_classes) float scores, columns in ``classes_`` order."""

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax_rows(self._class_scores(texts))

    def _predict_log_odds(self, texts: list[str]) -> np.ndarray:
        scores = self._class_scores(texts)
        return scores[:, 1] - scores[:, 0]


def softmax_rows(scores: np.ndarray) -> np.ndarray:
    """Numerically stable row-wise softmax in float64, returned as float64."""
    scores = np.asarray(scores, dtype=np.float64)
    scores = scores - scores.max(axis=1, keepdims=True)
    e = np.exp(scores)
    return e / e.sum(axis=1, keepdims=True)
