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
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch

from nlpgd.errors import NlpgdError
from nlpgd.io import read_json, write_json
from nlpgd.models import channel
from nlpgd.models import lm_sampling as sampling
from nlpgd.models.base import Capabilities, FitContext, check_prior, softmax_rows
from nlpgd.models.causal_lm import max_positions
from nlpgd.models.channel import Channel
from nlpgd.models.gpt2_setup import save_lms, special_ids, tokenizer_and_base
from nlpgd.models.hf_base import HFClassifier, autocast, hf_progress_bars, resume_point
from nlpgd.models.hybrid import JointLMs, joint_training, lm_pair_kind, lm_training_summary, make_trainer
from nlpgd.models.lm_data import class_repeats, label_token, lm_dataset, message_head, per_class_subset, wrap
from nlpgd.models.lm_scoring import ScoreJob, on_device, score_jobs
from nlpgd.models.lora import load_lm
from nlpgd.models.vocab import EOS
from nlpgd.params import GPT2Params
from nlpgd.safe_load import inside, load_errors, refuse_custom_code
from nlpgd.sampling import SamplingSettings, check_count

__all__ = ["EOS", "GPT2Classifier", "STATE_FILE", "label_token"]
log = logging.getLogger(__name__)
STATE_FILE = "gpt2_state.json"  # classes, prior, label tokens, LM folders
CAPABILITIES = Capabilities(
    generative=True,
    prior_replaceable=True,
    can_generate=True,
    token_scores=True,
    autoregressive=True,
    prefix_scores=True,
)


def assumed_prior(params: GPT2Params, classes, class_log_prior: np.ndarray, stream: np.ndarray) -> dict[str, float]:
    """The class prior a fitted GPT-2 arm's outputs assume. Its log-odds are the LMs' log-likelihood
    ratio plus the logit of the prior predict uses (``params.prior``, else the training share
    ``class_log_prior``). A pure LM's ratio carries no prior, so that is all; a hybrid's
    posterior term (``discriminative_weight > 0``) trains the ratio plus the training share on
    the training stream, whose class shares (``stream``: after ``max_train_per_class`` and the
    ``class_balance`` repeats) it then absorbs: its outputs assume the stream's shares, moved by
    the configured prior when there is one (an approximation where both terms pull)."""
    used = class_log_prior if params.prior is None else np.log([params.prior[str(c)] for c in classes])
    logits = used + (np.log(stream) - class_log_prior if params.discriminative_weight > 0 else 0.0)
    shares = np.exp(logits - logits.max())
    return {str(c): float(v) for c, v in zip(classes, shares / shares.sum())}


