import numpy as np
import pytest

from nlpgd.metrics import compute_metrics, evaluate_predictions, expected_calibration_error


def test_hand_worked_example():
    y = np.array([1, 1, 0, 0, 0])
    p = np.array([0.9, 0.4, 0.2, 0.6, 0.1])
    m = compute_metrics(y, p)
    # predictions 1,0,0,1,0: tp=1 fn=1 fp=1 tn=2
    assert m["confusion_matrix"] == [[2, 1], [1, 1]]
    assert m["accuracy"] == pytest.approx(3 / 5)
    assert m["precision"] == pytest.approx(0.5)
    assert m["recall"] == pytest.approx(0.5)
    assert m["f1"] == pytest.approx(0.5)
    assert m["brier"] == pytest.approx(np.mean((p - y) ** 2))
    ll = -np.mean([np.log(0.9), np.log(0.4), np.log(0.8), np.log(0.4), np.log(0.9)])
    assert m["log_loss"] == pytest.approx(ll)
    # ROC-AUC: positives {0.9, 0.4} vs negatives {0.2, 0.6, 0.1}: 5 of 6 pairs ordered
    assert m["roc_auc"] == pytest.approx(5 / 6)


def test_perfect_and_one_class():
    m = compute_metrics([0, 1, 1], [0.0, 1.0, 1.0])
    assert m["accuracy"] == 1 and m["mcc"] == pytest.approx(1) and m["ece"] == pytest.approx(0)
    one = compute_metrics([1, 1], [0.8, 0.3])
    assert one["roc_auc"] is None and one["pr_auc"] is None


def test_ece_of_overconfident_model():
    # always 0.99 confident, right half the time -> ECE ~ 0.49
    y = np.array([1, 0] * 50)
    p = np.full(100, 0.99)
    assert expected_calibration_error(y, p) == pytest.approx(0.49)


def test_rejects_bad_input():
    with pytest.raises(ValueError):
        compute_metrics([1, 0], [0.5])
    with pytest.raises(ValueError):
        compute_metrics([1, 0], [1.5, 0.2])


def test_evaluate_module_matches_pure_function():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    z = rng.normal(0, 30, 200)  # log-odds, many past where P(spam) rounds to 0 or 1
    assert evaluate_predictions(y, z) == compute_metrics(y, log_odds=z)
