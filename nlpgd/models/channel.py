"""Channel prompting: a pretrained causal LM as a classifier that needs no labels.

The noisy-channel method of Min et al. (2022, "Noisy Channel Language Model Prompting for
Few-Shot Text Classification"): each class is described by a natural-language prompt, and a
message is scored by how likely the LM finds it right after that prompt,

    log P(y | x)  =  log P(x | prompt_y) + log P(y) + const,

with ``log P(x | prompt_y)`` the sum of the log-probabilities of the message's own tokens (the
prompt conditions them and is never scored; no end token). It is generative (it models the
text given the class) and uses no labelled message. Two few-shot variants use k labels:

- **demonstrations**: k labelled training messages (half of each class, drawn with the seed)
  go before the message, each behind its own class's prompt, then the prompt of the class
  being scored (:func:`choose_demonstrations`, :meth:`Channel.contexts`);
- **calibration**: ``prior`` takes ``log P(y)`` from the training labels; ``contextual``
  (Zhao et al. 2021, no labels) subtracts each class's log-likelihood of content-free inputs
  (``"N/A"``, ``"[MASK]"``), which removes the bias a prompt gives to every message alike.
  Without either, ``log P(y)`` is uniform.

The prompt (with its demonstrations) is the same for every message: its key/value cache is
computed once per class and reused for every batch (:func:`nlpgd.models.lm_scoring.score_jobs`
with a ``context``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from nlpgd.errors import NlpgdError
from nlpgd.models.lm_scoring import ScoreJob, score_jobs

CONTENT_FREE = ("N/A", "[MASK]")
SEPARATOR = "\n\n"  # between a demonstration and the next prompt


def choose_demonstrations(
    texts: Sequence[str], labels: Sequence[str], classes: Sequence[str], k: int, seed: int
) -> list[tuple[str, str]]:
    """``k`` labelled messages (or all there are), as evenly split between the classes as they
    allow (``k // n`` each, the remainder to the first classes, a class short of messages
    leaving its share to the others), drawn with ``seed``, in a seeded random order."""
    if k <= 0:
        return []
    rng = np.random.default_rng(seed)
    pools = {c: [int(i) for i in rng.permutation([i for i, y in enumerate(labels) if y == c])] for c in classes}
    take = {c: 0 for c in classes}
    for _ in range(min(k, len(labels))):  # one at a time, to the class with the fewest so far that has any left
        c = min((c for c in classes if take[c] < len(pools[c])), key=lambda c: take[c])
        take[c] += 1
    picked = [i for c in classes for i in pools[c][: take[c]]]
    return [(str(texts[picked[i]]), str(labels[picked[i]])) for i in rng.permutation(len(picked))]


@dataclass
class Channel:
    """What channel prompting needs besides the LM and its tokenizer: each class's prompt, the
    demonstrations, and the per-class offsets of contextual calibration (zero without)."""

    prompts: dict[str, str]
    demonstrations: list[tuple[str, str]] = field(default_factory=list)
    offsets: dict[str, float] = field(default_factory=dict)

    def contexts(self, tok, encode: Callable, demo_tokens: int) -> dict[str, list[int]]:
        """Each class's context as the tokenizer begins a plain text (its BOS if it adds one:
        :func:`text_start`), then the demonstrations (each behind its class's prompt, cut to
        ``demo_tokens``, then a blank line), then the class's prompt."""
        prompt = {c: list(tok(p, add_special_tokens=False)["input_ids"]) for c, p in self.prompts.items()}
        sep = list(tok(SEPARATOR, add_special_tokens=False)["input_ids"])
        shown: list[int] = []
        bodies = encode([t for t, _ in self.demonstrations])
        for (_, y), ids in zip(self.demonstrations, bodies):
            shown += prompt[y] + list(ids[:demo_tokens]) + sep
        return {c: [*text_start(tok), *shown, *ids] for c, ids in prompt.items()}

    def as_dict(self) -> dict:
        return {
            "prompts": dict(self.prompts),
            "demonstrations": [[t, y] for t, y in self.demonstrations],
            "offsets": dict(self.offsets),
        }

    @classmethod
    def from_dict(cls, state: dict) -> "Channel":
        return cls(
            {str(k): str(v) for k, v in state["prompts"].items()},
            [(str(t), str(y)) for t, y in state.get("demonstrations", [])],
            {str(k): float(v) for k, v in state.get("offsets", {}).items()},
        )


def text_start(tok) -> list[int]:
    """The ids a tokenizer puts before a plain text (Llama-2's ``<s>``; none for GPT-2 or
    SmolLM2, whose BOS ``<|im_start|>`` opens a chat turn and is not added to text)."""
    plain = list(tok("a", add_special_tokens=False)["input_ids"])
    full = list(tok("a", add_special_tokens=True)["input_ids"])
    lead = full[: len(full) - len(plain)]
    return [int(i) for i in lead] if full[len(lead) :] == plain else []


def check_room(contexts: dict[str, list[int]], max_length: int, positions: int) -> None:
    """The longest context plus ``max_length`` message tokens must fit the model's positions."""
    longest = max(len(c) for c in contexts.values())
    if longest + max_length > positions:
        raise NlpgdError(
            f"the prompt with its demonstrations takes {longest} tokens, and with max_length {max_length} that "
            f"exceeds the model's {positions} positions: use fewer demonstrations or demonstration_tokens, or a "
            "smaller max_length"
        )


