"""Scoring token sequences with causal LMs: ``log P`` of each row, batched by length.

Used by the GPT-2 classifier (``log P(x | y)`` for every class) and by the realism check's
reference LM (:class:`ReferenceLM`, below). One call, :func:`score_jobs`:

- a :class:`ScoreJob` is one LM and one or more *columns* of token rows; row ``i`` of every
  column belongs to item ``i`` and has the same length (with prefix conditioning the columns
  are the same message behind each class's label token, and one forward pass scores them all);
- items are sorted by length and batched with their neighbours (``sort``), at most
  ``batch_size`` items and :func:`logits_budget` logits (rows x width x vocab) a batch
  (:data:`LOGITS_BUDGET` on the CPU, a share of the free memory on a GPU), so long messages
  and big vocabularies do not run out of memory;
- each batch runs under ``torch.inference_mode`` and bf16/fp16 autocast on CUDA (the
  log-softmax is float32), on the LM's own device (:func:`on_device` puts it on the GPU);
- the output layer runs only at the positions a token is scored from (:func:`head_only_at`:
  no vocabulary-wide logits for padding or a row's last token), GPT-2's activation is torch's
  fused tanh GELU while scoring (:func:`fused_activations`), and each row's log-probabilities
  are summed in float64;
- a row's score sums ``log P(token | tokens before it)`` over its tokens but the first (the
  label or start token conditions the rest and is never scored); padding is never scored
  (right padding, no attention mask: see :func:`nlpgd.models.causal_lm.collate`). A row
  with nothing to score scores 0 and is not run.

What the rows hold is the caller's choice, which is where two planned features slot in:

- **prefix likelihood** (score a message without its end token): build the rows without
  the end token (``nlpgd.models.lm_data.wrap(..., end=False)``); nothing here changes;
- **channel prompting** (``log P(x | "The following is a spam message:\\n")``,
  :mod:`nlpgd.models.channel`): give the prompt's token ids as ``context``: they condition
  every row and are never scored (the row's first token is then scored too). The context's
  key/value cache is computed once per call (:class:`ContextCache`) and every batch continues
  from a copy of it, expanded to the batch (:func:`_forward_cached`); at most
  :data:`CACHE_BUDGET` bytes of copied cache a batch. ``reuse_cache=False`` prepends the
  context to every row instead (the reference the cached path is tested against).
"""

from __future__ import annotations

import copy
import inspect
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Callable, Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from nlpgd.errors import NlpgdError
from nlpgd.models.causal_lm import load_causal_lm, max_positions, padded_batch, sequence_log_likelihood
from nlpgd.models.hf_base import autocast, device

#: largest float32 logits tensor (rows * length * vocab) one scoring batch may build on the CPU
LOGITS_BUDGET = 48_000_000
#: on a CUDA device, bytes of free device memory per logit of a batch: the bf16 logits, their
#: float32 copy and the log-softmax take about 10 bytes each, so this keeps a batch's logits
#: to about a third of the free memory
CUDA_BYTES_PER_LOGIT = 32
PROGRESS_MIN_BATCHES = 8  # fewer batches than this: no progress bar
#: largest key/value cache (bytes) a batch may copy from a reused context
CACHE_BUDGET = 512 * 2**20


@dataclass
class ScoreJob:
    """One LM and the columns of token rows it scores (``columns[j][i]``: item ``i``)."""

    lm: Any
    columns: list[list[list[int]]]
    batches: list[list[int]] = field(default_factory=list)  # filled by score_jobs


def on_device(lm):
    """``lm`` in eval mode on the device scoring and sampling use (the GPU when there is one)."""
    return lm.to(device()).eval()


