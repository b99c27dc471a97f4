"""Where learning curves reach a level and where they cross, with bootstrap intervals.

Both work on the seed-mean curve of every bootstrap resample (:class:`~.measure.Stat` per
training size, averaged over each resample's drawn seeds), so their intervals hold the same
two sources of variation as every other interval of the claims: training seeds and test
messages. Between two grid sizes a curve is read linearly in log size (the grid is roughly
geometric).
"""

from __future__ import annotations

import numpy as np

from nlpgd import stats
from nlpgd.experiments.claims.measure import Stat

SHARE = 0.95  # a member "has learned" at 95% of its own full-data score


def seed_curves(stats_by_size: list[Stat], draws: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(point (K,), resamples (B, K))``: the seed-mean curve over K sizes."""
    point = np.array([np.nanmean(s.point) for s in stats_by_size])
    dist = np.stack([stats.seed_mean(s.dist, draws) for s in stats_by_size], axis=1)
    return point, dist


def _first_reach(curve: np.ndarray, target: float, x: np.ndarray, higher: bool) -> float:
    """The smallest size (log-interpolated) where ``curve`` reaches ``target``; NaN: never."""
    gap = curve - target if higher else target - curve
    ok = np.flatnonzero(gap >= 0)
    if not ok.size:
        return np.nan
    i = int(ok[0])
    if i == 0:
        return float(x[0])
    g0, g1 = gap[i - 1], gap[i]
    t = g0 / (g0 - g1) if g0 != g1 else 1.0
    return float(np.exp(np.log(x[i - 1]) + t * (np.log(x[i]) - np.log(x[i - 1]))))


def messages_to_reach(
    stats_by_size: list[Stat], x: list[int], draws: np.ndarray, higher: bool, share: float = SHARE
) -> dict:
    """Training messages a member needs to reach ``share`` of its own full-data score (the
    last size of ``x``): for a lower-is-better metric, a value at most its full-data value
    divided by ``share``. ``mean`` (from the point curve), ``lo``/``hi`` (percentile interval)."""
    xs = np.asarray(x, dtype=np.float64)
    point, dist = seed_curves(stats_by_size, draws)

    def reach(curve):
        full = curve[-1]
        return _first_reach(curve, full * share if higher else full / share, xs, higher)

    lo, hi = stats.percentile_ci(np.array([reach(c) for c in dist]))
    return {"mean": reach(point), "lo": lo, "hi": hi}


def _crossing(adv: np.ndarray, x: np.ndarray) -> float:
    """The size where the advantage of the discriminative member turns from negative (the
    generative member leads) to positive, log-interpolated; NaN: no such turn."""
    for i in range(1, len(adv)):
        if adv[i - 1] < 0 <= adv[i]:
            t = adv[i - 1] / (adv[i - 1] - adv[i])
            return float(np.exp(np.log(x[i - 1]) + t * (np.log(x[i]) - np.log(x[i - 1]))))
    return np.nan


def crossover(advantage_by_size: list[Stat], x: list[int], draws: np.ndarray) -> dict:
    """The training size where the discriminative member overtakes the generative one, with a
    percentile interval over the resamples that have a crossover, and the share that have one;
    ``mean`` is None ("none in range") when the point curves do not cross."""
    xs = np.asarray(x, dtype=np.float64)
    point, dist = seed_curves(advantage_by_size, draws)
    at = _crossing(point, xs)
    found = np.array([_crossing(c, xs) for c in dist])
    lo, hi = stats.percentile_ci(found)
    return {
        "mean": None if np.isnan(at) else at,
        "lo": lo,
        "hi": hi,
        "share_with_crossover": float(np.mean(np.isfinite(found))),
    }


def describe_size(summary: dict, full: int) -> str:
    """``128 [32, 512]`` messages, ``none in range``, or ``full (2,000)`` when never reached earlier."""
    if summary.get("mean") is None or not np.isfinite(summary["mean"]):
        return "none in range"
    lo, hi = summary.get("lo"), summary.get("hi")
    band = "" if lo is None else f" [{lo:,.0f}, {hi:,.0f}]"
    return f"{summary['mean']:,.0f}{band}" + (" (the full split)" if round(summary["mean"]) >= full else "")
