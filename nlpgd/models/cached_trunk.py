"""Fine-tune only the top blocks of a pretrained causal LM, on cached trunk states (issue 19, lever 4).

A full fine-tune of SmolLM2 on CPU pays for every block on every step, forward and backward.
Here the lower blocks (the *trunk*) are frozen, run **once** over the training messages, and
their output (the hidden states entering block ``k``) is kept; every epoch then runs and trains
only the top ``n_top`` blocks on those cached states. The embeddings, the trunk, the final norm
and the language-model head (tied to the embeddings in SmolLM2) stay as they were, so the cache
stays valid while the top trains, and the fine-tuned model is the original model with its top
blocks replaced: no adapter to merge, generation and scoring as before.

The top runs through the model's own forward with its decoder's block list cut to the top
blocks and the cached states given as ``inputs_embeds``: with rotary positions (Llama, SmolLM2)
nothing is added to the input embeddings, so this is the same computation as the full model
(``tests/test_cached_trunk.py`` checks the loss to 1e-5). Decoders that add position embeddings
to ``inputs_embeds`` (GPT-2's learned positions) would be shifted by them and are refused.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field
from typing import Iterator, Sequence

import torch

from nlpgd.errors import NlpgdError

log = logging.getLogger(__name__)


@dataclass
class CachedBatch:
    states: torch.Tensor  # (batch, length, hidden): the hidden states entering the first top block
    input_ids: torch.Tensor
    attention_mask: torch.Tensor


@dataclass
class TopFit:
    losses: list[float] = field(default_factory=list)  # mean training loss per epoch
    cache_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)


def decoder_blocks(model) -> tuple[torch.nn.Module, torch.nn.ModuleList]:
    """The decoder (the module holding the block list) and its blocks; one sentence for an
    architecture whose blocks are not a ``layers`` list under rotary positions."""
    decoder = getattr(model, "model", None)
    layers = getattr(decoder, "layers", None)
    if not isinstance(layers, torch.nn.ModuleList) or not hasattr(decoder, "rotary_emb"):
        raise NlpgdError(
            f"the cached-trunk fine-tune needs a decoder with rotary positions and a 'layers' block list "
            f"(Llama, SmolLM2); {type(model).__name__} has none"
        )
    return decoder, layers


def split_point(model, n_top: int) -> int:
    """The index of the first top block (``n_top`` of the model's blocks train)."""
    _, layers = decoder_blocks(model)
    if isinstance(n_top, bool) or not isinstance(n_top, int) or not 1 <= n_top <= len(layers):
        raise NlpgdError(f"top blocks to train must be a whole number from 1 to {len(layers)}; got {n_top!r}")
    return len(layers) - n_top


@contextlib.contextmanager
def only_blocks(model, start: int, stop: int | None = None) -> Iterator[None]:
    """The model with its decoder's block list cut to ``blocks[start:stop]`` for the duration."""
    decoder, layers = decoder_blocks(model)
    decoder.layers = torch.nn.ModuleList(list(layers)[start:stop])
    try:
        yield
    finally:
        decoder.layers = layers


@torch.no_grad()
def cache_trunk(model, k: int, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The hidden states entering block ``k`` (the trunk's output, before the final norm)."""
    decoder, _ = decoder_blocks(model)
    seen: list[torch.Tensor] = []
    hook = decoder.norm.register_forward_pre_hook(lambda _module, args: seen.append(args[0].detach()))
    try:
        with only_blocks(model, 0, k):
            model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
    finally:
        hook.remove()
    return seen[-1]


def lm_labels(input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Next-token targets: the ids, with padding left out of the loss."""
    return input_ids.masked_fill(attention_mask == 0, -100)


def top_loss(model, k: int, batch: CachedBatch) -> torch.Tensor:
    """The causal-LM loss of the whole model on ``batch``, computed from its cached trunk states
    through the top blocks (from ``k``), the final norm and the head only."""
    with only_blocks(model, k):
        out = model(
            inputs_embeds=batch.states,
            attention_mask=batch.attention_mask,
            labels=lm_labels(batch.input_ids, batch.attention_mask),
            use_cache=False,
        )
    return out.loss


def freeze_all_but_top(model, k: int) -> list[torch.nn.Parameter]:
    """Freeze every parameter but the blocks from ``k`` up; the trainable ones."""
    _, layers = decoder_blocks(model)
    for p in model.parameters():
        p.requires_grad_(False)
    top = [p for block in list(layers)[k:] for p in block.parameters()]
    for p in top:
        p.requires_grad_(True)
    return top


def fine_tune_top(
    model,
    batches: Sequence[tuple[torch.Tensor, torch.Tensor]],
    *,
    n_top: int,
    epochs: int,
    learning_rate: float = 1e-4,
    seed: int = 0,
) -> TopFit:
    """Train the top ``n_top`` blocks of ``model`` in place on ``batches`` of
    ``(input_ids, attention_mask)``: the trunk runs once (its states cached), then ``epochs``
    passes over the cached batches, in a seeded order, train only the top."""
    if epochs < 1:
        raise NlpgdError(f"epochs must be 1 or more; got {epochs!r}")
    k = split_point(model, n_top)
    fit = TopFit()
    model.eval()  # the trunk: no dropout while its states are cached
    t0 = time.perf_counter()
    cached = [CachedBatch(cache_trunk(model, k, ids, mask), ids, mask) for ids, mask in batches]
    fit.cache_seconds = time.perf_counter() - t0
    params = freeze_all_but_top(model, k)
    optim = torch.optim.AdamW(params, lr=learning_rate)
    order = torch.Generator().manual_seed(seed)
    model.train()
    for epoch in range(epochs):
        t0, total = time.perf_counter(), 0.0
        for i in torch.randperm(len(cached), generator=order).tolist():
            loss = top_loss(model, k, cached[i])
            optim.zero_grad()
            loss.backward()
            optim.step()
            total += float(loss.detach())
        fit.losses.append(total / max(len(cached), 1))
        fit.epoch_seconds.append(time.perf_counter() - t0)
        log.info("top %d blocks, epoch %d/%d: loss %.4f", n_top, epoch + 1, epochs, fit.losses[-1])
    model.eval()
    return fit