def logits_budget(dev=None) -> int:
    """How many logits one scoring batch may build on ``dev``: :data:`LOGITS_BUDGET` on the CPU,
    on a CUDA device its free memory over :data:`CUDA_BYTES_PER_LOGIT` (never less than the CPU
    budget), so a GPU scores hundreds of messages a batch where the CPU scores a few."""
    dev = torch.device(dev) if dev is not None else device()
    if dev.type != "cuda":
        return LOGITS_BUDGET
    free, _total = torch.cuda.mem_get_info(dev)
    return max(LOGITS_BUDGET, int(free) // CUDA_BYTES_PER_LOGIT)


def vocab_size(lm) -> int:
    return int(lm.get_output_embeddings().weight.shape[0])


def length_batches(
    lengths: Sequence[int],
    *,
    batch_size: int,
    rows_per_item: int = 1,
    vocab: int,
    sort: bool = True,
    fixed_width: int | None = None,
    budget: int | None = None,
) -> Iterator[list[int]]:
    """Index batches over items of these lengths: by ascending length (``sort``, stable) so that
    each batch pads little; at most ``batch_size`` items, and at most ``budget`` logits counting
    ``rows_per_item`` rows per item, each as wide as the batch's longest (or ``fixed_width``); ``budget`` defaults to
    :data:`LOGITS_BUDGET`."""
    budget = LOGITS_BUDGET if budget is None else budget
    order = np.argsort(lengths, kind="stable") if sort else np.arange(len(lengths))
    batch: list[int] = []
    width = 0
    for i in order:
        w = fixed_width if fixed_width else max(width, lengths[i])
        if batch and (len(batch) >= batch_size or (len(batch) + 1) * rows_per_item * w * vocab > budget):
            yield batch
            batch, w = [], (fixed_width if fixed_width else lengths[i])
        batch.append(int(i))
        width = w
    if batch:
        yield batch


@torch.inference_mode()
def score_jobs(
    jobs: Sequence[ScoreJob],
    *,
    filler_id: int,
    batch_size: int,
    sort: bool = True,
    fixed_width: int | None = None,
    context: Sequence[int] = (),
    reuse_cache: bool = True,
    progress: bool = False,
    desc: str = "scoring",
) -> list[np.ndarray]:
    """For each job, an ``(n items, n columns)`` float64 array of row log-likelihoods (nats).

    ``fixed_width`` pads every batch to that width (with ``sort=False``: the naive baseline a
    benchmark compares to); ``context`` is token ids before every row, conditioning it and
    never scored, its key/value cache computed once and reused (``reuse_cache``; see the module
    docstring); ``progress`` shows a bar when there are at least ``PROGRESS_MIN_BATCHES`` batches."""
    from tqdm.auto import tqdm

    context = [int(t) for t in context]
    caches = [ContextCache(job.lm, context) if context and reuse_cache else None for job in jobs]
    for job, cache in zip(jobs, caches):
        _plan(job, len(context), cache, batch_size=batch_size, sort=sort, fixed_width=fixed_width)
    n_batches = sum(len(job.batches) for job in jobs)
    total = sum(len(job.columns) * len(job.columns[0]) for job in jobs)
    show = progress and n_batches >= PROGRESS_MIN_BATCHES
    with tqdm(total=total, desc=desc, unit="seq", disable=not show, leave=False) as bar:
        return [_score_job(job, filler_id, fixed_width, context, cache, bar.update) for job, cache in zip(jobs, caches)]


def _plan(job: ScoreJob, n_context: int, cache: "ContextCache | None", **batching) -> None:
    """Fill ``job.batches``: the items with something to score, batched by length (a cached
    context is not part of a row's width, and its copies count against :data:`CACHE_BUDGET`)."""
    if cache is None:
        lengths = [n_context + len(r) for r in job.columns[0]]
        todo = [i for i, n in enumerate(lengths) if n > 1]  # a lone token has nothing to score
    else:
        lengths = [len(r) for r in job.columns[0]]
        todo = [i for i, n in enumerate(lengths) if n > 0]
        rows_per_copy = max(1, CACHE_BUDGET // max(cache.nbytes, 1))
        batching["batch_size"] = max(1, min(batching["batch_size"], rows_per_copy // len(job.columns)))
    plan = length_batches(
        [lengths[i] for i in todo],
        rows_per_item=len(job.columns),
        vocab=vocab_size(job.lm),
        budget=logits_budget(job.lm.device),
        **batching,
    )
    job.batches = [[todo[k] for k in b] for b in plan]


def _score_job(
    job: ScoreJob, filler_id: int, fixed_width, context: list[int], cache: "ContextCache | None", done: Callable
) -> np.ndarray:
    n_items, n_cols = len(job.columns[0]), len(job.columns)
    out = np.zeros((n_items, n_cols), dtype=np.float64)
    job.lm.eval()
    with fused_activations(job.lm):
        for batch in job.batches:
            if cache is None:
                rows = [context + job.columns[j][i] for j in range(n_cols) for i in batch]
                ll = _forward(job.lm, rows, filler_id, fixed_width, len(context))
            else:
                rows = [job.columns[j][i] for j in range(n_cols) for i in batch]
                ll = _forward_cached(job.lm, cache, rows, filler_id, fixed_width)
            out[batch] = ll.reshape(n_cols, len(batch)).T
            done(len(rows))
    return out


def _forward(lm, rows: list[list[int]], filler_id: int, fixed_width: int | None, n_context: int) -> np.ndarray:
    """``log P`` of each row's scored tokens: one forward pass of ``lm`` (the first
    ``n_context`` tokens of every row are the shared context: conditioning, never scored)."""
    ids, targets = padded_batch(rows, filler_id, fixed_width)
    if n_context > 1:
        targets[:, : n_context - 1] = -100  # targets[t] is token t + 1: the context's own tokens
    ll = target_log_likelihood(lm, ids.to(lm.device), targets.to(lm.device))
    return ll.cpu().numpy()


def target_log_likelihood(lm, ids: torch.Tensor, targets: torch.Tensor, **forward) -> torch.Tensor:
    """``log P`` of each row's targets (float64, one per row; -100 marks a position with none):
    one forward pass of ``lm`` whose output layer runs only at the positions with a target
    (:func:`head_only_at`), each target's log-probability from the float32 log-softmax of
    its position's logits, summed per row in float64 (float32 sums of a long message's
    hundreds of nats were off by up to 1e-4)."""
    keep = targets != -100
    with head_only_at(lm, keep), autocast(lm.device.type):
        logits = lm(input_ids=ids, **forward).logits.float()
    if logits.dim() == 3:  # a model that does not call its output layer on its hidden states
        return sequence_log_likelihood(logits, targets).double()
    logp = -F.cross_entropy(logits, targets[keep], reduction="none")
    rows = keep.nonzero()[:, 0]
    return torch.zeros(len(ids), dtype=torch.float64, device=ids.device).index_add_(0, rows, logp.double())


@contextmanager
def head_only_at(lm, keep: torch.Tensor) -> Iterator[None]:
    """While open, ``lm``'s output layer (its ``get_output_embeddings()``) sees only the hidden
    states where ``keep`` (rows x width, bool) is true, flattened: the logits come out as
    ``(keep.sum(), vocab)``. Scoring needs a position's logits only where a target follows it,
    and the vocabulary-wide logits and their normalisation are most of a small LM's forward
    pass, so the padding and each row's last position cost nothing there. Whatever the model
    does after its output layer (a scale, a soft cap) still applies."""

    def at_kept(_module, args):
        hidden = args[0]
        return (hidden[keep] if hidden.dim() == 3 and hidden.shape[:2] == keep.shape else hidden, *args[1:])

    handle = lm.get_output_embeddings().register_forward_pre_hook(at_kept)
    try:
        yield
    finally:
        handle.remove()


@contextmanager
def fused_activations(lm) -> Iterator[None]:
    """While open, ``lm``'s GPT-2 activations (transformers' ``NewGELUActivation``: the tanh
    approximation of GELU written as eight element-wise tensor operations, a sixth of the
    scratch GPT-2's scoring CPU time) are torch's one fused kernel for the same formula
    (``GELU(approximate="tanh")``; equal to float32 rounding). Put back on exit."""
    from transformers.activations import NewGELUActivation

    swapped = [
        (parent, name, child)
        for parent in lm.modules()
        for name, child in parent.named_children()
        if type(child) is NewGELUActivation
    ]
    fused = torch.nn.GELU(approximate="tanh")
    for parent, name, _ in swapped:
        setattr(parent, name, fused)
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


def _cache_argument(lm) -> str:
    """The name ``lm.forward`` takes a key/value cache by: ``cache`` (transformers >= 5.2x),
    else ``past_key_values``."""
    return "cache" if "cache" in inspect.signature(lm.forward).parameters else "past_key_values"


class ContextCache:
    """A context's key/value cache, computed once, and the log-probabilities of the token that
    follows it (a row's first token, which the cached forward pass does not predict)."""

    def __init__(self, lm, context: Sequence[int]):
        ids = torch.tensor([list(context)], dtype=torch.long, device=lm.device)
        with autocast(lm.device.type):
            out = lm(input_ids=ids, use_cache=True)
        self.cache = out.get("cache") if out.get("cache") is not None else out.get("past_key_values")
        if self.cache is None:
            raise NlpgdError(f"{type(lm).__name__} returns no key/value cache to reuse a prompt with")
        self.first_logp = torch.log_softmax(out.logits[0, -1].float(), dim=-1)
        layers = getattr(self.cache, "layers", [])
        self.nbytes = sum(
            t.numel() * t.element_size()
            for layer in layers
            for t in (getattr(layer, "keys", None), getattr(layer, "values", None))
            if t is not None
        )
        self.argument = _cache_argument(lm)

    def expanded(self, n: int):
        """A copy of the cache for a batch of ``n`` rows (each forward pass extends its own)."""
        cache = copy.deepcopy(self.cache)
        cache.batch_repeat_interleave(n)
        return cache


def _forward_cached(lm, prefix: ContextCache, rows: list[list[int]], filler_id: int, fixed_width) -> np.ndarray:
    """``log P`` of every token of each row after the cached context: the first token from the
    context's last position, the rest from one forward pass over the rows."""
    ids, targets = padded_batch(rows, filler_id, fixed_width)
    ids, targets = ids.to(lm.device), targets.to(lm.device)
    ll = target_log_likelihood(lm, ids, targets, use_cache=True, **{prefix.argument: prefix.expanded(len(rows))})
    first = prefix.first_logp.to(lm.device)[ids[:, 0]]
    return (ll + first.double()).cpu().numpy()


class ReferenceLM:
    """A pretrained causal LM that scores plain text (the realism check's reference model).

    :meth:`score` gives each text's ``log P`` (nats) summed over its own tokens, each token
    conditioned on the model's start-of-text token and the tokens before it, and the number
    of tokens scored; texts are lowercased first when ``lowercase``. The model runs on the
    GPU when there is one, batched as the classifier's scoring is (:func:`score_jobs`).
    """

    def __init__(self, checkpoint: str, *, batch_size: int = 16, lowercase: bool = True):
        self.checkpoint = checkpoint
        self.tokenizer, model = load_causal_lm(checkpoint)
        self.model = on_device(model)
        self.batch_size = batch_size
        self.lowercase = lowercase
        tok = self.tokenizer
        self.start_id = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
        if self.start_id is None:
            raise NlpgdError(f"reference model '{checkpoint}' has neither a start nor an end token to condition on")

    def score(self, texts: list[str]) -> tuple[list[float], list[int]]:
        """``(log-likelihoods, token counts)``, one of each per text, in order."""
        texts = [t.lower() if self.lowercase else t for t in map(str, texts)]
        limit = max_positions(self.model) - 1
        body = [ids[:limit] for ids in self.tokenizer(texts, add_special_tokens=False)["input_ids"]] if texts else []
        job = ScoreJob(self.model, [[[self.start_id, *ids] for ids in body]])
        (ll,) = score_jobs([job], filler_id=self.start_id, batch_size=self.batch_size)
        return [float(v) for v in ll[:, 0]], [len(ids) for ids in body]
