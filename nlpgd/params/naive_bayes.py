"""Hyperparameters of naive Bayes (``nlpgd.models.naive_bayes``)."""

from typing import Literal

from pydantic import Field

from nlpgd.params.base import CountFeatureParams


class NaiveBayesParams(CountFeatureParams):
    type: Literal["naive_bayes"] = "naive_bayes"
    variant: Literal["multinomial", "complement"] = Field(
        "multinomial", description="MultinomialNB (the generative classic) or ComplementNB (not generative)"
    )
    alpha: float = Field(1.0, gt=0, description="additive (Laplace/Lidstone) smoothing")
    fit_prior: bool = True
