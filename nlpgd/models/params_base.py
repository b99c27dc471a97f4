"""Shared pydantic base for model hyperparameters: unknown keys are errors."""

from pydantic import BaseModel, ConfigDict


class ModelParams(BaseModel):
    """Base for every model's hyperparameters. ``type`` selects the model in the registry."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())
