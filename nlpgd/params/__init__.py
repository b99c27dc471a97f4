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
from typing import Annotated, Union

from pydantic import Field

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


def register(params: type[ModelParams], implementation: str) -> None:
    REGISTRY[params.type_name()] = Arm(params, implementation)


register(NaiveBayesParams, "nlpgd.models.naive_bayes:NaiveBayesClassifier")
register(LogRegParams, "nlpgd.models.logreg:LogRegClassifier")
register(DistilBertParams, "nlpgd.models.distilbert:DistilBertClassifier")
register(GPT2Params, "nlpgd.models.gpt2:GPT2Classifier")
register(StackParams, "nlpgd.models.stack:StackClassifier")

#: a model entry of an experiment config: the params class chosen by its ``type``
ModelSpec = Annotated[Union[tuple(arm.params for arm in REGISTRY.values())], Field(discriminator="type")]


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
    "register",
    "type_names",
]
