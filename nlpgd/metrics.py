"""Every metric from (labels, spam probabilities), in one pure function.

``labels`` are 0/1 (1 = spam, the positive class), ``prob_spam`` is P(spam | x). The
decision rule at ``threshold`` 0.5 matches ``Classifier.predict`` (argmax, ties to ham).
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
EPS = 1e-15


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


def compute_metrics(labels, prob_spam, threshold: float = 0.5) -> dict:
    """Accuracy, spam precision/recall/F1, macro-F1, MCC, ROC-AUC, PR-AUC, log-loss, Brier,
    ECE and the confusion matrix ``[[tn, fp], [fn, tp]]``. Undefined values are ``None``;
    ``notes`` says what is undefined or a convention and why (e.g. one class only)."""
    y = np.asarray(labels).astype(int)
    p = np.asarray(prob_spam, dtype=np.float64)
    if y.shape != p.shape or y.ndim != 1:
        raise ValueError(f"labels {y.shape} and prob_spam {p.shape} must be 1-D and the same length")
    if len(y) == 0:
        raise ValueError("no examples to score")
    if np.any((p < 0) | (p > 1)) or not np.all(np.isfinite(p)):
        raise ValueError("prob_spam must be finite probabilities in [0, 1]")
    pred = (p > threshold).astype(int)
    both = len(np.unique(y)) == 2
    cm = skm.confusion_matrix(y, pred, labels=[0, 1])
    pc = np.clip(p, EPS, 1 - EPS)
    out = {
        "n": int(len(y)),
        "n_spam": int(y.sum()),
        "accuracy": float(skm.accuracy_score(y, pred)),
        "precision": float(skm.precision_score(y, pred, zero_division=0)),
        "recall": float(skm.recall_score(y, pred, zero_division=0)),
        "f1": float(skm.f1_score(y, pred, zero_division=0)),
        "macro_f1": float(skm.f1_score(y, pred, average="macro", labels=[0, 1], zero_division=0)),
        "mcc": matthews(cm),
        "roc_auc": float(skm.roc_auc_score(y, p)) if both else None,
        "pr_auc": float(skm.average_precision_score(y, p)) if both else None,
        "log_loss": float(-np.mean(y * np.log(pc) + (1 - y) * np.log(1 - pc))),
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


def evaluate_predictions(labels, prob_spam, threshold: float = 0.5) -> dict:
    """Score through the ``evaluate`` module: the one metric path of ``compare``, ``evaluate``,
    the experiments' cells and the encoder's validation during training."""
    return spam_metric().compute(
        references=[int(v) for v in labels], prediction_scores=[float(v) for v in prob_spam], threshold=threshold
    )
