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

from nlpgd.config_data import SOURCES, DataConfig, GenerationConfig, Strict
from nlpgd.config_grids import (
    CURVE_METRICS,
    EXPERIMENT_NAMES,
    OBFUSCATION_KINDS,
    AugmentationGrid,
    CalibrationGrid,
    ComputeGrid,
    CorpusSpec,
    CrossDomainTarget,
    ExperimentGrid,
    HybridsGrid,
    LabelShiftGrid,
    LearningCurveGrid,
    MarginGrid,
    MissingWordsGrid,
    PairSpec,
    RobustnessGrid,
    SharedGrid,
    check_corpora,
    distinct_seeds,
)
from nlpgd.errors import NlpgdError
from nlpgd.io import RepeatedKey, load_yaml
from nlpgd.params import REGISTRY, ModelSpec, follows_registry

# the sections live in config_data (data, generation) and config_grids (experiment); importing them
# from here keeps working
__all__ = [
    "CURVE_METRICS",
    "EXPERIMENT_NAMES",
    "OBFUSCATION_KINDS",
    "SOURCES",
    "AugmentationGrid",
    "CalibrationGrid",
    "ComputeGrid",
    "CorpusSpec",
    "CrossDomainTarget",
    "DataConfig",
    "ExperimentConfig",
    "ExperimentGrid",
    "GenerationConfig",
    "HybridsGrid",
    "LabelShiftGrid",
    "LearningCurveGrid",
    "MarginGrid",
    "MissingWordsGrid",
    "PairSpec",
    "RobustnessGrid",
    "SharedGrid",
    "Strict",
    "apply_overrides",
    "config_from_dict",
    "data_config_from_dict",
    "dataset_config",
    "difference_message",
    "distinct_seeds",
    "dump_config",
    "first_difference",
    "load_config",
    "parse_override",
    "read_yaml",
    "validation_message",
]


@follows_registry
class ExperimentConfig(Strict):
    # built on first use and again when a model type is registered (nlpgd.params.register)
    model_config = ConfigDict(defer_build=True)

    name: str = Field(description="experiment name: the run folder is outputs/<name>/<run-id>")
    description: str = ""
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    data: DataConfig | None = Field(None, description="the messages (required unless `corpora` is given)")
    corpora: list[CorpusSpec] | None = Field(
        None,
        min_length=1,
        description="several corpora instead of `data` (nlpgd experiment only): every experiment runs on each "
        "with the same models and seeds, on one claims page with the cross-corpus matrix",
    )
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

    @field_validator("corpora")
    @classmethod
    def _corpora(cls, v: list[CorpusSpec] | None) -> list[CorpusSpec] | None:
        return check_corpora(v)

    @model_validator(mode="after")
    def _one_data(self):
        if self.data is None and self.corpora is None:
            raise ValueError("the config needs a 'data' section (or, for nlpgd experiment, a 'corpora' list)")
        if self.data is not None and self.corpora is not None:
            raise ValueError(
                "give 'data' (one corpus) or 'corpora' (several, each with its own data section), not both"
            )
        return self

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
                if isinstance(spec, dict) and "prompts" in spec and spec.get("type") != "gpt2":
                    raise ValueError(
                        f"model '{key}' is a {spec.get('type')}: prompts need a causal language model "
                        "(type gpt2 with a pretrained checkpoint such as smollm2)"
                    )
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


def _list_index(node: list, part: str, item: str, prefix: str) -> int:
    """The list item ``part`` names (``corpora.0.data.path``), or one sentence."""
    if not part.isdigit() or int(part) >= len(node):
        raise NlpgdError(f"override '{item}': '{prefix}' is not an item of the list (it has {len(node)}, from 0)")
    return int(part)


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """``key.path=value`` settings into ``data``; a number picks an item of a list (``corpora.1.name=x``)."""
    for item in overrides or []:
        path, value = parse_override(item)
        node = data
        for i, part in enumerate(path[:-1]):
            prefix = ".".join(path[: i + 1])
            if isinstance(node, list):
                node = node[_list_index(node, part, item, prefix)]
                continue
            nxt = node.get(part) if isinstance(node, dict) else None
            if nxt is None:
                nxt = {}
                node[part] = nxt
            if not isinstance(nxt, (dict, list)):
                raise NlpgdError(f"override '{item}': '{prefix}' is a value, not a section")
            node = nxt
        if isinstance(node, list):
            node[_list_index(node, path[-1], item, ".".join(path))] = value
        else:
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


def _spamassassin_options(loc: str, spec: str) -> dict:
    """``groups=easy_ham_1+spam_1`` (and ``path=FOLDER``), comma-separated, as data settings."""
    out: dict[str, Any] = {}
    for part in loc.split(","):
        key, sep, value = part.partition("=")
        key = key.strip()
        if not sep or key not in ("groups", "path") or not value.strip():
            raise NlpgdError(
                f"data set spec '{spec}': expected spamassassin:groups=GROUP+GROUP (and optionally ,path=FOLDER), "
                f"got '{part}'"
            )
        out[key] = [g.strip() for g in value.split("+")] if key == "groups" else value.strip()
    return out


def dataset_config(spec: str, overrides: list[str] | None = None) -> DataConfig:
    """A data set named by a string, as a :class:`DataConfig`.

    ``spec`` is a YAML file (an experiment config, whose ``data`` section is used, or a data
    section on its own) or a shorthand ``SOURCE:LOCATION``: ``uci_sms:path``, ``csv:path``,
    ``tsv:path``, ``jsonl:path``, ``parquet:path``, ``hub:owner/name``, ``spamassassin`` or
    ``spamassassin:groups=easy_ham_1+spam_1`` (some of its groups).
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
        if source == "spamassassin" and "=" in loc:
            data.update(_spamassassin_options(loc, spec))
        elif loc:
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
