"""Model hyperparameter schemas, and the registry: the one place a model type is registered.

A model arm is one module under ``nlpgd/models/`` plus its params class here. Registering it
is one line below: the params class (whose ``type`` literal names the type) and where the
implementing class lives, as a ``"module:Class"`` string, so that reading a config never
imports torch or scikit-learn (the class is imported by ``nlpgd.models.registry`` when a
model is built or loaded). Everything else asks this registry: the config schema, the
contract test, the smoke-config check, the CLI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Callable, Union

from pydantic import BaseModel, Field

from nlpgd.params.base import CountFeatureParams, ModelParams, TrainerParams, validate_prior
from nlpgd.params.distilbert import DistilBertParams
from nlpgd.params.gpt2 import GPT2Params
from nlpgd.params.logreg import LogRegParams
from nlpgd.params.naive_bayes import NaiveBayesParams
from nlpgd.params.stack import StackParams


@dataclass(frozen=True)
class Arm:
    params: type[ModelParams]
    implementation: str  # "module:Class", imported on first use


REGISTRY: dict[str, Arm] = {}
_REBUILDS: list[Callable[[], object]] = []  # the schemas that hold a ModelSpec (see follows_registry)


def register(params: type[ModelParams], implementation: str) -> None:
    """Make ``params``'s type known; every schema with a :class:`ModelSpec` is rebuilt, so a type
    registered after import (a plugin, a test) validates and serializes like the built-in ones."""
    REGISTRY[params.type_name()] = Arm(params, implementation)
    for rebuild in _REBUILDS:
        rebuild()


class ModelSpec:
    """A model entry of an experiment config: the params class its ``type`` names. The union of
    the registered params classes is made when a schema holding it is built, so it is as current
    as the registry; a model class with such a field is marked :func:`follows_registry`."""

    @classmethod
    def __get_pydantic_core_schema__(cls, source, handler):
        arms = tuple(arm.params for arm in REGISTRY.values())
        return handler(Annotated[Union[arms], Field(discriminator="type")])


def follows_registry(model: type[BaseModel]) -> type[BaseModel]:
    """Class decorator for a model with a :class:`ModelSpec` field (declare it with
    ``defer_build=True``: its schema is built on first use): rebuilt on every :func:`register`."""
    _REBUILDS.append(lambda: model.model_rebuild(force=True))
    return model


register(NaiveBayesParams, "nlpgd.models.naive_bayes:NaiveBayesClassifier")
register(LogRegParams, "nlpgd.models.logreg:LogRegClassifier")
register(DistilBertParams, "nlpgd.models.distilbert:DistilBertClassifier")
register(GPT2Params, "nlpgd.models.gpt2:GPT2Classifier")
register(StackParams, "nlpgd.models.stack:StackClassifier")


def type_names() -> list[str]:
    return sorted(REGISTRY)


__all__ = [
    "REGISTRY",
    "ModelSpec",
    "ModelParams",
    "TrainerParams",
    "CountFeatureParams",
    "validate_prior",
    "NaiveBayesParams",
    "LogRegParams",
    "DistilBertParams",
    "GPT2Params",
    "StackParams",
    "follows_registry",
    "register",
    "type_names",
]
