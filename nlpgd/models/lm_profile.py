"""A message's per-token log-likelihood profile under a class-conditional LM: the features of
the sample critic (``nlpgd generate --select``, :mod:`nlpgd.experiments.critic`).

:func:`token_log_probs` gives, for each text, ``log P(token | tokens before it, class)`` of its
scored tokens (the message's tokens and its end token, as :meth:`GPT2Classifier.log_likelihood`
sums them), batched by length. :func:`profile_features` summarises each sequence in a fixed
set of numbers (:data:`FEATURES`): its length, the mean, spread and quantiles of the token
log-probabilities, the share of surprising tokens, the end token's and the first token's
log-probability, the drift from the first half to the second, and the mean per-token
log-likelihood ratio against the model's other class. These read how the generator itself
finds a message, nothing of its characters or words (which the realism judges read).
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from nlpgd.models.causal_lm import padded_batch
from nlpgd.models.hf_base import autocast
from nlpgd.models.lm_data import wrap

BATCH = 64
QUANTILES = (0.1, 0.25, 0.5, 0.75, 0.9)
SURPRISE = (-2.0, -5.0, -8.0)
FEATURES = (
    ["log_tokens", "mean", "sd", "min", "max"]
    + [f"q{int(q * 100)}" for q in QUANTILES]
    + [f"share_below_{-t:g}" for t in SURPRISE]
    + ["first", "last", "half_drift", "llr_per_token"]
)


def token_log_probs(model, texts: Sequence[str], label: str) -> list[np.ndarray]:
    """Each text's scored tokens' log-probabilities under ``label``'s LM of a fitted
    :class:`~nlpgd.models.gpt2.GPT2Classifier` (texts cut to its ``max_length`` as in training)."""
    lm = model.lms_[label]
    seqs = [wrap(ids, model.start_ids_[label], model.eos_id_, model.max_length_) for ids in model.encode(texts)]
    out: list[np.ndarray] = [np.zeros(0)] * len(seqs)
    order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
    lm.eval()
    for b in range(0, len(order), BATCH):
        batch = order[b : b + BATCH]
        ids, targets = padded_batch([seqs[i] for i in batch], model.eos_id_)
        with torch.inference_mode(), autocast(lm.device.type):
            logits = lm(input_ids=ids.to(lm.device)).logits
        logp = torch.log_softmax(logits.float(), dim=-1).cpu()
        picked = logp.gather(-1, targets.clamp(min=0).unsqueeze(-1)).squeeze(-1).numpy()
        for r, i in enumerate(batch):
            out[i] = picked[r, : len(seqs[i]) - 1].astype(np.float64)
    return out


def _summary(lp: np.ndarray) -> list[float]:
    if lp.size == 0:
        lp = np.zeros(1)
    half = max(1, lp.size // 2)
    return [
        float(np.log(lp.size)),
        float(lp.mean()),
        float(lp.std()),
        float(lp.min()),
        float(lp.max()),
        *[float(v) for v in np.quantile(lp, QUANTILES)],
        *[float((lp < t).mean()) for t in SURPRISE],
        float(lp[0]),
        float(lp[-1]),
        float(lp[half:].mean() - lp[:half].mean()) if lp.size > 1 else 0.0,
    ]


def profile_features(model, texts: Sequence[str], label: str) -> np.ndarray:
    """An (n, len(FEATURES)) array: each text's log-likelihood profile under ``label``."""
    texts = [str(t) for t in texts]
    own = token_log_probs(model, texts, label)
    others = [str(c) for c in model.classes_ if str(c) != str(label)]
    rows = [_summary(lp) for lp in own]
    if others:
        other = token_log_probs(model, texts, others[0])
        llr = [(a.sum() - b.sum()) / max(1, a.size) for a, b in zip(own, other)]
    else:
        llr = [0.0] * len(texts)
    return np.array([r + [float(v)] for r, v in zip(rows, llr)], dtype=np.float64)