def channel_log_likelihoods(
    lm,
    contexts: dict[str, list[int]],
    labels: Sequence[str],
    bodies: list[list[int]],
    *,
    filler_id: int,
    batch_size: int,
    progress: bool = False,
    reuse_cache: bool = True,
) -> np.ndarray:
    """``log P(x | context_y)`` as an ``(n, len(labels))`` float64 array: the sum of the
    log-probabilities of each body's tokens after the class's context (whose key/value cache
    is computed once and reused for every batch unless ``reuse_cache`` is False)."""
    out = np.zeros((len(bodies), len(labels)), dtype=np.float64)
    if not bodies:
        return out
    for j, y in enumerate(labels):
        (ll,) = score_jobs(
            [ScoreJob(lm, [bodies])],
            filler_id=filler_id,
            batch_size=batch_size,
            context=contexts[y],
            reuse_cache=reuse_cache,
            progress=progress,
            desc=f"scoring under the {y} prompt",
        )
        out[:, j] = ll[:, 0]
    return out


def contextual_offsets(
    lm, contexts: dict[str, list[int]], encode: Callable, *, filler_id: int, batch_size: int
) -> dict[str, float]:
    """Zhao et al. (2021) for a channel model: ``-mean log P(content-free | context_y)`` per
    class, so that a content-free input scores alike under every class."""
    bodies = [ids for ids in encode(list(CONTENT_FREE)) if ids]
    labels = list(contexts)
    ll = channel_log_likelihoods(lm, contexts, labels, bodies, filler_id=filler_id, batch_size=batch_size)
    return {y: float(-ll[:, j].mean()) for j, y in enumerate(labels)}


def log_prior(calibration: str, classes: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """``log P(y)``: the training labels' class shares with ``calibration: prior`` (add-one
    smoothed, as a few labels may miss a class), else uniform (no labels used)."""
    if calibration == "prior":
        counts = np.array([list(labels).count(c) + 1.0 for c in classes])
        return np.log(counts / counts.sum())
    return np.full(len(classes), -np.log(len(classes)))


# -- the GPT-2 classifier's side (nlpgd.models.gpt2 calls these when params.prompts is set) --


def _lm(clf):
    return clf.lms_[clf.classes_[0]]  # channel prompting uses one LM for every class


def classifier_contexts(clf, channel: Channel) -> dict[str, list[int]]:
    """Each class's context for a fitted GPT-2 classifier (its tokenizer and start token)."""
    return channel.contexts(clf.tokenizer_, clf.encode, clf.params.demonstration_tokens)


def fit_channel(clf, texts: Sequence[str], labels: Sequence[str], seed: int) -> Channel:
    """The channel of a GPT-2 classifier whose LM is loaded as it is: demonstrations drawn from
    the training messages, offsets of contextual calibration, and ``class_log_prior_`` set
    from the labels (``calibration: prior``) or uniform."""
    from nlpgd.models.causal_lm import max_positions

    p = clf.params
    channel = Channel(p.channel_prompts(), choose_demonstrations(texts, labels, clf.classes_, p.demonstrations, seed))
    contexts = classifier_contexts(clf, channel)
    check_room(contexts, clf.max_length_, max_positions(_lm(clf)))
    if p.calibration == "contextual":
        channel.offsets = contextual_offsets(
            _lm(clf), contexts, clf.encode, filler_id=clf.eos_id_, batch_size=p.eval_batch_size
        )
    clf.class_log_prior_ = log_prior(p.calibration, clf.classes_, labels)
    return channel


def classifier_log_likelihoods(clf, channel: Channel, texts: Sequence[str], labels: Sequence[str]) -> np.ndarray:
    """``log P(x | prompt_y)`` (plus the contextual offsets) of each text's first ``max_length``
    tokens, as an ``(n, len(labels))`` array."""
    bodies = [list(ids[: clf.max_length_]) for ids in clf.encode([str(t) for t in texts])]
    ll = channel_log_likelihoods(
        _lm(clf),
        classifier_contexts(clf, channel),
        list(labels),
        bodies,
        filler_id=clf.eos_id_,
        batch_size=clf.params.eval_batch_size,
        progress=clf.progress,
    )
    return ll + np.array([channel.offsets.get(str(y), 0.0) for y in labels])


def classifier_token_scores(clf, channel: Channel, text: str, label: str) -> list[tuple[str, float]]:
    """Each scored token of ``text`` with its ``log P`` after the class's prompt."""
    import torch

    from nlpgd.models.hf_base import autocast

    context = classifier_contexts(clf, channel)[label]
    body = list(clf.encode([str(text)])[0][: clf.max_length_])
    lm = _lm(clf)
    with torch.inference_mode(), autocast(lm.device.type):
        logits = lm(input_ids=torch.tensor([context + body], device=lm.device)).logits
    logp = torch.log_softmax(logits.float()[0, len(context) - 1 : -1], dim=-1)
    values = logp[torch.arange(len(body)), torch.tensor(body, dtype=torch.long)].tolist() if body else []
    return [(clf.tokenizer_.decode([t]), v) for t, v in zip(body, values)]
