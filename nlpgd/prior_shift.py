"""Label shift: the class prior of a test set, estimated and corrected for.

- **prior adjustment**: outputs made under one prior moved to another (Bayes' rule on the
  log-odds);
- **EM** (Saerens, Latinne & Decaestecker, 2002): the test prior that makes the adjusted
  outputs' mean agree with it, also run inside every bootstrap resample;
- **BBSE** (black-box shift estimation, Lipton, Wang & Smola, 2018): the test prior from the
  validation confusion matrix of the decisions.

Moved out of :mod:`nlpgd.stats` (which re-exports every name) to keep that module readable.
"""

from __future__ import annotations

import numpy as np

from nlpgd.stats import _div, logit, prob


def adjust_to_prior(log_odds, train_prior: float, new_prior: float) -> np.ndarray:
    """Log-odds moved from the class prior the scores were made under (``train_prior``, the
    prior the model's outputs assume) to ``new_prior`` (Bayes' rule: they move by
    ``logit(new_prior) - logit(train_prior)``)."""
    return np.asarray(log_odds, dtype=np.float64) + (logit(new_prior) - logit(train_prior))


def em_prior(log_odds, train_prior: float, max_iter: int = 1000, tol: float = 1e-8) -> tuple[float, int]:
    """The spam prevalence of a test set estimated by EM from log-odds made under
    ``train_prior`` (Saerens et al. 2002): alternately adjust every posterior to the current
    estimate and set the estimate to the mean adjusted posterior, until it moves less than
    ``tol``. Returns ``(estimate, iterations)``."""
    p = np.asarray(log_odds, dtype=np.float64)
    if p.size == 0:
        raise ValueError("EM needs at least one score")
    if not 0.0 < train_prior < 1.0:
        raise ValueError(f"the training prior must lie in (0, 1), got {train_prior}")
    estimate = float(train_prior)
    for it in range(1, max_iter + 1):
        new = float(np.mean(prob(adjust_to_prior(p, train_prior, estimate))))
        new = min(max(new, 1e-6), 1 - 1e-6)  # a prevalence of exactly 0 or 1 is a fixed point
        if abs(new - estimate) < tol:
            return new, it
        estimate = new
    return estimate, max_iter


def em_prior_resampled(W: np.ndarray, log_odds, train_prior: float, max_iter: int = 1000, tol: float = 1e-8):
    """:func:`em_prior` in every resample at once (rows of the weight matrix ``W``): ``(B,)``."""
    from scipy.special import expit

    W = np.atleast_2d(np.asarray(W, dtype=np.float64))
    z = np.asarray(log_odds, dtype=np.float64)[None, :] - logit(train_prior)
    total = W.sum(axis=1)
    estimate = np.full(W.shape[0], float(train_prior))
    for _ in range(max_iter):
        new = np.clip(_div((W * expit(z + logit(estimate)[:, None])).sum(axis=1), total, np.nan), 1e-6, 1 - 1e-6)
        if np.nanmax(np.abs(new - estimate)) < tol:
            return new
        estimate = new
    return estimate


def bbse_prior(val_labels, val_log_odds, log_odds, W: np.ndarray | None = None) -> np.ndarray:
    """The spam prevalence of a test set by black-box shift estimation (Lipton, Wang & Smola,
    2018), in every resample (rows of ``W``; None: the test set as it is): the classifier's
    decisions (``z > 0``) on validation give the confusion matrix ``C[i, j] = P(decided i,
    label j)``; on test, the share decided spam ``mu`` is ``C @ q`` for the test's class shares
    ``q``, solved for ``q``. Clipped to [0, 1]; NaN where the classifier's decisions do not
    depend on the label (``C`` is singular)."""
    yv = np.asarray(val_labels).astype(bool)
    dv = np.asarray(val_log_odds, dtype=np.float64) > 0
    d = (np.asarray(log_odds, dtype=np.float64) > 0).astype(np.float64)
    W = np.ones((1, len(d))) if W is None else np.atleast_2d(np.asarray(W, dtype=np.float64))
    mu = _div(W @ d, W.sum(axis=1), np.nan)
    tpr = float(dv[yv].mean()) if yv.any() else np.nan  # P(decided spam | spam)
    fpr = float(dv[~yv].mean()) if (~yv).any() else np.nan  # P(decided spam | ham)
    if not np.isfinite(tpr - fpr) or abs(tpr - fpr) < 1e-12:
        return np.full(W.shape[0], np.nan)
    # mu = tpr * q + fpr * (1 - q)  =>  q = (mu - fpr) / (tpr - fpr)
    return np.clip((mu - fpr) / (tpr - fpr), 0.0, 1.0)
