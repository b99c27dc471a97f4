"""The claims experiments' grid: the optional `experiment:` section of a config.

One grid class per experiment (its defaults are the experiment's defaults); ``ExperimentGrid``
holds the shared settings and one field per experiment of :data:`nlpgd.claims_registry.EXPERIMENTS`
(named by its key, typed by the grid class the registry names). Re-exported by :mod:`nlpgd.config`.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, create_model, field_validator

from nlpgd import sampling
from nlpgd.claims_registry import EXPERIMENT_NAMES, EXPERIMENTS
from nlpgd.config_data import DataConfig, Strict

OBFUSCATION_KINDS = ("swap", "insert", "leet", "homoglyph")
# metrics a verdict can rest on: threshold-free, then at 0.5, then at the validation-chosen threshold
CURVE_METRICS = Literal["roc_auc", "pr_auc", "log_loss", "f1", "mcc", "f1_val", "mcc_val"]
Size = int | Literal["full"]


def _check_sizes(sizes: list, what: str) -> list:
    for v in sizes:
        if v != "full" and v < 2:
            raise ValueError(f"{what} {v} is out of range: a training set needs at least 2 messages, or 'full'")
    if len(set(map(str, sizes))) != len(sizes):
        raise ValueError(f"{what}s repeat a value: {sizes}")
    return sorted(sizes, key=lambda v: float("inf") if v == "full" else v)


def _check_rates(values: list[float], lo: float, hi: float, what: str, hi_open: bool = True, lo_open=False) -> list:
    for v in values:
        if v < lo or v > hi or (hi_open and v == hi) or (lo_open and v == lo):
            interval = f"{'(' if lo_open else '['}{lo:g}, {hi:g}{')' if hi_open else ']'}"
            raise ValueError(f"{what} {v:g} is out of range: it must lie in {interval}")
    return sorted(set(values))


class PairSpec(Strict):
    """Two models of the config trained on identical data: one generative, one discriminative."""

    generative: str
    discriminative: str
    label: str | None = Field(None, description="name shown in reports (default: 'generative vs discriminative')")


class CrossDomainTarget(Strict):
    data: str | DataConfig = Field(
        description="SOURCE:LOCATION (as `nlpgd evaluate --dataset` takes), a data or experiment YAML, "
        "or a data mapping"
    )
    optional: bool = Field(False, description="skip with a note when it cannot be loaded (instead of an error)")


class CorpusSpec(Strict):
    """One corpus of a claims matrix (the config's ``corpora:`` list): a short name and its data."""

    name: str = Field(description="short name: a column of the claims page and a folder of the run (corpora/<name>)")
    data: str | DataConfig = Field(
        description="SOURCE:LOCATION (as `nlpgd evaluate --dataset` takes), a data or experiment YAML, "
        "or a data mapping, as the `data:` section of a one-corpus config"
    )

    @field_validator("name")
    @classmethod
    def _short(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", v) or v in (".", ".."):
            raise ValueError(f"corpus name '{v}' may only use letters, digits, '.', '_' and '-'")
        return v


def check_corpora(corpora: list[CorpusSpec] | None) -> list[CorpusSpec] | None:
    """``corpora`` as given, refused when two share a short name (each is a column and a folder)."""
    names = [c.name for c in corpora or []]
    twice = next((n for n in names if names.count(n) > 1), None)
    if twice is not None:
        raise ValueError(f"two corpora are named '{twice}'; give each corpus a short name of its own")
    return corpora


class LearningCurveGrid(Strict):
    sizes: list[Size] = Field(
        default_factory=lambda: [16, 32, 128, 512, "full"],
        description="training sizes (stratified subsets that differ per seed); 'full' is the whole train split",
    )
    few_shot_sizes: list[int] = Field(
        default_factory=lambda: [16, 32],
        description="labels given to models that classify without training but use a few labels "
        "(prompts with demonstrations or calibration: prior); label-free ones appear at 0",
    )
    metric: CURVE_METRICS = "roc_auc"

    _sizes = field_validator("sizes")(lambda cls, v: _check_sizes(v, "training size"))
    _few = field_validator("few_shot_sizes")(lambda cls, v: _check_sizes(v, "few-shot size"))


class RobustnessGrid(Strict):
    obfuscations: list[Literal["swap", "insert", "leet", "homoglyph"]] = Field(
        default_factory=lambda: list(OBFUSCATION_KINDS)
    )
    strengths: list[float] = Field(
        default_factory=lambda: [0.0, 0.1, 0.2, 0.4], description="share of each message's words obfuscated"
    )
    cross_domain: dict[str, CrossDomainTarget] = Field(
        default_factory=dict, description="other data sets: train on the main one and test there, and the reverse"
    )
    shifts: list[Literal["temporal", "difficulty"]] = Field(
        default_factory=list,
        description="real shifts inside SpamAssassin (fetched from npm): temporal (train easy-ham-1 + spam-1, "
        "test easy-ham-2 + spam-2), difficulty (train easy ham, test hard ham; spam held out at random)",
    )
    metric: CURVE_METRICS = "roc_auc"

    _strengths = field_validator("strengths")(
        lambda cls, v: _check_rates(v, 0.0, 1.0, "obfuscation strength", hi_open=False)
    )


class MissingWordsGrid(Strict):
    dropout: list[float] = Field(
        default_factory=lambda: [0.1, 0.2, 0.3, 0.4, 0.5], description="share of words dropped at test time"
    )
    truncation: list[int] = Field(default_factory=lambda: [5, 10, 20], description="keep the first N words")
    metric: CURVE_METRICS = "roc_auc"

    _dropout = field_validator("dropout")(lambda cls, v: _check_rates(v, 0.0, 1.0, "dropout rate"))

    @field_validator("truncation")
    @classmethod
    def _truncation(cls, v: list[int]) -> list[int]:
        for n in v:
            if n < 1:
                raise ValueError(f"truncation length {n} is out of range: keep at least 1 word")
        return sorted(set(v))


class LabelShiftGrid(Strict):
    prevalences: list[float] = Field(
        default_factory=lambda: [0.01, 0.13, 0.5], description="spam share of the resampled test sets"
    )
    metric: Literal["log_loss", "accuracy", "prevalence_error"] = "log_loss"

    _prevalences = field_validator("prevalences")(
        lambda cls, v: _check_rates(v, 0.0, 1.0, "prevalence", hi_open=True, lo_open=True)
    )


class CalibrationGrid(Strict):
    sizes: list[Size] | None = Field(None, description="training sizes; default: the learning curve's (fits shared)")
    cost_ratios: list[float] = Field(
        default_factory=lambda: [10.0, 100.0], description="cost of one ham blocked / cost of one spam missed"
    )
    metric: Literal["cost", "log_loss", "ece", "brier"] = "cost"

    _sizes = field_validator("sizes")(lambda cls, v: None if v is None else _check_sizes(v, "training size"))

    @field_validator("cost_ratios")
    @classmethod
    def _ratios(cls, v: list[float]) -> list[float]:
        if not v:
            raise ValueError("give at least one cost ratio")
        for r in v:
            if not r > 0:
                raise ValueError(f"cost ratio {r:g} is out of range: it must be positive")
        return sorted(set(v))


class AugmentationGrid(Strict):
    real_sizes: list[int] = Field(default_factory=lambda: [32, 128, 512], description="real training messages")
    generator: str | None = Field(
        None, description="model that generates; default: the first that samples token by token, else any generator"
    )
    classifiers: list[str] | None = Field(
        None, description="models trained on the synthetic data; default: every paired model but the generator"
    )
    synthetic_ratio: float = Field(
        1.0, gt=0, le=20, description="synthetic messages kept per real message, class by class"
    )
    oversample: float = Field(3.0, ge=1, le=20, description="generate this many times what is kept (then filter)")
    temperature: float = Field(sampling.TEMPERATURE, gt=0, allow_inf_nan=False)
    top_k: int = Field(sampling.TOP_K, ge=0)
    top_p: float = Field(sampling.TOP_P, gt=0, le=1)
    max_new_tokens: int = Field(sampling.MAX_NEW_TOKENS, gt=0)
    metric: CURVE_METRICS = "roc_auc"

    _sizes = field_validator("real_sizes")(lambda cls, v: _check_sizes(v, "real training size"))


class MarginGrid(Strict):
    """Practical-equivalence margins, one per metric (a ``_val`` metric uses its base metric's;
    every expected cost uses ``cost``): a finding whose whole 95% interval lies inside ``± margin``
    is *equivalent* (a difference that small does not matter), see :mod:`nlpgd.report.verdict`."""

    roc_auc: float = Field(0.005, description="ROC-AUC (and its drops)")
    pr_auc: float = Field(0.005, description="PR-AUC (average precision)")
    log_loss: float = Field(0.02, description="log loss, in nats per message")
    f1: float = Field(0.01, description="F1, at 0.5 and at the validation-chosen threshold")
    mcc: float = Field(0.01, description="MCC, at 0.5 and at the validation-chosen threshold")
    accuracy: float = Field(0.005)
    brier: float = Field(0.005)
    ece: float = Field(0.01)
    prevalence_error: float = Field(0.01, description="absolute error of an estimated spam share")
    cost: float = Field(0.01, description="expected cost per message, in units of one spam missed")
    train_seconds: float = Field(0.1, description="training seconds (compute claim)")
    messages_per_second: float = Field(10.0, description="scoring throughput (compute claim)")

    @field_validator("*")
    @classmethod
    def _positive(cls, v: float) -> float:
        if not v > 0:
            raise ValueError(f"margin {v:g} is out of range: it must be positive")
        return v

    def of(self, metric: str) -> float:
        """The margin of ``metric`` (``f1_val`` -> ``f1``, ``cost_10`` / ``cost_10_val`` / ``regret_10`` ->
        ``cost``; a variant's ``_with_end`` or ``_bbse`` -> its metric's)."""
        variant = metric.removesuffix("_with_end").removesuffix("_bbse")
        base = "cost" if metric.startswith(("cost", "regret")) else variant.removesuffix("_val")
        if base not in type(self).model_fields:
            raise KeyError(f"no equivalence margin for metric '{metric}': add one to MarginGrid")
        return float(getattr(self, base))


class ComputeGrid(Strict):
    metric: CURVE_METRICS = Field(
        "roc_auc", description="the score whose 95% of the full-data value a member's training seconds are read at"
    )


class HybridsGrid(Strict):
    dropout: float | None = Field(
        None,
        gt=0,
        lt=1,
        description="the word-dropout rate of the missing-words drop (default: the missing-words grid's highest)",
    )
    samples: int = Field(
        50,
        ge=0,
        description="samples of each class drawn from every hybrid and end that can generate, for the label "
        "fidelity of samples (0: not measured)",
    )


class SharedGrid(Strict):
    """The settings of the `experiment:` section every experiment shares."""

    pairs: list[PairSpec] | None = Field(
        None,
        description="matched pairs; default: found by type (naive_bayes + logreg; gpt2 + distilbert from scratch; "
        "pretrained gpt2 + pretrained distilbert); other models are reference rows",
    )
    reference_seeds: list[int] | None = Field(
        None, description="seeds the reference rows are trained with (default: every seed)"
    )
    min_examples_seen: int = Field(
        1000,
        ge=0,
        description="a Trainer-trained model sees at least this many examples per fit: a small training set is "
        "repeated within each epoch (both members of a pair alike)",
    )
    bootstrap: int = Field(1000, ge=100, le=100_000, description="bootstrap resamples for every interval")
    margins: MarginGrid = Field(
        default_factory=MarginGrid, description="practical-equivalence margin per metric (all must be positive)"
    )
    keep_models: bool = Field(False, description="keep each fitted model after its predictions are written")

    @field_validator("reference_seeds")
    @classmethod
    def _reference_seeds(cls, v: list[int] | None) -> list[int] | None:
        return distinct_seeds(v)


def distinct_seeds(v: list[int] | None) -> list[int] | None:
    """Seeds as given, refused when one repeats (a repeated seed is the same fit again, not more evidence)."""
    repeated = sorted({s for s in v or [] if v.count(s) > 1})
    if repeated:
        raise ValueError(f"seed {repeated[0]} is given twice; each seed is one independent fit, so list each once")
    return v


def _experiment_grid() -> type[SharedGrid]:
    """``ExperimentGrid``: the shared settings and one section per registered experiment."""
    sections = {}
    for e in EXPERIMENTS:
        grid = globals()[e.grid]
        sections[e.key] = (grid, Field(default_factory=grid))
    return create_model(
        "ExperimentGrid",
        __base__=SharedGrid,
        __module__=__name__,
        __doc__="The `experiment:` section: what `nlpgd experiment` varies. Every value has a default.",
        **sections,
    )


ExperimentGrid = _experiment_grid()
__all__ = ["EXPERIMENT_NAMES", "ExperimentGrid"]
