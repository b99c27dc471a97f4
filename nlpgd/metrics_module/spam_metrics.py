"""nlpgd spam metrics as a Hugging Face ``evaluate`` module.

Use it through ``nlpgd.metrics.evaluate_predictions``, or ``SpamMetrics(keep_in_memory=True)``
then ``compute(references=[0, 1, ...], prediction_scores=[p_spam, ...])``.
"""

import datasets
import evaluate

_DESCRIPTION = (
    "Binary spam-detection metrics from P(spam): accuracy, spam precision/recall/F1, macro-F1, "
    "MCC, ROC-AUC, PR-AUC, log-loss, Brier score, expected calibration error, confusion matrix."
)
_KWARGS = """
Args:
    references: list of int, 1 for spam and 0 for ham.
    prediction_scores: list of float, the predicted probability of spam.
    threshold: float, spam when prediction_score > threshold (default 0.5).
    log_odds: optional list of float, log P(spam) - log P(ham) per message; when given, ranks,
        decisions and log loss come from it (a P(spam) of exactly 1.0 loses the order).
Returns:
    dict of metric name to value (None where undefined, e.g. ROC-AUC with one class).
"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS)
class SpamMetrics(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation="",
            format="numpy",  # the inputs reach _compute as arrays, never one Python object per message
            inputs_description=_KWARGS,
            features=datasets.Features(
                {"references": datasets.Value("int32"), "prediction_scores": datasets.Value("float64")}
            ),
        )

    def _compute(self, references, prediction_scores, threshold: float = 0.5, log_odds=None):
        from nlpgd.metrics import compute_metrics

        return compute_metrics(references, prediction_scores, threshold=threshold, log_odds=log_odds)
