"""Hyperparameters of the stacked ensemble (``nlpgd.models.stack``): which arms it combines,
how many folds cross-fit them on the train split, and the logistic regression on top.

``members`` is either a list of other entries of the same experiment config (``[naive_bayes,
gpt2_hybrid, distilbert]``; the config resolves the names to those entries' settings) or a
mapping ``{name: model settings}`` (``type`` defaults to the name, as in a config's
``models``), which is what a resolved config and a saved stack record.
"""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, SerializeAsAny, field_validator

from nlpgd.params.base import ModelParams


def member_params(name: str, spec: Any) -> ModelParams:
    """One member's settings as its params class (``type`` defaults to ``name``)."""
    from nlpgd.params import REGISTRY

    if isinstance(spec, ModelParams):
        params = spec
    else:
        spec = {} if spec is None else spec
        if not isinstance(spec, dict):
            raise ValueError(f"member '{name}' must be a mapping of model settings")
        kind = spec.get("type", name)
        if kind not in REGISTRY:
            raise ValueError(f"member '{name}' has no known type (known types: {', '.join(sorted(REGISTRY))})")
        params = REGISTRY[kind].params.model_validate({**spec, "type": kind})
    if getattr(params, "members", None) is not None:
        raise ValueError(f"member '{name}' is itself a stack; a stack combines single arms")
    return params


class StackParams(ModelParams):
    type: Literal["stack"] = "stack"
    members: list[str] | dict[str, SerializeAsAny[ModelParams]] = Field(
        description="the arms to combine: names of other entries of the same config, or {name: model settings}",
    )
    folds: int = Field(5, ge=2, description="k of the k-fold cross-fitting of the members on the train split")
    C_grid: list[float] = Field(
        default_factory=lambda: [0.01, 0.1, 1.0, 10.0],
        min_length=1,
        description="inverse L2 strengths of the logistic regression; the one with the lowest validation log "
        "loss is kept",
    )
    C: float = Field(1.0, gt=0, description="the inverse L2 strength used when there is no validation split")

    smoke: ClassVar[dict[str, Any]] = {
        "members": {
            "naive_bayes": {},
            "gpt2": {
                "n_layer": 1,
                "n_embd": 32,
                "n_head": 2,
                "vocab_size": 300,
                "n_positions": 64,
                "epochs": 2,
                "batch_size": 16,
                "learning_rate": 3e-3,
                "max_length": 32,
            },
        },
        "folds": 2,
    }

    @field_validator("members", mode="before")
    @classmethod
    def _members(cls, v):
        if isinstance(v, dict):
            if not v:
                raise ValueError("members must name at least two arms")
            return {str(k): member_params(str(k), spec) for k, spec in v.items()}
        if isinstance(v, (list, tuple)) and len(set(map(str, v))) != len(v):
            raise ValueError("members lists a name twice")
        return v

    @field_validator("members")
    @classmethod
    def _at_least_two(cls, v):
        if len(v) < 2:
            raise ValueError("members must name at least two arms")
        return v

    @field_validator("C_grid")
    @classmethod
    def _positive(cls, v):
        if any(not c > 0 for c in v):
            raise ValueError("every C in C_grid must be positive")
        return v

    def resolved(self, models: dict[str, ModelParams], own_name: str) -> "StackParams":
        """A copy whose members are the settings of the config entries they name (``models``)."""
        if isinstance(self.members, dict):
            return self
        out = {}
        for name in self.members:
            if name == own_name:
                raise ValueError(f"stack '{own_name}' lists itself as a member")
            if name not in models:
                raise ValueError(f"member '{name}' is not a model of this config (models: {', '.join(models)})")
            out[name] = member_params(name, models[name])
        return self.model_copy(update={"members": out})
