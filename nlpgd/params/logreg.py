"""Hyperparameters of logistic regression (``nlpgd.models.logreg``), the discriminative twin of
naive Bayes: the same count features, ``P(y | x)`` fitted directly (Ng & Jordan, 2001)."""

from typing import Literal

from pydantic import Field

from nlpgd.params.base import CountFeatureParams


class LogRegParams(CountFeatureParams):
    type: Literal["logreg"] = "logreg"
    C: float = Field(1.0, gt=0, description="inverse L2 regularisation strength (scikit-learn's C)")
    class_weight: Literal["balanced"] | None = Field(
        None, description="'balanced': weight classes inversely to their frequency; None: every message counts once"
    )
    max_iter: int = Field(1000, gt=0, description="L-BFGS iterations")
