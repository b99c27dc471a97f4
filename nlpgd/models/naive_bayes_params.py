"""Hyperparameters of the naive Bayes model (light module: no sklearn import)."""

from typing import Literal

from pydantic import Field, model_validator

from nlpgd.models.params_base import ModelParams


class NaiveBayesParams(ModelParams):
    type: Literal["naive_bayes"] = "naive_bayes"
    variant: Literal["multinomial", "complement"] = Field(
        "multinomial", description="MultinomialNB (the generative classic) or ComplementNB"
    )
    analyzer: Literal["word", "char", "char_wb"] = "word"
    ngram_range: tuple[int, int] = (1, 1)
    alpha: float = Field(1.0, gt=0, description="additive (Laplace/Lidstone) smoothing")
    lowercase: bool = True
    min_df: int = Field(1, ge=1)
    max_features: int | None = Field(None, gt=0)
    binary: bool = False
    fit_prior: bool = True

    @model_validator(mode="after")
    def _ngrams(self):
        lo, hi = self.ngram_range
        if lo < 1 or hi < lo:
            raise ValueError(f"ngram_range must be (min, max) with 1 <= min <= max, got {self.ngram_range}")
        return self
