"""Sampling messages from a causal LM: the one place that calls ``lm.generate``.

:func:`sample_texts` draws ``n`` distinct non-empty messages in rounds seeded from ``seed``
(the same seed gives the same list), in one of two ways:

- continuation (:func:`continuation_draw`): every sequence starts with a prefix of token ids
  (the class's start token, then optionally a prompt's tokens, :func:`prompt_prefixes`);
  the prefixes take equal shares, one ``generate`` call per prefix, so nothing is padded;
- chat (:func:`chat_draw`): each message is the model's reply to one instruction rendered
  with the tokenizer's chat template (:func:`chat_prefixes`), padded on the left and sampled
  ``CHAT_BATCH`` at a time.

Both call :func:`generate_ids` with a checked :class:`~nlpgd.sampling.SamplingSettings`
(temperature, top_k, top_p, max_new_tokens, typical_p, min_p), under inference mode and bf16/fp16 autocast on
CUDA. The pad token is never drawn (it is not text: decoding dropped it, and the tokens after it
were drawn as if it were), and a row that has ended is filled with the end token (each row is cut
at its first one): ``generate`` drops an all-ones attention mask (unpadded prefixes) and GPT-2
then warned about any pad token it was fed ("We strongly recommend passing in an `attention_mask`").
Nothing here knows about classes or labels: the caller gives the prefixes.
"""

from __future__ import annotations

import warnings
from typing import Callable, Sequence

import torch

from nlpgd.errors import NlpgdError
from nlpgd.models.causal_lm import max_positions
from nlpgd.models.hf_base import autocast
from nlpgd.sampling import SamplingSettings, check_count

GEN_BATCH = 100  # sequences sampled in parallel
GEN_ROUNDS = 10  # sampling rounds to reach n distinct samples
CHAT_BATCH = 25  # instruction prompts (hundreds of tokens each) sampled together

#: ``draw(start, b)``: ``b`` sampled token rows (prefix left out), the ``start``-th drawn first
Draw = Callable[[int, int], list[list[int]]]


def generate_ids(
    lm, ids: torch.Tensor, mask: torch.Tensor, settings: SamplingSettings, max_new_tokens: int, eos_id: int, pad_id: int
) -> torch.Tensor:
    """``lm.generate`` with sampling on: the prefixes ``ids`` and what follows them, never
    ``pad_id`` (unless it is the end token, as in a checkpoint used as it is), a row that has
    ended filled with ``eos_id``."""
    with torch.inference_mode(), autocast(lm.device.type):
        return lm.generate(
            input_ids=ids.to(lm.device),
            attention_mask=mask.to(lm.device),
            do_sample=True,
            temperature=settings.temperature,
            top_k=settings.top_k,
            top_p=settings.top_p,
            typical_p=settings.typical_p,
            min_p=settings.min_p or None,  # None: no min-p warper at all
            max_new_tokens=max_new_tokens,
            eos_token_id=eos_id,
            pad_token_id=eos_id,  # the filler after a row's end (see the module's note)
            suppress_tokens=None if pad_id == eos_id else [pad_id],
        )


def continuation_draw(lm, prefixes: list[list[int]], settings: SamplingSettings, eos_id: int, pad_id: int) -> Draw:
    """``draw(start, b)``: ``b`` sequences split evenly over ``prefixes``, each without its
    first token (the start token; a prompt's tokens stay, so a sample begins with its prompt)."""

    def draw(start: int, b: int) -> list[list[int]]:
        rows: list[list[int]] = []
        for i, prefix in enumerate(prefixes):
            share = b // len(prefixes) + (i < b % len(prefixes))
            if share == 0:
                continue
            ids = torch.tensor([prefix] * share, dtype=torch.long)
            max_new = min(settings.max_new_tokens, max_positions(lm) - len(prefix))
            rows.extend(generate_ids(lm, ids, torch.ones_like(ids), settings, max_new, eos_id, pad_id)[:, 1:].tolist())
        return rows

    return draw


