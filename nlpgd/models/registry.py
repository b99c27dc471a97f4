"""Building and loading models by type name, through the registry in :mod:`nlpgd.params`.

The implementing class is imported only when a model is built or loaded, so reading a config
never imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from nlpgd.errors import NlpgdError
from nlpgd.models.base import MODEL_META, Classifier, read_model_meta
from nlpgd.params import REGISTRY, ModelParams
from nlpgd.safe_load import load_errors


def model_class(type_name: str) -> type[Classifier]:
    if type_name not in REGISTRY:
        raise NlpgdError(f"unknown model type '{type_name}'; known types: {', '.join(sorted(REGISTRY))}")
    arm = REGISTRY[type_name]
    module, _, name = arm.implementation.partition(":")
    cls = getattr(importlib.import_module(module), name)
    if cls.params_class is not arm.params:  # a registration error, not a user error
        raise TypeError(
            f"{arm.implementation} declares {cls.params_class.__name__}, registered with {arm.params.__name__}"
        )
    return cls


def build_model(params: ModelParams) -> Classifier:
    return model_class(params.type)(params)


def saved_type(path: Path) -> str:
    """The model type a saved model folder declares in its ``nlpgd_model.json``."""
    return str(read_model_meta(path)["type"])


def described_model(path: Path) -> Classifier:
    """The model a saved folder describes, built unfitted from its recorded settings: what it can
    do as configured (``can``, ``family``), without loading its weights."""
    meta = read_model_meta(path)
    cls = model_class(str(meta["type"]))
    with load_errors(Path(path) / MODEL_META, "the model description"):
        params = cls.params_class.model_validate(meta["params"])
    return cls(params)


def load_model(path: Path) -> Classifier:
    """Load any saved model folder by reading its self-description."""
    return model_class(saved_type(path)).load(Path(path))


def types_with(capability: str) -> list[str]:
    """Registered type names whose class declares ``capability`` (a Capabilities field)."""
    return [t for t in sorted(REGISTRY) if getattr(model_class(t).capabilities, capability)]
