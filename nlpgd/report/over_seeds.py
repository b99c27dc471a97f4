"""One number over seeds: the summary every figure of a report is given as."""

from __future__ import annotations

import math

import numpy as np

from nlpgd import stats


def finite(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def summarise(per_seed: list, seeds: list[int], dist: np.ndarray | None = None, level: float = 0.95) -> dict:
    """Mean, sd over seeds (with several), the percentile interval of ``dist`` and each seed's value."""
    vals = [finite(v) for v in per_seed]
    ok = [v for v in vals if v is not None]
    lo, hi = stats.percentile_ci(dist, level) if dist is not None else (None, None)
    return {
        "mean": float(np.mean(ok)) if ok else None,
        "std": float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
        "ci_low": lo,
        "ci_high": hi,
        "per_seed": {f"seed{s}": v for s, v in zip(seeds, vals)},
    }


def threshold_of(v: float | None) -> float:
    """A threshold as used: none (no ham to set it) blocks nothing."""
    return v if v is not None else np.inf