def chat_draw(lm, prefixes: list[list[int]], settings: SamplingSettings, eos_id: int, pad_id: int) -> Draw:
    """``draw(start, b)``: one reply each to prefixes ``start .. start + b - 1`` (in turn),
    left-padded and sampled ``CHAT_BATCH`` at a time; the prefix is left out of each row."""

    def draw(start: int, b: int) -> list[list[int]]:
        chosen = [prefixes[(start + i) % len(prefixes)] for i in range(b)]
        rows: list[list[int]] = []
        for i in range(0, len(chosen), CHAT_BATCH):
            chunk = chosen[i : i + CHAT_BATCH]
            width = max(len(p) for p in chunk)
            ids = torch.full((len(chunk), width), pad_id, dtype=torch.long)
            mask = torch.zeros_like(ids)
            for r, p in enumerate(chunk):
                ids[r, width - len(p) :] = torch.as_tensor(p)
                mask[r, width - len(p) :] = 1
            gen = generate_ids(lm, ids, mask, settings, settings.max_new_tokens, eos_id, pad_id)
            rows.extend(gen[:, width:].tolist())
        return rows

    return draw


def decode_rows(tok, rows: list[list[int]], eos_id: int) -> list[str]:
    """Each row up to its first end token, decoded without special tokens and stripped."""
    out = []
    for row in rows:
        if eos_id in row:
            row = row[: row.index(eos_id)]
        out.append(tok.decode(row, skip_special_tokens=True).strip())
    return out


def sample_texts(
    lm, n: int, seed: int, draw: Draw, decode: Callable[[list[list[int]]], list[str]], *, label: str, progress: bool
) -> list[str]:
    """Up to ``n`` distinct non-empty texts from ``draw``, in ``GEN_ROUNDS`` rounds seeded
    from ``seed`` (torch's global generator is restored afterwards); a warning when fewer."""
    n = check_count(n)
    lm.eval()
    with torch.random.fork_rng(devices=[lm.device] if lm.device.type == "cuda" else []):
        out = _distinct(n, seed, draw, decode, f"sampling {label}", progress)
    if len(out) < n:
        warnings.warn(
            f"only {len(out)} distinct samples of '{label}' after {GEN_ROUNDS} rounds "
            f"(asked for {n}); raise the temperature or top_p for more variety",
            stacklevel=3,
        )
    return out


def _distinct(n: int, seed: int, draw: Draw, decode, desc: str, progress: bool) -> list[str]:
    from tqdm.auto import tqdm

    out: list[str] = []
    seen: set[str] = set()
    drawn = 0
    bar = tqdm(total=n, desc=desc, unit="msg", disable=not progress, leave=False)
    for rnd in range(GEN_ROUNDS):
        need = n - len(out)
        if need <= 0:
            break
        # later rounds ask for a margin: they only run when duplicates appeared
        todo = need if rnd == 0 else need + max(4, need // 4)
        torch.manual_seed(int(seed) * 1000 + rnd)
        while todo > 0 and len(out) < n:
            b = min(GEN_BATCH, todo)
            todo -= b
            for text in decode(draw(drawn, b)):
                if text and text not in seen and len(out) < n:
                    seen.add(text)
                    out.append(text)
                    bar.update(1)
            drawn += b
    bar.close()
    return out


def prompt_prefixes(lm, start_id: int, prompts: Sequence[str] | None, encode) -> list[list[int]]:
    """Token ids every sample starts with: ``start_id``, then a prompt's tokens (``encode``
    turns texts into token ids); one sentence for an empty set or a prompt too long."""
    if prompts is None:
        return [[start_id]]
    prompts = [str(t) for t in prompts if str(t).strip()]
    if not prompts:
        raise NlpgdError("the prompt set is empty: give at least one prompt that is not blank")
    prefixes = [[start_id, *ids] for ids in encode(prompts)]
    limit = max_positions(lm) - 1
    for t, ids in zip(prompts, prefixes):
        if len(ids) >= limit:
            raise NlpgdError(
                f"prompt {t[:40]!r} is {len(ids) - 1} tokens; the model sees {limit} at most, "
                "leaving no room to continue it"
            )
    return prefixes


def chat_prefixes(lm, tok, chat: Sequence[str], max_new_tokens: int, checkpoint: str) -> list[list[int]]:
    """Token ids of each instruction as a user turn of the chat template, ending where the
    assistant's reply begins; one sentence when the model has no chat template."""
    if not getattr(tok, "chat_template", None):
        raise NlpgdError(
            f"this model (checkpoint '{checkpoint}') has no chat template, so it cannot follow "
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
