"""Model registry: type name -> hyperparameter schema and (lazily imported) model class.

Schemas are light pydantic modules so that loading a config never imports torch; the model
class is imported only when a model is built or loaded.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path
from typing import Annotated, Union

from pydantic import Field

from nlpgd.errors import NlpgdError
from nlpgd.models.base import MODEL_META, Classifier
from nlpgd.models.distilbert_params import DistilBertParams
from nlpgd.models.gpt2_params import GPT2Params
from nlpgd.models.naive_bayes_params import NaiveBayesParams

REGISTRY: dict[str, tuple[type, str]] = {
    "naive_bayes": (NaiveBayesParams, "nlpgd.models.naive_bayes:NaiveBayesClassifier"),
    "distilbert": (DistilBertParams, "nlpgd.models.distilbert:DistilBertClassifier"),
    "gpt2": (GPT2Params, "nlpgd.models.gpt2:GPT2Classifier"),
}

ModelSpec = Annotated[
    Union[NaiveBayesParams, DistilBertParams, GPT2Params], Field(discriminator="type")
]


def model_class(type_name: str) -> type[Classifier]:
    if type_name not in REGISTRY:
        raise NlpgdError(
            f"unknown model type '{type_name}'; known types: {', '.join(sorted(REGISTRY))}"
        )
    module, _, cls = REGISTRY[type_name][1].partition(":")
    return getattr(importlib.import_module(module), cls)


def build_model(params) -> Classifier:
    return model_class(params.type)(params)


def saved_type(path: Path) -> str:
    """The model type a saved model folder declares in its ``nlpgd_model.json``."""
    meta_file = Path(path) / MODEL_META
    try:
        return str(json.loads(meta_file.read_text())["type"])
    except (OSError, ValueError, KeyError, TypeError):
        raise NlpgdError(f"{path} is not a saved nlpgd model folder (no readable {MODEL_META})") from None


def load_model(path: Path) -> Classifier:
    """Load any saved model folder by reading its self-description."""
    return model_class(saved_type(path)).load(Path(path))
