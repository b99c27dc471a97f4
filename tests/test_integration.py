"""Integration on the real SMS Spam Collection (only where ../shared is present)."""

from nlpgd.config import DataConfig
from nlpgd.data import load_splits
from nlpgd.metrics import compute_metrics
from nlpgd.models.base import FitContext
from nlpgd.models.naive_bayes import NaiveBayesClassifier
from nlpgd.params import NaiveBayesParams


def test_naive_bayes_on_sms_spam_80_20(sms_file, tmp_path):
    data = load_splits(DataConfig(source="uci_sms", path=str(sms_file), validation_size=0.01, test_size=0.2))
    assert data.summary["duplicates_removed"] == 5574 - 5171
    model = NaiveBayesClassifier(NaiveBayesParams(alpha=0.1))
    model.fit(data.texts("train"), data.labels("train"), FitContext(seed=0, work_dir=tmp_path))
    p = model.predict_proba(data.texts("test"))[:, list(model.classes_).index("spam")]
    m = compute_metrics(data.dataset["test"]["label"], p)
    assert m["n"] >= 1030
    assert m["f1"] >= 0.93, m
