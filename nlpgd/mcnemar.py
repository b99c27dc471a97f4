"""McNemar's exact test between two classifiers on one shared test set (:mod:`nlpgd.stats`
re-exports it): :func:`scipy.stats.binomtest` on the discordant pairs, two-sided, p = 0.5."""

from __future__ import annotations

import numpy as np


def mcnemar_exact(b: int, c: int) -> float:
    """Two-sided exact McNemar p-value from the discordant counts ``b`` and ``c``.

    Under the null each discordant message is equally likely to favour either model, so
    ``b ~ Binomial(b + c, 1/2)``; computed with :func:`scipy.stats.binomtest`.
    ``b = 1, c = 9`` gives 0.021484375. No discordant pairs gives 1.
    """
    from scipy.stats import binomtest

    b, c = int(b), int(c)
    if b < 0 or c < 0:
        raise ValueError("discordant counts must be non-negative")
    if b + c == 0:
        return 1.0
    return float(binomtest(b, b + c, 0.5, alternative="two-sided").pvalue)


def mcnemar(labels, pred_a, pred_b) -> dict:
    """McNemar's exact test for two classifiers' hard predictions on the same messages.

    ``b``: messages model A gets right and model B wrong; ``c``: the reverse.
    """
    y = np.asarray(labels).astype(int)
    a_ok = np.asarray(pred_a).astype(int) == y
    b_ok = np.asarray(pred_b).astype(int) == y
    b = int(np.sum(a_ok & ~b_ok))
    c = int(np.sum(~a_ok & b_ok))
    return {"b": b, "c": c, "n": int(len(y)), "p_value": mcnemar_exact(b, c)}


def mcnemar_pairs(
    labels, models_a: dict, models_b: dict | None = None, alpha: float = 0.05, threshold: float = 0.0
) -> list[dict]:
    """:func:`mcnemar` for pairs of models, seed by seed, at ``threshold``.

    ``models_a`` (and ``models_b``) map a model name to ``{seed key: log-odds}`` on the same
    messages. Without ``models_b``: every pair of ``models_a`` (in order, each pair once);
    with it: every model of ``models_a`` against every model of ``models_b``, on the seed keys
    both have (a pair with none is left out). Each pair gives its per-seed tests, the largest
    p-value, how many seeds have p < ``alpha`` and in how many each model is more accurate.
    """
    names = list(models_a)
    if models_b is None:
        pairs = [(a, b, models_a) for i, a in enumerate(names) for b in names[i + 1 :]]
    else:
        pairs = [(a, b, models_b) for a in names for b in models_b]
    out = []
    for a, b, other in pairs:
        pa, pb = models_a[a], other[b]
        per = {k: mcnemar(labels, pa[k] > threshold, pb[k] > threshold) for k in pa if k in pb}
        if not per:
            continue
        ps = [r["p_value"] for r in per.values()]
        pair = {
            "model_a": a,
            "model_b": b,
            "per_seed": per,
            "max_p_value": max(ps),
            "seeds_significant": sum(p < alpha for p in ps),
            "seeds_a_more_accurate": sum(r["b"] > r["c"] for r in per.values()),
            "seeds_b_more_accurate": sum(r["c"] > r["b"] for r in per.values()),
        }
        out.append(pair)
    return out
