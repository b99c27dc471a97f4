"""Naive Bayes speed and quality on the SMS Spam Collection.

Run with ``.venv/bin/python benchmarks/bench_naive_bayes.py [--data PATH] [--repeats 5]``.
Exact duplicates are removed (5,171 distinct texts); the clock covers fitting on the
stratified 80% train split plus predicting the 20% test split, for the word-unigram
multinomial model and a character 2-5-gram variant. Target: fit + predict under 2 s on
2 cores. Quality (spam F1 on the 20% split) is printed beside it.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import numpy as np

from nlpgd.config import DataConfig
from nlpgd.data import load_splits
from nlpgd.metrics import compute_metrics
from nlpgd.models.base import FitContext
from nlpgd.models.naive_bayes import NaiveBayesClassifier
from nlpgd.params import NaiveBayesParams

SMS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sms_spam" / "SMSSpamCollection"
TARGET_S = 2.0
VARIANTS = {
    "word 1-gram, multinomial, alpha 0.1": NaiveBayesParams(alpha=0.1),
    "word 1-2-gram, complement, alpha 0.1": NaiveBayesParams(variant="complement", ngram_range=(1, 2), alpha=0.1),
    "char_wb 2-5-gram, multinomial, alpha 0.1": NaiveBayesParams(analyzer="char_wb", ngram_range=(2, 5), alpha=0.1),
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=SMS)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    data = load_splits(DataConfig(source="uci_sms", path=str(args.data), validation_size=0.01, test_size=0.2))
    train, test = (data.texts("train"), data.labels("train")), data.texts("test")
    y_test = np.asarray(data.dataset["test"]["label"])
    n_distinct = sum(data.summary["sizes"].values())
    print(
        f"SMS Spam Collection: {n_distinct} distinct texts; train {len(train[0])}, test {len(test)}; "
        f"cores {os.cpu_count()}"
    )
    print(
        f"{'variant':44s} {'fit+predict s (median)':>22s} {'msgs/s':>9s} {'test F1':>8s} {'acc':>7s}  "
        f"target <{TARGET_S:.0f} s"
    )
    for name, params in VARIANTS.items():
        times = []
        for _ in range(args.repeats):
            t0 = time.perf_counter()
            model = NaiveBayesClassifier(params).fit(*train, FitContext(seed=0))
            p = model.predict_proba(test)[:, list(model.classes_).index("spam")]
            times.append(time.perf_counter() - t0)
        m = compute_metrics(y_test, p)
        med = statistics.median(times)
        rate = (len(train[0]) + len(test)) / med
        ok = "met" if med < TARGET_S else "MISSED"
        print(f"{name:44s} {med:22.3f} {rate:9.0f} {m['f1']:8.4f} {m['accuracy']:7.4f}  {ok}")


if __name__ == "__main__":
    main()
