"""Statistics for comparing classifiers on one shared test set.

Everything here works on saved predictions: labels 0/1 with 1 = spam, and each message's
log-odds ``z = log P(spam | x) - log P(ham | x)`` (never a stored P(spam), which saturates at
exactly 1.0 once z passes about 37 and would tie confident spam with confident false
positives). Thresholds are log-odds too (``P(spam) > t`` is ``z > logit(t)``). No model is needed.
The libraries doing the work:

- **bootstrap** (numpy): test messages are resampled with replacement. One resample is a
  row of a count matrix ``W`` (how often each message was drawn), built from one index
  matrix ``rng.integers(0, n, (B, n))``; every metric is then a weighted sum or a weighted
  cumulative sum over messages, so all ``B`` resamples are scored at once. The same rows
  are used for every model and seed (a *paired* bootstrap), so intervals are comparable.
  Intervals are percentile intervals (2.5th and 97.5th percentile for 95%).
- **McNemar's exact test** (scipy): :func:`scipy.stats.binomtest` on the discordant pairs,
  two-sided, p = 0.5 (the exact conditional McNemar test).
- **temperature scaling** (scipy): one temperature ``T`` on the log-odds, fitted by
  minimising the negative log-likelihood on validation with
  :func:`scipy.optimize.minimize_scalar` over ``log T``.

The weighted metrics reproduce :func:`nlpgd.metrics.compute_metrics` exactly when every
weight is 1 (tested), so a bootstrap distribution and its point estimate share one definition.
"""

from __future__ import annotations

from typing import Iterable, Iterator

import numpy as np

from nlpgd.mcnemar import mcnemar, mcnemar_exact, mcnemar_pairs  # noqa: F401 (stats.mcnemar_pairs, as before)

N_RESAMPLES = 1000
CI_LEVEL = 0.95
ECE_BINS = 15  # as in nlpgd.metrics.expected_calibration_error
COUNT_METRICS = ("accuracy", "precision", "recall", "f1", "macro_f1", "mcc")
SCORE_METRICS = ("roc_auc", "pr_auc")
PROB_METRICS = ("log_loss", "brier", "ece")
ALL_METRICS = COUNT_METRICS + SCORE_METRICS + PROB_METRICS


# -- bootstrap ----------------------------------------------------------------------------


