"""Every metric from (labels, spam log-odds), in one pure function.

``labels`` are 0/1 (1 = spam, the positive class), ``log_odds`` is ``log P(spam | x) - log
P(ham | x)``: ranks (ROC-AUC, PR-AUC), decisions and log loss come from it, so scores past the
point where P(spam) rounds to exactly 1.0 (log-odds above about 37) keep their order and their
loss. ``prob_spam`` alone is accepted for callers that have nothing else (log-odds are then
derived with clipping, :func:`nlpgd.stats.logit`). The decision rule at ``threshold`` 0.5
matches ``Classifier.predict`` (argmax, ties to ham).
The same function backs the project's ``evaluate`` metric module
(``nlpgd/metrics_module/spam_metrics.py``), imported from the package (hub metric scripts
cannot be fetched offline) and kept in memory; :func:`evaluate_predictions` is the path every
caller scores through.
"""

from __future__ import annotations

import math

import numpy as np
from sklearn import metrics as skm

METRIC_NAMES = (
    "accuracy",
    "precision",
    "recall",
    "f1",
    "macro_f1",
    "mcc",
    "roc_auc",
    "pr_auc",
    "log_loss",
    "brier",
    "ece",
)


def expected_calibration_error(labels: np.ndarray, prob_spam: np.ndarray, n_bins: int = 15) -> float:
    """Top-label ECE with equal-width confidence bins (Guo et al., 2017)."""
    labels = np.asarray(labels)
    prob_spam = np.asarray(prob_spam, dtype=np.float64)
    pred = (prob_spam > 0.5).astype(int)
    conf = np.where(pred == 1, prob_spam, 1 - prob_spam)
    correct = (pred == labels).astype(float)
    edges = np.linspace(0.5, 1.0, n_bins + 1)
    bins = np.clip(np.digitize(conf, edges[1:-1], right=True), 0, n_bins - 1)
    ece = 0.0
    for b in range(n_bins):
        m = bins == b
        if m.any():
            ece += m.mean() * abs(correct[m].mean() - conf[m].mean())
    return float(ece)


def _log_odds(prob_spam, log_odds) -> tuple[np.ndarray, np.ndarray]:
    """(P(spam), log-odds) from whichever is given (log-odds win), checked."""
    from nlpgd.stats import logit, prob

    if log_odds is None:
        p = np.asarray(prob_spam, dtype=np.float64)
        if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
            raise ValueError("prob_spam must be finite probabilities in [0, 1]")
        return p, logit(p)
    z = np.asarray(log_odds, dtype=np.float64)
    if np.any(np.isnan(z)):
        raise ValueError("log_odds must be numbers (not NaN)")
    return prob(z), z


def compute_metrics(labels, prob_spam=None, threshold: float = 0.5, *, log_odds=None) -> dict:
    """Accuracy, spam precision/recall/F1, macro-F1, MCC, ROC-AUC, PR-AUC, log-loss, Brier,
    ECE and the confusion matrix ``[[tn, fp], [fn, tp]]``, from ``log_odds`` (or, lacking
    them, ``prob_spam``). Undefined values are ``None``; ``notes`` says what is undefined or a
    convention and why (e.g. one class only)."""
    from nlpgd.stats import logit, nll

    y = np.asarray(labels).astype(int)
    p, z = _log_odds(prob_spam, log_odds)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and scores {p.shape} must be 1-D and the same length")
    if len(y) == 0:
        raise ValueError("no examples to score")
    pred = (z > logit(threshold)).astype(int)
    both = len(np.unique(y)) == 2
    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    out = {
        "n": int(len(y)),
        "n_spam": int(y.sum()),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "macro_f1": float(skm.f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
        "mcc": matthews(cm),
        "roc_auc": float(skm.roc_auc_score(y, z)) if both else None,
        "pr_auc": float(skm.average_precision_score(y, z)) if both else None,
        "log_loss": float(np.mean(nll(y, z))),
        "brier": float(np.mean((p - y) ** 2)),
        "ece": expected_calibration_error(y, p),
        "confusion_matrix": cm.tolist(),
        "threshold": float(threshold),
        "notes": [] if both else [one_class_note(y)],
    }
    for k, v in out.items():
        if isinstance(v, float) and math.isnan(v):
            out[k] = None
    return out


def matthews(cm: np.ndarray) -> float:
    """Matthews correlation of a 2x2 confusion matrix; 0 when it is undefined (a row or a
    column of the matrix is empty), as scikit-learn has it, but without its warning."""
    (tn, fp), (fn, tp) = np.asarray(cm, dtype=np.float64)
    denominator = math.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn))
    return float((tp * tn - fp * fn) / denominator) if denominator > 0 else 0.0


def one_class_note(y: np.ndarray) -> str:
    """What one-class labels leave undefined."""
    only = "spam" if y[0] == 1 else "ham"
    text = f"only {only} messages ({len(y)}): ROC-AUC and PR-AUC are undefined and MCC is 0 by convention"
    if only == "ham":
        text += "; spam precision, recall and F1 are 0 by convention (there is no spam to find)"
    return text


def spam_metric():
    """The project's ``evaluate`` module (:mod:`nlpgd.metrics_module.spam_metrics`), imported as
    the package module it is and kept in memory: no Arrow cache file, no copy of the script
    under ``~/.cache/huggingface`` (what ``evaluate.load(path)`` writes), nothing to fetch."""
    from nlpgd.metrics_module.spam_metrics import SpamMetrics

    return SpamMetrics(keep_in_memory=True)


def evaluate_predictions(labels, log_odds, threshold: float = 0.5) -> dict:
    """Score log-odds through the ``evaluate`` module: the one metric path of ``compare``,
    ``evaluate``, the experiments' cells and the encoder's validation during training. Ranks,
    decisions and log loss come from the log-odds (P(spam), derived, goes beside them)."""
    from nlpgd.stats import prob

    z = np.asarray(log_odds, dtype=np.float64)
    return spam_metric().compute(  # arrays, not lists: a list costs 32 bytes a message (evaluate on an archive)
        references=np.asarray(labels, dtype=np.int32),
        prediction_scores=prob(z),
        threshold=threshold,
        log_odds=z,
    )