class GPT2Classifier(HFClassifier):
    """Class-conditional causal LM (GPT-2 family) used as a Bayes classifier and a sampler."""

    params_class = GPT2Params
    params: GPT2Params
    capabilities = CAPABILITIES
    work_prefix = "nlpgd-gpt2-"
    fit_dirs = ("lm", "lm_*", "tokenizer")

    def __init__(self, params: GPT2Params | None = None):
        super().__init__(params)
        self.progress = True  # runtime switch for scoring / sampling progress bars
        self.channel_: Channel | None = None  # channel prompting (params.prompts), set by fit

    # -- what it is (nlpgd.models.base): the family is the training objective (GPT2Params.objective)
    family = property(lambda self: self.params.objective)
    pair_kind = property(lambda self: None if self.family == "hybrid" else lm_pair_kind(self.params.checkpoint))

    def input_settings(self) -> dict:
        return {"tokenizer": "byte-level BPE", **self.params.model_dump(include={"checkpoint", "max_length"})}

    def training_summary(self) -> dict[str, str]:
        return {**self.trainer_summary(), **lm_training_summary(self.params)}

    # -- prior ------------------------------------------------------------------------
    def _fitted_prior(self, labels: list[str]) -> dict[str, float]:
        return assumed_prior(self.params, self.classes_, self.class_log_prior_, self.stream_shares_)

    def log_prior(self) -> np.ndarray:
        """The log prior predict uses: the one ``set_prior`` replaced, else ``params.prior``,
        else ``class_log_prior_``."""
        self._check_fitted()
        replaced = getattr(self, "replaced_prior_", None)
        if replaced is not None:
            return check_prior(replaced, self.classes_)
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
            texts, labels = per_class_subset(texts, labels, self.classes_, p.max_train_per_class, ctx.seed)
            # prefix conditioning trains on the class-balanced corpus, and so does its BPE
            reps = class_repeats(labels, self.classes_, p.class_balance) if p.conditioning == "prefix" else {}
            corpus = [t for t, y in zip(texts, labels) for _ in range(reps.get(y, 1))]
            self.stream_shares_ = np.array([labels.count(c) * reps.get(c, 1) for c in self.classes_], dtype=float)
            with hf_progress_bars(ctx.progress):
                self.tokenizer_, base = tokenizer_and_base(p, self.classes_, corpus, work, ctx.resume)
            self.class_log_prior_ = np.log(counts / counts.sum())
            start = "per_class" if p.prompts is not None else p.conditioning  # channel: a bare start token
            self.eos_id_, self.pad_id_, self.start_ids_ = special_ids(self.tokenizer_, self.classes_, start)
            self.max_length_ = min(p.max_length, max_positions(base))
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
        self.channel_ = channel.fit_channel(self, texts, labels, ctx.seed) if p.prompts is not None else None

    def _fit_lm(self, model, texts, labels, ctx: FitContext, out_dir: Path, repeats: dict[str, int] | None = None):
        """``_train_lm``, or the pretrained model as it is when ``epochs`` is 0."""
        if self.params.epochs == 0:
            return model.eval()
        return self._train_lm(model, texts, labels, ctx, out_dir, repeats)

    def encode(self, texts: Sequence[str], limit: int | None = None) -> list[list[int]]:
        """Each text's token ids as the model reads it (lowercased when ``lowercase``); a
        message containing "<|spam|>" is plain text, not the label (split_special_tokens).

        ``limit``: only the first ``limit`` ids are wanted (all of a shorter text's): a learned
        byte-level BPE then encodes each long message's head alone (:func:`message_head`),
        and the whole message when the head holds fewer ids. A long e-mail is mostly cut
        by ``max_length`` anyway, and encoding its whole body was most of the tokenizer's time."""
        if not len(texts):
            return []
        texts = [t.lower() for t in texts] if self.params.lowercase else list(texts)
        if limit is None or self.params.checkpoint != "scratch":  # another tokenizer may split otherwise
            return self._token_ids(texts)
        heads = [message_head(t, limit) for t in texts]
        ids = self._token_ids(heads)
        short = [i for i, (h, t, x) in enumerate(zip(heads, texts, ids)) if len(x) < limit and len(h) < len(t)]
        for i, whole in zip(short, self._token_ids([texts[i] for i in short])):
            ids[i] = whole
        return ids

    def _token_ids(self, texts: list[str]) -> list[list[int]]:
        if not texts:
            return []
        return self.tokenizer_(texts, add_special_tokens=False, split_special_tokens=True)["input_ids"]

    def _wrap(self, ids: list[int], label: str, *, end: bool = True) -> list[int]:
        return wrap(ids, self.start_ids_[label], self.eos_id_, self.max_length_, with_end=end)

    def lm_dataset(self, texts: Sequence[str], labels: Sequence[str], repeats: dict[str, int] | None = None):
        """The training sequences of ``texts`` (each behind its label's start token) as a
        Dataset; ``repeats`` (label -> times) oversamples the rarer classes."""
        seqs = [self._wrap(ids, y) for ids, y in zip(self.encode(texts, self.max_length_), labels)]
        position = {c: i for i, c in enumerate(self.classes_)}
        times = {position[c]: k for c, k in (repeats or {}).items()}
        return lm_dataset(seqs, [position[y] for y in labels], times)

    def _train_lm(self, model, texts, labels, ctx: FitContext, out_dir: Path, repeats: dict[str, int] | None = None):
        """Train one LM on ``texts`` (each wrapped with its label's start token) in ``out_dir``,
        resuming from that folder's newest intact checkpoint when ``ctx.resume``."""
        train_ds = self.lm_dataset(texts, labels, repeats)
        eval_ds = None
        if ctx.validation is not None:
            keep = [(str(t), str(y)) for t, y in zip(*ctx.validation) if str(y) in set(labels)]
            if keep:
                eval_ds = self.lm_dataset([t for t, _ in keep], [y for _, y in keep])
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
        return list({id(lm): lm for lm in self.lms_.values()}.values())

    def class_log_likelihoods(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        sort: bool = True,
        fixed_padding: bool = False,
        prefix: bool = False,
    ) -> np.ndarray:
        """``log P(x | y)`` as an (n, len(labels)) float64 array (:mod:`nlpgd.models.lm_scoring`);
        with ``prefix``, the likelihood of ``x`` as the beginning of a message (no end token).

        Sequences are sorted by length and batched with their neighbours (``sort``); the labels
        sharing one LM (all of them with prefix conditioning) are scored in one forward pass.
        ``sort=False, fixed_padding=True`` is the naive baseline the benchmark compares to.
        """
        self._check_fitted()
        texts, labels = [str(t) for t in texts], [str(y) for y in labels]
        if self.channel_ is not None:
            return channel.classifier_log_likelihoods(self, self.channel_, texts, labels)
        out = np.zeros((len(texts), len(labels)), dtype=np.float64)
        if not texts:
            return out
        body = self.encode(texts, self.max_length_)
        groups: dict[int, list[int]] = {}  # LM -> the label columns it scores
        for j, y in enumerate(labels):
            groups.setdefault(id(self.lms_[y]), []).append(j)
        jobs = [
            ScoreJob(
                self.lms_[labels[cols[0]]], [[self._wrap(ids, labels[j], end=not prefix) for ids in body] for j in cols]
            )
            for cols in groups.values()
        ]
        scores = score_jobs(
            jobs,
            filler_id=self.eos_id_,
            batch_size=self.params.eval_batch_size,
            sort=sort,
            fixed_width=self.max_length_ if fixed_padding else None,
            progress=self.progress,
        )
        for cols, ll in zip(groups.values(), scores):
            out[:, cols] = ll
        return out

    def log_likelihood(self, texts: Sequence[str], label: str) -> np.ndarray:
        """``log P(text | label)`` (nats): message tokens plus the end token, per text."""
        self._class_index(label)
        return self.class_log_likelihoods(list(texts), [str(label)])[:, 0]

    def token_log_likelihoods(self, text: str, label: str) -> list[tuple[str, float]]:
        """Each scored token of ``text`` (and the end token) with its ``log P`` under ``label``."""
        self._class_index(label)
        if self.channel_ is not None:
            return channel.classifier_token_scores(self, self.channel_, str(text), str(label))
        seq = self._wrap(self.encode([str(text)])[0], str(label))
        lm = self.lms_[str(label)]
        lm.eval()
        with torch.inference_mode(), autocast(lm.device.type):
            logits = lm(input_ids=torch.tensor([seq], device=lm.device)).logits
        logp = torch.log_softmax(logits.float()[0, :-1], dim=-1)
        targets = seq[1:]
        values = logp[torch.arange(len(targets)), torch.tensor(targets)].tolist()
        tokens = [self.tokenizer_.decode([t]) for t in targets]
        return list(zip(tokens, values))

    def predict_log_joint(self, texts: Sequence[str], *, prefix: bool = False) -> np.ndarray:
        """Unnormalised ``log P(x, y) = log P(x | y) + log P(y)`` (columns in ``classes_`` order);
        ``prefix``: ``x`` as the observed beginning of a message, without the end token's term."""
        self._check_fitted()
        return self.class_log_likelihoods(list(texts), list(self.classes_), prefix=prefix) + self.log_prior()

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        return softmax_rows(self.predict_log_joint(texts))

    def stack_scores(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """For a stacked ensemble: the log-likelihood ratio ``log P(x | classes_[1]) - log P(x |
        classes_[0])``, raw and per scored token (the message's tokens and its end token)."""
        self._check_fitted()
        texts = [str(t) for t in texts]
        ll = self.class_log_likelihoods(texts, list(self.classes_))
        llr = ll[:, 1] - ll[:, 0]
        first = self.classes_[0]
        n_scored = np.array(
            [len(self._wrap(ids, first)) - 1 for ids in self.encode(texts, self.max_length_)], dtype=np.float64
        )
        return {"llr": llr, "llr_per_token": llr / np.maximum(n_scored, 1)}

    # -- sampling ---------------------------------------------------------------------
    def generate(
        self,
        label: str,
        n: int,
        *,
        seed: int = 0,
        progress: bool = True,
        prompts: Sequence[str] | None = None,
        chat: Sequence[str] | None = None,
        **settings: Any,
    ) -> list[str]:
        """``n`` distinct messages sampled from ``P(x | label)``; the same seed gives the same list.

        ``settings``: ``temperature``, ``top_k``, ``top_p``, ``max_new_tokens``
        (:class:`~nlpgd.sampling.SamplingSettings`, whose defaults the others take).
        With ``prompts``, every message starts with one of them (used in turn, equal shares)
        and continues it: samples from ``P(x | label, x starts with the prompt)``.
        With ``chat``, each message is instead the model's reply to one of these user messages
        (instructions, e.g. with real examples to imitate: ``nlpgd generate --shots``), rendered
        with the tokenizer's chat template; no label token is used. They are used in turn, one
        per sample, so ``n`` instructions give each sample its own.
        """
        label = str(label)
        self._class_index(label)
        n, chosen = check_count(n), SamplingSettings.from_options(settings)
        if prompts is not None and chat is not None:
            raise NlpgdError("give prompts to continue or chat instructions, not both")
        lm, cut = self.lms_[label], 0
        if chat is None and prompts is None and self.channel_ is not None:  # what follows the class's prompt
            context = channel.classifier_contexts(self, self.channel_)[label]
            draw, cut = sampling.continuation_draw(lm, [context], chosen, self.eos_id_, self.pad_id_), len(context) - 1
        elif chat is None:
            prefixes = sampling.prompt_prefixes(lm, self.start_ids_[label], prompts, self.encode)
            draw = sampling.continuation_draw(lm, prefixes, chosen, self.eos_id_, self.pad_id_)
        else:
            tok, checkpoint = self.tokenizer_, self.params.checkpoint
            prefixes = sampling.chat_prefixes(lm, tok, chat, chosen.max_new_tokens, checkpoint)
            draw = sampling.chat_draw(lm, prefixes, chosen, self.eos_id_, self.pad_id_)
        decode = lambda rows: sampling.decode_rows(self.tokenizer_, [r[cut:] for r in rows], self.eos_id_)
        return sampling.sample_texts(lm, n, seed, draw, decode, label=label, progress=progress)

    # -- persistence ------------------------------------------------------------------
    def n_parameters(self) -> int | None:
        self._check_fitted()
        return int(sum(p.numel() for lm in self._unique_lms() for p in lm.parameters()))

    def _meta_extra(self) -> dict[str, Any]:
        return {"conditioning": self.params.conditioning, "checkpoint": self.params.checkpoint}

    def _save(self, path: Path) -> None:
        with hf_progress_bars(self.progress):
            self.tokenizer_.save_pretrained(path / "tokenizer")
            lm_dirs, formats = save_lms(self.lms_, self.classes_, path, self.params)
        write_json(
            path / STATE_FILE,
            {
                "classes": [str(c) for c in self.classes_],
                "class_log_prior": [float(v) for v in self.class_log_prior_],
                "label_tokens": {str(c): self.tokenizer_.convert_ids_to_tokens(i) for c, i in self.start_ids_.items()},
                "eos_token": self.tokenizer_.convert_ids_to_tokens(self.eos_id_),
                "pad_token": self.tokenizer_.convert_ids_to_tokens(self.pad_id_),
                "max_length": self.max_length_,
                "channel": None if self.channel_ is None else self.channel_.as_dict(),
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
            self.channel_ = Channel.from_dict(state["channel"]) if state.get("channel") else None
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
                loaded[folder] = on_device(lm)
            self.lms_[c] = loaded[folder]
