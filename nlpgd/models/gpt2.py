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

Models come from :mod:`nlpgd.models.causal_lm`: ``scratch`` (the offline default:
``GPT2LMHeadModel`` from a small config, with a byte-level BPE vocabulary trained on the
train split), ``smollm2``, a hub name (``gpt2``, ``distilgpt2``) or a local folder. Training
goes through transformers' ``Trainer`` via :class:`~nlpgd.models.hf_base.HFClassifier`.
"""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nlpgd.distributed import is_main_process
from nlpgd.errors import NlpgdError
from nlpgd.io import read_json, write_json
from nlpgd.models.base import Capabilities, FitContext, check_prior, softmax_rows
from nlpgd.models.causal_lm import (
    load_causal_lm,
    max_positions,
    padded_batch,
    scratch_model,
    sequence_log_likelihood,
)
from nlpgd.models.hf_base import HFClassifier, autocast, device, hf_progress_bars, resume_point
from nlpgd.models.hybrid import JointLMs, joint_training, make_trainer
from nlpgd.models.lora import adapt, load_lm, save_lm
from nlpgd.models.vocab import EOS, PAD, train_bpe
from nlpgd.params import GPT2Params
from nlpgd.safe_load import inside, load_errors, refuse_custom_code

log = logging.getLogger(__name__)
STATE_FILE = "gpt2_state.json"  # classes, prior, label tokens, LM folders
# largest float32 logits tensor (rows * length * vocab) one scoring batch may build
_LOGITS_BUDGET = 48_000_000
_GEN_BATCH = 100  # sequences sampled in parallel
_GEN_ROUNDS = 10  # sampling rounds to reach n distinct samples
_CHAT_BATCH = 25  # instruction prompts (hundreds of tokens each) sampled together


def label_token(label: str) -> str:
    return f"<|{label}|>"


class GPT2Classifier(HFClassifier):
    """Class-conditional causal LM (GPT-2 family) used as a Bayes classifier and a sampler."""

    params_class = GPT2Params
    params: GPT2Params
    capabilities = Capabilities(
        generative=True, prior_replaceable=True, can_generate=True, token_scores=True, autoregressive=True
    )
    work_prefix = "nlpgd-gpt2-"
    fit_dirs = ("lm", "lm_*", "tokenizer")

    def __init__(self, params: GPT2Params | None = None):
        super().__init__(params)
        self.progress = True  # runtime switch for scoring / sampling progress bars

    @property
    def family(self) -> str:
        """'hybrid' when trained with a discriminative term (``nlpgd.models.hybrid``)."""
        return "hybrid" if self.params.discriminative_weight > 0 else super().family

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
    def _fit(self, texts: list[str], labels: list[str], ctx: FitContext) -> None:
        p = self.params
        if p.prior is not None:
            check_prior(p.prior, self.classes_)
        if ctx.resume and ctx.work_dir is None:
            raise NlpgdError("resume needs a work_dir holding the checkpoints of the interrupted fit")
        self.progress = ctx.progress  # scoring and sampling bars follow the fit's setting
        with self._work(ctx) as (work, _):  # each LM resumes from its own folder's checkpoint
            self._seed(ctx.seed)
            counts = np.array([labels.count(c) for c in self.classes_], dtype=np.float64)  # the prior counts all
            texts, labels = self._per_class_subset(texts, labels, ctx.seed)
            # prefix conditioning trains on the class-balanced corpus, and so does its BPE
            reps = self._repeats(labels) if p.conditioning == "prefix" else {}
            corpus = [t for t, y in zip(texts, labels) for _ in range(reps.get(y, 1))]
            with hf_progress_bars(ctx.progress):
                self.tokenizer_, base = self._tokenizer_and_base(corpus, work, ctx.resume)
            self.class_log_prior_ = np.log(counts / counts.sum())
            self._init_token_ids(base)
            bases = [base] + [copy.deepcopy(base) for _ in self.classes_[1:]] if p.conditioning == "per_class" else []
            if p.conditioning == "prefix":
                lm = self._fit_lm(base, texts, labels, ctx, work / "lm", reps)
                self.lms_ = {c: lm for c in self.classes_}
            elif joint_training(p):  # the discriminative term couples the class LMs: one Trainer
                joint = self._train_lm(JointLMs(bases), texts, labels, ctx, work / "lm_joint")
                self.lms_ = dict(zip(self.classes_, joint.lms))
            else:  # each class trains its own copy of the same starting point
                self.lms_ = {}
                for i, (c, start) in enumerate(zip(self.classes_, bases)):
                    own = [t for t, y in zip(texts, labels) if y == c]
                    self.lms_[c] = self._fit_lm(start, own, [c] * len(own), ctx, work / f"lm_{i}")
        for lm in self._unique_lms():
            lm.eval()

    def _fit_lm(self, model, texts, labels, ctx: FitContext, out_dir: Path, repeats: dict[str, int] | None = None):
        """``_train_lm``, or the pretrained model as it is when ``epochs`` is 0."""
        if self.params.epochs == 0:
            return model.eval()
        return self._train_lm(model, texts, labels, ctx, out_dir, repeats)

    def _per_class_subset(self, texts: list[str], labels: list[str], seed: int) -> tuple[list[str], list[str]]:
        """At most ``max_train_per_class`` messages of each class, drawn with ``seed`` (order kept)."""
        cap = self.params.max_train_per_class
        if cap is None:
            return texts, labels
        rng = np.random.default_rng(seed)
        keep: list[int] = []
        for c in self.classes_:
            idx = [i for i, y in enumerate(labels) if y == c]
            keep += idx if len(idx) <= cap else [int(i) for i in rng.choice(idx, size=cap, replace=False)]
        keep.sort()
        log.info("training on %d of %d messages (max_train_per_class %d)", len(keep), len(texts), cap)
        return [texts[i] for i in keep], [labels[i] for i in keep]

    def _repeats(self, labels: list[str]) -> dict[str, int]:
        """How often each class's messages appear per epoch (``class_balance``)."""
        counts = {c: labels.count(str(c)) for c in self.classes_}
        most = max(counts.values())
        return {c: max(1, round((most / n) ** self.params.class_balance)) for c, n in counts.items()}

    def _tokenizer_and_base(self, texts: list[str], work: Path, resume: bool):
        """The tokenizer (with the label, end and pad tokens) and the starting model."""
        p = self.params
        specials = [label_token(c) for c in self.classes_] if p.conditioning == "prefix" else []
        tok_dir = work / "tokenizer"
        if p.checkpoint == "scratch":
            if resume and tok_dir.is_dir():
                from transformers import AutoTokenizer

                refuse_custom_code(tok_dir)
                with load_errors(tok_dir, "the tokenizer of the interrupted fit"):
                    tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=False)
            else:
                corpus = [t.lower() for t in texts] if p.lowercase else texts
                tok = train_bpe(corpus, p.vocab_size, p.bpe_min_frequency, specials)
                if is_main_process():  # under torchrun the ranks learn the same vocabulary; one writes it
                    tok.save_pretrained(tok_dir)
            return tok, scratch_model(p, tok)
        tok, model = load_causal_lm(p.checkpoint)
        base_len = len(tok)
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
        return tok, adapt(model, tok, base_len, p, specials)  # added rows set; LoRA adapters when p.lora

    def _init_token_ids(self, model) -> None:
        tok = self.tokenizer_
        self.eos_id_ = int(tok.eos_token_id)
        self.pad_id_ = int(tok.pad_token_id)
        if self.params.conditioning == "prefix":
            self.start_ids_ = {c: int(tok.convert_tokens_to_ids(label_token(c))) for c in self.classes_}
        else:  # a bare start-of-text token: the model's own BOS if it has one
            start = tok.bos_token_id if tok.bos_token_id is not None else self.eos_id_
            self.start_ids_ = {c: int(start) for c in self.classes_}
        self.max_length_ = min(self.params.max_length, max_positions(model))

    def _sequences(self, texts: Sequence[str], label: str) -> list[list[int]]:
        """Token ids ``[start] + x + [end]`` (no end token when ``x`` had to be truncated)."""
        return [self._wrap(ids, label) for ids in self._encode(texts)]

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

    def _lm_dataset(self, texts: Sequence[str], labels: Sequence[str], repeats: dict[str, int] | None = None):
        from datasets import Dataset

        seqs = [self._wrap(ids, y) for ids, y in zip(self._encode(texts), labels)]
        position = {c: i for i, c in enumerate(self.classes_)}
        index = [position[y] for y in labels]  # the true class, for the discriminative term
        if repeats:  # oversample the rarer classes (the sampler shuffles the copies apart)
            times = [repeats.get(y, 1) for y in labels]
            seqs = [s for s, k in zip(seqs, times) for _ in range(k)]
            index = [i for i, k in zip(index, times) for _ in range(k)]
        return Dataset.from_dict({"input_ids": seqs, "length": [len(s) for s in seqs], "class_index": index})

    def _train_lm(self, model, texts, labels, ctx: FitContext, out_dir: Path, repeats: dict[str, int] | None = None):
        """Train one LM on ``texts`` (each wrapped with its label's start token) in ``out_dir``,
        resuming from that folder's newest intact checkpoint when ``ctx.resume``."""
        train_ds = self._lm_dataset(texts, labels, repeats)
        eval_ds = None
        if ctx.validation is not None:
            keep = [(str(t), str(y)) for t, y in zip(*ctx.validation) if str(y) in set(labels)]
            if keep:
                eval_ds = self._lm_dataset([t for t, _ in keep], [y for _, y in keep])
        out_dir.mkdir(parents=True, exist_ok=True)
        args = self._training_arguments(
            out_dir,
            ctx,
            evaluate=eval_ds is not None,
            remove_unused_columns=False,
            train_sampling_strategy="group_by_length",
        )
        trainer = make_trainer(self, model, args, train_ds, eval_ds)
        resume_from = resume_point(out_dir, ctx.name) if ctx.resume else None
        self._train(trainer, ctx, resume_from)
        return trainer.model.eval()

    # -- scoring ----------------------------------------------------------------------
    def _unique_lms(self) -> list:
        seen, out = set(), []
        for lm in self.lms_.values():
            if id(lm) not in seen:
                seen.add(id(lm))
                out.append(lm)
        return out

    def _batches(self, lengths: list[int], n_rows: int, vocab: int, sort: bool, fixed: bool):
        """Index batches: by ascending length (sort) so that each batch pads little."""
        order = np.argsort(lengths, kind="stable") if sort else np.arange(len(lengths))
        batch: list[int] = []
        width = 0
        for i in order:
            w = self.max_length_ if fixed else max(width, lengths[i])
            if batch and (
                len(batch) >= self.params.eval_batch_size or (len(batch) + 1) * n_rows * w * vocab > _LOGITS_BUDGET
            ):
                yield batch
                batch, w = [], (self.max_length_ if fixed else lengths[i])
            batch.append(int(i))
            width = w
        if batch:
            yield batch

    def _score_jobs(self, lengths: list[int], labels: Sequence[str], sort: bool, fixed_padding: bool):
        """``[(lm, label columns, batches)]``: the labels sharing one LM are scored in one pass."""
        groups: dict[int, list[int]] = {}
        for j, y in enumerate(labels):
            groups.setdefault(id(self.lms_[y]), []).append(j)
        jobs = []
        for cols in groups.values():
            lm = self.lms_[labels[cols[0]]]
            vocab = lm.get_output_embeddings().weight.shape[0]
            jobs.append((lm, cols, list(self._batches(lengths, len(cols), vocab, sort, fixed_padding))))
        return jobs

    @torch.inference_mode()
    def _score(
        self, texts: Sequence[str], labels: Sequence[str], *, sort: bool = True, fixed_padding: bool = False
    ) -> np.ndarray:
        """``log P(x | y)`` as an (n, len(labels)) float64 array.

        Sequences are sorted by length and batched with their neighbours (``sort``); with
        prefix conditioning, one forward pass scores the same text under every label.
        ``sort=False, fixed_padding=True`` is the naive baseline the benchmark compares to.
        """
        from tqdm.auto import tqdm

        self._check_fitted()
        texts, labels = [str(t) for t in texts], [str(y) for y in labels]
        out = np.zeros((len(texts), len(labels)), dtype=np.float64)
        if not texts:
            return out
        body = self._encode(texts)
        seqs = {y: [self._wrap(ids, y) for ids in body] for y in labels}
        jobs = self._score_jobs([len(s) for s in seqs[labels[0]]], labels, sort, fixed_padding)
        n_batches = sum(len(batches) for _, _, batches in jobs)
        bar = tqdm(
            total=len(texts) * len(labels),
            desc="scoring",
            unit="seq",
            disable=not self.progress or n_batches < 8,
            leave=False,
        )
        for lm, cols, batches in jobs:
            lm.eval()
            for batch in batches:
                rows = [seqs[labels[j]][i] for j in cols for i in batch]
                ids, targets = padded_batch(rows, self.eos_id_, self.max_length_ if fixed_padding else None)
                ids, targets = ids.to(lm.device), targets.to(lm.device)
                with autocast(lm.device.type):
                    logits = lm(input_ids=ids).logits
                ll = sequence_log_likelihood(logits, targets).double().cpu().numpy().reshape(len(cols), len(batch))
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
        with torch.inference_mode(), autocast(lm.device.type):
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

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax_rows(self.predict_log_joint(texts))

    def stack_scores(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """For a stacked ensemble: the log-likelihood ratio ``log P(x | classes_[1]) - log P(x |
        classes_[0])``, raw and per scored token (the message's tokens and its end token)."""
        self._check_fitted()
        texts = [str(t) for t in texts]
        ll = self._score(texts, list(self.classes_))
        llr = ll[:, 1] - ll[:, 0]
        n_scored = np.array([len(s) - 1 for s in self._sequences(texts, self.classes_[0])], dtype=np.float64)
        return {"llr": llr, "llr_per_token": llr / np.maximum(n_scored, 1)}

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
        chat: Sequence[str] | None = None,
    ) -> list[str]:
        """``n`` distinct messages sampled from ``P(x | label)``; the same seed gives the same list.

        With ``prompts``, every message starts with one of them (used in turn, equal shares)
        and continues it: samples from ``P(x | label, x starts with the prompt)``.
        With ``chat``, each message is instead the model's reply to one of these user messages
        (instructions, e.g. with real examples to imitate: ``nlpgd generate --shots``), rendered
        with the tokenizer's chat template; no label token is used. They are used in turn, one
        per sample, so ``n`` instructions give each sample its own.
        """
        label = str(label)
        self._class_index(label)
        sampling = _sampling(n, temperature, top_k, top_p, max_new_tokens)
        if prompts is not None and chat is not None:
            raise NlpgdError("give prompts to continue or chat instructions, not both")
        lm = self.lms_[label]
        lm.eval()
        if chat is None:
            prefixes = self._prefixes(lm, label, prompts)
            draw = lambda start, b: self._sample_rows(lm, prefixes, b, sampling)
        else:
            prefixes = self._chat_prefixes(lm, chat, sampling["max_new_tokens"])
            draw = lambda start, b: self._sample_left_padded(
                lm, [prefixes[(start + i) % len(prefixes)] for i in range(b)], sampling
            )
        with torch.random.fork_rng(devices=[lm.device] if lm.device.type == "cuda" else []):
            out = self._distinct(n, seed, draw, f"sampling {label}", progress)
        if len(out) < n:
            warnings.warn(
                f"only {len(out)} distinct samples of '{label}' after {_GEN_ROUNDS} rounds "
                f"(asked for {n}); raise the temperature or top_p for more variety",
                stacklevel=2,
            )
        return out

    def _distinct(self, n: int, seed: int, draw, desc: str, progress: bool) -> list[str]:
        """Up to ``n`` distinct non-empty texts from ``draw(start, b)`` (``b`` rows, the
        ``start``-th drawn first), in rounds seeded from ``seed``."""
        from tqdm.auto import tqdm

        out: list[str] = []
        seen: set[str] = set()
        drawn = 0
        bar = tqdm(total=n, desc=desc, unit="msg", disable=not progress, leave=False)
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
                for text in self._decode_rows(draw(drawn, b)):
                    if text and text not in seen and len(out) < n:
                        seen.add(text)
                        out.append(text)
                        bar.update(1)
                drawn += b
        bar.close()
        return out

    def _chat_prefixes(self, lm, chat: Sequence[str], max_new_tokens: int) -> list[list[int]]:
        """Token ids of each instruction as a user turn of the chat template, ending where the
        assistant's reply begins; one sentence when the model has no chat template."""
        tok = self.tokenizer_
        if not getattr(tok, "chat_template", None):
            raise NlpgdError(
                f"this model (checkpoint '{self.params.checkpoint}') has no chat template, so it cannot follow "
                "an instruction prompt; use an instruct model such as checkpoint: smollm2"
            )
        chat = [str(c) for c in chat]
        if not chat:
            raise NlpgdError("the chat instruction set is empty")
        texts = [
            tok.apply_chat_template([{"role": "user", "content": c}], tokenize=False, add_generation_prompt=True)
            for c in chat
        ]
        prefixes = tok(texts, add_special_tokens=False)["input_ids"]
        limit = max_positions(lm) - max_new_tokens
        longest = max(len(ids) for ids in prefixes)
        if longest > limit:
            raise NlpgdError(
                f"an instruction prompt is {longest} tokens; with max_new_tokens {max_new_tokens} the model "
                f"sees {max_positions(lm)} at most (use fewer shots or fewer new tokens)"
            )
        return prefixes

    def _sample_left_padded(self, lm, prefixes: list[list[int]], sampling: dict) -> list[list[int]]:
        """One sampled continuation per prefix (the prefix left out): prefixes of different
        lengths are padded on the left and sampled together, ``_CHAT_BATCH`` at a time."""
        rows: list[list[int]] = []
        for i in range(0, len(prefixes), _CHAT_BATCH):
            chunk = prefixes[i : i + _CHAT_BATCH]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), self.pad_id_, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, p in enumerate(chunk):
                ids[r, width - len(p) :] = torch.as_tensor(p)
                mask[r, width - len(p) :] = 1
            with torch.inference_mode(), autocast(lm.device.type):
                gen = lm.generate(
                    input_ids=ids.to(lm.device),
                    attention_mask=mask.to(lm.device),
                    do_sample=True,
                    temperature=sampling["temperature"],
                    top_k=sampling["top_k"],
                    top_p=sampling["top_p"],
                    max_new_tokens=sampling["max_new_tokens"],
                    eos_token_id=self.eos_id_,
                    pad_token_id=self.pad_id_,
                )
            rows.extend(gen[:, width:].tolist())
        return rows

    def _prefixes(self, lm, label: str, prompts: Sequence[str] | None) -> list[list[int]]:
        """Token ids every sample starts with: the label's start token, then a prompt's tokens."""
        start = self.start_ids_[label]
        if prompts is None:
            return [[start]]
        prompts = [str(t) for t in prompts if str(t).strip()]
        if not prompts:
            raise NlpgdError("the prompt set is empty: give at least one prompt that is not blank")
        prefixes = [[start, *ids] for ids in self._encode(prompts)]
        limit = max_positions(lm) - 1
        for t, ids in zip(prompts, prefixes):
            if len(ids) >= limit:
                raise NlpgdError(
                    f"prompt {t[:40]!r} is {len(ids) - 1} tokens; the model sees {limit} at most, "
                    "leaving no room to continue it"
                )
        return prefixes

    def _decode_rows(self, rows: list[list[int]]) -> list[str]:
        out = []
        for row in rows:
            if self.eos_id_ in row:
                row = row[: row.index(self.eos_id_)]
            out.append(self.tokenizer_.decode(row, skip_special_tokens=True).strip())
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
            max_new = min(sampling["max_new_tokens"], max_positions(lm) - len(prefix))
            with torch.inference_mode(), autocast(lm.device.type):
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

    def _meta_extra(self) -> dict[str, Any]:
        return {"conditioning": self.params.conditioning, "checkpoint": self.params.checkpoint}

    def _save(self, path: Path) -> None:
        with hf_progress_bars(self.progress):
            self.tokenizer_.save_pretrained(path / "tokenizer")
            lm_dirs: dict[str, str] = {}
            folders: dict[int, str] = {}
            formats: dict[str, str] = {}  # full, lora or as_is (nlpgd.models.lora)
            for i, c in enumerate(self.classes_):
                lm = self.lms_[c]
                if id(lm) not in folders:
                    folders[id(lm)] = "lm" if self.params.conditioning == "prefix" else f"lm_{i}"
                    formats[folders[id(lm)]] = save_lm(lm, path / folders[id(lm)], self.params)
                lm_dirs[str(c)] = folders[id(lm)]
        write_json(
            path / STATE_FILE,
            {
                "classes": [str(c) for c in self.classes_],
                "class_log_prior": [float(v) for v in self.class_log_prior_],
                "label_tokens": {str(c): self.tokenizer_.convert_ids_to_tokens(i) for c, i in self.start_ids_.items()},
                "eos_token": self.tokenizer_.convert_ids_to_tokens(self.eos_id_),
                "pad_token": self.tokenizer_.convert_ids_to_tokens(self.pad_id_),
                "max_length": self.max_length_,
                "lm_dirs": lm_dirs,
                "lm_formats": formats,
            },
        )

    def _load(self, path: Path, meta: dict) -> None:
        """Rebuild the tokenizer and LMs; a damaged, crafted or incomplete folder is one
        sentence naming the file (never a prompt, never code from the folder)."""
        from transformers import AutoTokenizer

        state = read_json(path / STATE_FILE, "model state")
        with load_errors(path / STATE_FILE, "the model state"):
            if [str(c) for c in state["classes"]] != list(self.classes_):
                raise NlpgdError(f"{path / STATE_FILE} lists other classes than the model description")
            self.class_log_prior_ = np.array(state["class_log_prior"], dtype=np.float64)
            lm_dirs = {str(c): state["lm_dirs"][str(c)] for c in self.classes_}
            label_tokens = {str(c): str(t) for c, t in state["label_tokens"].items()}
            special = (str(state["eos_token"]), str(state["pad_token"]))
            self.max_length_ = int(state["max_length"])
            formats = {str(k): str(v) for k, v in state.get("lm_formats", {}).items()}
        folders = {c: inside(path, d, f"{STATE_FILE} lm_dirs['{c}']") for c, d in lm_dirs.items()}
        tok_dir = inside(path, "tokenizer", "the tokenizer folder")
        for folder in [tok_dir, *folders.values()]:
            refuse_custom_code(folder)
        with load_errors(tok_dir, "the tokenizer"):
            self.tokenizer_ = tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=False)
            self.eos_id_ = int(tok.convert_tokens_to_ids(special[0]))
            self.pad_id_ = int(tok.convert_tokens_to_ids(special[1]))
            self.start_ids_ = {c: int(tok.convert_tokens_to_ids(t)) for c, t in label_tokens.items()}
        loaded: dict[Path, Any] = {}
        self.lms_ = {}
        for c, folder in folders.items():
            if folder not in loaded:
                with hf_progress_bars(False):
                    fmt = formats.get(lm_dirs[c], "full")
                    lm = load_lm(folder, fmt, self.params, self.tokenizer_, list(label_tokens.values()))
                loaded[folder] = lm.to(device()).eval()
            self.lms_[c] = loaded[folder]


def _sampling(n, temperature: float, top_k: int, top_p: float, max_new_tokens: int) -> dict[str, Any]:
    """The sampling settings, checked (one sentence for each bad value)."""
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
    return dict(
        temperature=float(temperature), top_k=int(top_k), top_p=float(top_p), max_new_tokens=int(max_new_tokens)
    )