def bootstrap_weights(
    n: int, n_resamples: int = N_RESAMPLES, seed: int = 0, max_cells: int = 4_000_000
) -> Iterator[np.ndarray]:
    """Count matrices ``W`` of shape ``(b, n)``, ``n_resamples`` rows in all.

    ``W[r, i]`` is how often message ``i`` is drawn in resample ``r``; each row sums to ``n``.
    Rows come in chunks of at most ``max_cells`` cells so memory stays bounded for large test
    sets. The same ``(n, n_resamples, seed)`` always gives the same rows, in the same order.
    """
    if n <= 0:
        raise ValueError("cannot resample an empty test set")
    rng = np.random.default_rng(seed)
    per_chunk = max(1, max_cells // n)
    done = 0
    while done < n_resamples:
        b = min(per_chunk, n_resamples - done)
        idx = rng.integers(0, n, size=(b, n))  # one index matrix per chunk
        flat = (idx + (np.arange(b) * n)[:, None]).ravel()
        yield np.bincount(flat, minlength=b * n).reshape(b, n).astype(np.float64)
        done += b


def _div(num, den, default=0.0):
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.full(np.broadcast(num, den).shape, default, dtype=np.float64)
    np.divide(num, den, out=out, where=den > 0)
    return out


def prob(log_odds) -> np.ndarray:
    """P(spam) from log-odds (the logistic function, float64)."""
    from scipy.special import expit

    return expit(np.asarray(log_odds, dtype=np.float64))


def nll(labels, log_odds) -> np.ndarray:
    """Each message's negative log-likelihood ``-log P(true label)`` from its log-odds, exact
    however large ``|z|`` is (no clipping; an infinite wrong-way log-odds is an infinite loss).
    An undefined log-odds (NaN: e.g. a shift by a prior that could not be estimated) has an
    undefined loss, NaN, computed as such rather than through ``logaddexp`` (which warns)."""
    y = np.asarray(labels).astype(bool)
    z = np.asarray(log_odds, dtype=np.float64)
    toward_wrong = np.where(y, -z, z)  # -log P(true) = log(1 + exp(-z)) for spam, log(1 + exp(z)) for ham
    return np.logaddexp(0, toward_wrong, out=np.full(toward_wrong.shape, np.nan), where=~np.isnan(toward_wrong))


def _ece_bins(p: np.ndarray, n_bins: int = ECE_BINS) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Top-label confidence, correctness-vs-prediction and bin of each message (as in
    :func:`nlpgd.metrics.expected_calibration_error`)."""
    pred = (p > 0.5).astype(int)
    conf = np.where(pred == 1, p, 1 - p)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    return pred, conf, bins


def resample_metrics(
    W: np.ndarray,
    labels,
    log_odds,
    names: Iterable[str] = ALL_METRICS,
    threshold: float = 0.0,
) -> dict[str, np.ndarray]:
    """Each metric in ``names`` for every row of the weight matrix ``W`` (shape ``(B, n)``).

    Definitions follow :func:`nlpgd.metrics.compute_metrics`: spam is positive, ``pred =
    log_odds > threshold`` (a log-odds threshold; 0 is P(spam) > 0.5), precision/recall/F1 are
    0 when undefined, MCC is 0 when its denominator is 0, ROC-AUC and PR-AUC (average
    precision) rank the log-odds and are NaN in a resample without both classes, log loss is
    exact from the log-odds, ECE is top-label with 15 equal-width bins. Ties in scores count
    one half (ROC-AUC) or are grouped (average precision), as scikit-learn does.
    """
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    y = np.asarray(labels).astype(bool)
    z = np.asarray(log_odds, dtype=np.float64)
    names = tuple(names)
    unknown = set(names) - set(ALL_METRICS)
    if unknown:
        raise ValueError(f"unknown metrics: {sorted(unknown)}")
    out: dict[str, np.ndarray] = {}
    if set(names) & set(COUNT_METRICS):
        out.update(_count_metrics(W, y, z > threshold))
    out.update(_probability_metrics(W, y, z, names))
    if set(names) & set(SCORE_METRICS):
        out.update(_rank_metrics(W, y, z))
    return {m: out[m] for m in names}


def _count_metrics(W: np.ndarray, y: np.ndarray, pred: np.ndarray) -> dict[str, np.ndarray]:
    """Accuracy, precision, recall, F1, macro-F1 and MCC per resample, from weighted counts."""
    M = np.stack([y & pred, ~y & pred, y & ~pred, ~y & ~pred], axis=1).astype(np.float64)
    tp, fp, fn, tn = (W @ M).T
    return {
        "accuracy": _div(tp + tn, W.sum(axis=1)),
        "precision": _div(tp, tp + fp),
        "recall": _div(tp, tp + fn),
        "f1": _div(2 * tp, 2 * tp + fp + fn),
        "macro_f1": 0.5 * (_div(2 * tp, 2 * tp + fp + fn) + _div(2 * tn, 2 * tn + fp + fn)),
        "mcc": _div(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))),
    }


def _probability_metrics(W: np.ndarray, y: np.ndarray, z: np.ndarray, names: tuple) -> dict[str, np.ndarray]:
    """Log loss (exact, from the log-odds), Brier score and ECE per resample (only those in ``names``)."""
    out: dict[str, np.ndarray] = {}
    total = W.sum(axis=1)
    p = prob(z)
    if "log_loss" in names:
        out["log_loss"] = _div(W @ nll(y, z), total, np.nan)
    if "brier" in names:
        out["brier"] = _div(W @ (p - y) ** 2, total, np.nan)
    if "ece" in names:
        pred, conf, bins = _ece_bins(p)
        D = np.zeros((len(p), ECE_BINS))
        D[np.arange(len(p)), bins] = (pred == y).astype(np.float64) - conf
        out["ece"] = _div(np.abs(W @ D).sum(axis=1), total, np.nan)
    return out


def _rank_metrics(W: np.ndarray, y: np.ndarray, z: np.ndarray) -> dict[str, np.ndarray]:
    """ROC-AUC and average precision per resample: sort once by score, group tied scores,
    cumulative weighted class counts per group."""
    order = np.argsort(z, kind="mergesort")
    ps, ys = z[order], y[order]
    Ws = W[:, order]
    new = np.r_[True, ps[1:] != ps[:-1]]
    ends = np.r_[np.flatnonzero(new)[1:], len(ps)] - 1  # last sorted index of each group
    cpos = np.cumsum(Ws * ys, axis=1)[:, ends]  # positives with score <= group score
    cneg = np.cumsum(Ws * ~ys, axis=1)[:, ends]
    P, N = cpos[:, -1], cneg[:, -1]
    zeros = np.zeros((W.shape[0], 1))
    pos_g = np.diff(cpos, axis=1, prepend=zeros)  # positives in each group
    neg_g = np.diff(cneg, axis=1, prepend=zeros)
    neg_below = cneg - neg_g
    wins = (pos_g * (neg_below + 0.5 * neg_g)).sum(axis=1)
    # average precision: threshold at each group, scores >= it flagged
    tp_g = P[:, None] - (cpos - pos_g)
    fp_g = N[:, None] - neg_below
    ap = _div((pos_g * _div(tp_g, tp_g + fp_g)).sum(axis=1), P, np.nan)
    ap[(P == 0) | (N == 0)] = np.nan
    return {"roc_auc": _div(wins, P * N, np.nan), "pr_auc": ap}


def percentile_ci(dist, level: float = CI_LEVEL) -> tuple[float | None, float | None]:
    """Percentile interval of a bootstrap distribution (NaN resamples are left out)."""
    d = np.asarray(dist, dtype=np.float64)
    d = d[np.isfinite(d)]
    if d.size == 0:
        return None, None
    a = (1 - level) / 2 * 100
    lo, hi = np.percentile(d, [a, 100 - a])
    return float(lo), float(hi)


def bootstrap_ci(
    labels,
    log_odds_by_seed,
    names: Iterable[str] = ALL_METRICS,
    n_resamples: int = N_RESAMPLES,
    seed: int = 0,
    level: float = CI_LEVEL,
) -> dict[str, dict]:
    """Point estimate and percentile CI per metric, pooled over seeds.

    ``log_odds_by_seed`` is ``(S, n)`` (or ``(n,)`` for one seed): log-odds of one model trained
    with ``S`` seeds, on the same ``n`` test messages. For each resample of the messages the
    metric is computed per seed and averaged over seeds; the point estimate is the mean over
    seeds on the full test set. Returns ``{metric: {"point", "ci_low", "ci_high"}}``.
    """
    y = np.asarray(labels)
    P = np.atleast_2d(np.asarray(log_odds_by_seed, dtype=np.float64))
    names = tuple(names)
    ones = np.ones((1, len(y)))
    point = {m: float(np.mean([resample_metrics(ones, y, p, [m])[m][0] for p in P])) for m in names}
    chunks: dict[str, list] = {m: [] for m in names}
    for W in bootstrap_weights(len(y), n_resamples, seed):
        per_seed = [resample_metrics(W, y, p, names) for p in P]
        for m in names:
            chunks[m].append(np.mean([r[m] for r in per_seed], axis=0))
    out = {}
    for m in names:
        lo, hi = percentile_ci(np.concatenate(chunks[m]), level)
        out[m] = {"point": point[m], "ci_low": lo, "ci_high": hi}
    return out


# -- McNemar: nlpgd/mcnemar.py (re-exported here) ---------------------------------------


# -- operating point ----------------------------------------------------------------------


def threshold_at_ham_rate(labels, log_odds, max_ham_rate: float) -> tuple[float | None, int]:
    """The log-odds threshold with the most spam caught while at most ``max_ham_rate`` of ham is blocked.

    Rule: a message is blocked when ``log_odds > threshold``. With ``n_ham`` ham messages,
    ``k = floor(max_ham_rate * n_ham)`` may be blocked; the threshold is the ``(k+1)``-th
    highest ham score, the lowest one that blocks at most ``k`` ham (ties at the threshold
    are not blocked). Returns ``(threshold, k)``; ``(None, 0)`` when there is no ham.
    With 452 ham, 0.1% allows ``k = 0``: no ham may be blocked at all.
    """
    y = np.asarray(labels).astype(bool)
    p = np.asarray(log_odds, dtype=np.float64)
    ham = np.sort(p[~y])[::-1]
    if ham.size == 0:
        return None, 0
    k = int(np.floor(max_ham_rate * ham.size + 1e-9))
    if k >= ham.size:
        return float(-np.inf), k
    return float(ham[k]), k


def rates_at_threshold(labels, log_odds, threshold: float) -> tuple[float | None, float | None]:
    """(spam caught, ham blocked) when ``log_odds > threshold`` blocks a message."""
    y = np.asarray(labels).astype(bool)
    flag = np.asarray(log_odds, dtype=np.float64) > threshold
    caught = float(flag[y].mean()) if y.any() else None
    blocked = float(flag[~y].mean()) if (~y).any() else None
    return caught, blocked


# -- calibration --------------------------------------------------------------------------

_P_LOW = 1e-300  # keeps extreme but representable scores (naive Bayes reaches 1e-127)
_P_HIGH = 1 - 2**-53  # the largest double below 1


def logit(prob_spam) -> np.ndarray:
    """log(p / (1 - p)), with p clipped to [1e-300, 1 - 2**-53] so it stays finite: how log-odds
    are derived for an old predictions file that stored only P(spam) (a saturated 1.0 becomes
    about 36.7; the true log-odds may have been far larger)."""
    p = np.clip(np.asarray(prob_spam, dtype=np.float64), _P_LOW, _P_HIGH)
    return np.log(p) - np.log1p(-p)


def _nll(z: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(nll(y, z)))


def fit_temperature(labels, log_odds, log_bounds: tuple[float, float] = (-7.0, 7.0), offset: float = 0.0) -> float:
    """The temperature ``T`` minimising the NLL of ``sigmoid(z / T + offset)`` on these messages
    (``offset``: a prior added after scaling, when ``z`` is a log-likelihood ratio).

    Fitted with :func:`scipy.optimize.minimize_scalar` (bounded) over ``log T`` in
    ``log_bounds``; ``T > 1`` softens over-confident scores, ``T < 1`` sharpens.
    """
    from scipy.optimize import minimize_scalar

    y = np.asarray(labels).astype(bool)
    z = np.asarray(log_odds, dtype=np.float64)
    if z.size == 0:
        return 1.0
    res = minimize_scalar(
        lambda lt: _nll(z / np.exp(lt) + offset, y), bounds=log_bounds, method="bounded", options={"xatol": 1e-6}
    )
    return float(np.exp(res.x))


def apply_temperature(log_odds, temperature: float) -> np.ndarray:
    """Log-odds after temperature scaling: ``z / T``."""
    return np.asarray(log_odds, dtype=np.float64) / float(temperature)


def reliability_bins(labels, log_odds, n_bins: int = 10) -> dict:
    """Equal-width bins of P(spam): mean predicted P(spam), fraction spam and count per bin
    (empty bins are left out)."""
    y = np.asarray(labels).astype(np.float64)
    p = prob(log_odds)
    bins = np.clip((p * n_bins).astype(int), 0, n_bins - 1)
    count = np.bincount(bins, minlength=n_bins)
    sp = np.bincount(bins, weights=p, minlength=n_bins)
    sy = np.bincount(bins, weights=y, minlength=n_bins)
    keep = count > 0
    return {
        "mean_predicted": (sp[keep] / count[keep]).tolist(),
        "fraction_spam": (sy[keep] / count[keep]).tolist(),
        "count": count[keep].astype(int).tolist(),
    }


# -- label shift: nlpgd/prior_shift.py (re-exported here) ------------------------------


# -- thresholds chosen on validation ------------------------------------------------------


def _cuts(labels, log_odds) -> tuple[np.ndarray, np.ndarray, np.ndarray, int, int]:
    """Candidate thresholds (every distinct score, and one below them all, so blocking
    everything is a candidate) with the true and false positives of ``z > threshold``."""
    y = np.asarray(labels).astype(bool)
    p = np.asarray(log_odds, dtype=np.float64)
    order = np.argsort(-p, kind="mergesort")
    ps, ys = p[order], y[order]
    last = np.r_[ps[1:] != ps[:-1], True]  # last message of each group of tied scores
    tp = np.cumsum(ys)[last]  # blocked = the scores of this group and above
    fp = np.cumsum(~ys)[last]
    # blocking the group at score s means a threshold just below s: the next lower score
    below = np.r_[ps[last][1:], -np.inf]
    thresholds = np.r_[np.inf, below]
    return thresholds, np.r_[0, tp], np.r_[0, fp], int(y.sum()), int((~y).sum())


def best_threshold(labels, log_odds, metric: str = "mcc") -> float:
    """The log-odds threshold (block when ``z > threshold``) with the highest ``metric`` (``mcc``
    or ``f1``) on these messages; ties go to the highest threshold. +inf when there is no spam."""
    thresholds, tp, fp, n_pos, n_neg = _cuts(labels, log_odds)
    tp, fp = tp.astype(np.float64), fp.astype(np.float64)
    fn, tn = n_pos - tp, n_neg - fp
    if metric == "f1":
        score = _div(2 * tp, 2 * tp + fp + fn)
    elif metric == "mcc":
        score = _div(tp * tn - fp * fn, np.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn)))
    else:
        raise ValueError(f"unknown threshold metric '{metric}' (known: mcc, f1)")
    return float(thresholds[int(np.argmax(score))])


def min_cost_threshold(labels, log_odds, cost_ham_blocked: float, cost_spam_missed: float = 1.0) -> float:
    """The log-odds threshold with the lowest total cost ``cost_ham_blocked * FP + cost_spam_missed
    * FN`` on these messages; ties go to the highest threshold."""
    thresholds, tp, fp, n_pos, _ = _cuts(labels, log_odds)
    cost = cost_ham_blocked * fp + cost_spam_missed * (n_pos - tp)
    return float(thresholds[int(np.argmin(cost))])


def bayes_threshold(cost_ham_blocked: float, cost_spam_missed: float = 1.0) -> float:
    """The log-odds threshold that minimises expected cost for calibrated outputs: block when
    ``P(spam) > R / (1 + R)``, i.e. ``z > log R`` with ``R = cost_ham_blocked / cost_spam_missed``."""
    return float(np.log(cost_ham_blocked / cost_spam_missed))


def resample_cost(W: np.ndarray, labels, log_odds, threshold: float, cost_ham_blocked: float) -> np.ndarray:
    """Expected cost per message, ``(cost_ham_blocked * FP + FN) / n``, in every resample
    (rows of ``W``), blocking when ``log_odds > threshold``."""
    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    y = np.asarray(labels).astype(bool)
    flag = np.asarray(log_odds, dtype=np.float64) > threshold
    per_message = cost_ham_blocked * (~y & flag) + (y & ~flag)
    return _div(W @ per_message.astype(np.float64), W.sum(axis=1), np.nan)


# -- bootstrap over messages and seeds ----------------------------------------------------


def mean_of_defined(stacked, axis: int = 0) -> np.ndarray:
    """The mean along ``axis`` of the values that are defined (not NaN), position by position;
    NaN where none is (no quantity to average: undefined, not zero)."""
    a = np.asarray(stacked, dtype=np.float64)
    defined = ~np.isnan(a)
    return _div(np.where(defined, a, 0.0).sum(axis=axis), defined.sum(axis=axis), np.nan)


def seed_draws(n_seeds: int, n_resamples: int = N_RESAMPLES, seed: int = 0) -> np.ndarray:
    """``(n_resamples, n_seeds)`` seed indices drawn with replacement: the outer level of a
    two-level bootstrap (training seeds, then test messages). One seed gives all zeros."""
    if n_seeds <= 1:
        return np.zeros((n_resamples, max(n_seeds, 1)), dtype=int)
    return np.random.default_rng([seed, 7919]).integers(0, n_seeds, size=(n_resamples, n_seeds))


def seed_mean(per_seed: np.ndarray, draws: np.ndarray) -> np.ndarray:
    """Each resample's mean over its drawn seeds: ``per_seed`` is ``(B, S)`` (a metric per
    message resample and seed), ``draws`` is ``(B, S)`` from :func:`seed_draws`."""
    per_seed = np.asarray(per_seed, dtype=np.float64)
    return np.nanmean(np.take_along_axis(per_seed, draws, axis=1), axis=1)


# label shift lives in nlpgd/prior_shift.py, which uses the helpers above; re-exported as before
from nlpgd.prior_shift import adjust_to_prior, bbse_prior, em_prior, em_prior_resampled  # noqa: E402, F401
