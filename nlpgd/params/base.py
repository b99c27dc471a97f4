"""Shared pieces of every model's hyperparameter schema (pydantic only: no torch, no sklearn).

A model's params class is the first half of a model arm: it names the type (the ``type``
literal is the only place the name is written), validates every setting, and carries the
tiny settings the contract test and the smoke configs use (``smoke``).
"""

from __future__ import annotations

import math
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class ModelParams(BaseModel):
    """Base for every model's hyperparameters: unknown keys are errors."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())

    #: tiny, fast settings for the contract test and configs/smoke (seconds on 2 cores)
    smoke: ClassVar[dict[str, Any]] = {}
    #: settings that choose the training objective along a generative-discriminative continuum
    #: (a type with none has no continuum pair)
    objective_settings: ClassVar[tuple[str, ...]] = ()
    #: settings that change which training messages a fit uses (a pair must agree on them)
    data_settings: ClassVar[tuple[str, ...]] = ()

    @classmethod
    def type_name(cls) -> str:
        """The registry key: the default of the class's ``type`` literal."""
        return str(cls.model_fields["type"].default)

    def resolved(self, models: dict[str, "ModelParams"], own_name: str) -> "ModelParams":
        """These settings with the config entries they name filled in (a stack's members);
        a model built on no other entry returns itself."""
        return self


def validate_prior(prior: dict[str, float]) -> dict[str, float]:
    """``prior`` as ``{class: probability}`` if it is a distribution, else ``ValueError``
    naming the problem (no class, a value outside [0, 1] or not finite, a sum other than 1).
    Which classes a model knows is checked by the model (``models.base.check_prior``)."""
    if not prior:
        raise ValueError("prior must name at least one class")
    for k, v in prior.items():
        v = float(v)
        if not math.isfinite(v) or not 0.0 <= v <= 1.0:
            raise ValueError(f"prior probability of class '{k}' must lie in [0, 1], got {v}")
    total = float(sum(float(v) for v in prior.values()))
    if abs(total - 1.0) > 1e-6:
        raise ValueError(f"prior must sum to 1 (tolerance 1e-6), got {total:.6g}")
    return {str(k): float(v) for k, v in prior.items()}


class CountFeatureParams(ModelParams):
    """Bag-of-n-grams features (scikit-learn ``CountVectorizer``), shared by naive Bayes and
    logistic regression so that the two halves of the Ng & Jordan pair see identical inputs."""

    analyzer: Literal["word", "char", "char_wb"] = "word"
    ngram_range: tuple[int, int] = (1, 1)
    lowercase: bool = True
    min_df: int = Field(1, ge=1)
    max_features: int | None = Field(None, gt=0)
    binary: bool = False

    @model_validator(mode="after")
    def _ngrams(self):
        lo, hi = self.ngram_range
        if lo < 1 or hi < lo:
            raise ValueError(f"ngram_range must be (min, max) with 1 <= min <= max, got {self.ngram_range}")
        return self


class TrainerParams(ModelParams):
    """The subset of ``transformers.TrainingArguments`` every Trainer-trained arm exposes,
    with the same names and meaning in each. Model-scale settings (learning rate, epochs,
    batch size, warm-up, schedule, sequence length) have per-arm defaults, set where a
    pretrained encoder and a language model trained from scratch need different values;
    the training-procedure settings (validation, early stopping, checkpoints) share theirs."""

    learning_rate: float | None = Field(None, gt=0, description="peak learning rate; None: the arm's default")
    lr_scheduler: Literal["linear", "cosine", "constant_with_warmup"] = "linear"
    epochs: float = Field(2.0, gt=0)
    batch_size: int = Field(8, gt=0, description="per device (per process under DDP)")
    eval_batch_size: int = Field(64, gt=0, description="per device, for validation and scoring")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="linear warm-up, fraction of the training steps")
    weight_decay: float = Field(0.01, ge=0)
    max_length: int = Field(128, gt=8, description="tokens per text; longer texts are truncated")
    early_stopping_patience: int | None = Field(
        None,
        ge=1,
        description="with a validation split: stop after this many epochs without improvement "
        "(None: train every epoch); either way the best validation epoch is the one kept",
    )
    keep_checkpoints: int = Field(
        1, ge=1, description="epoch checkpoints kept in the work folder besides the best one (for --resume)"
    )

    #: settings a resumed fit may change (they do not change what training computes)
    resume_free: ClassVar[frozenset[str]] = frozenset({"eval_batch_size", "keep_checkpoints"})
