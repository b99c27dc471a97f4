"""Leakage guards: every choice the report makes from data (the temperature of temperature
scaling, the operating-point thresholds) is fitted on the validation split alone. Changing
the test predictions must not move them; changing the validation predictions must."""

from __future__ import annotations

import shutil

import pytest

from nlpgd import stats
from nlpgd.report import analyse, load_run_predictions
from nlpgd.runs import read_predictions, write_predictions
from nlpgd.testing import make_run

RESAMPLES = 20


def _fitted(run) -> dict:
    """Temperatures and thresholds per model and seed, from the report's pure analysis."""
    res = analyse(load_run_predictions(run), n_resamples=RESAMPLES)
    out = {}
    for m, r in res["models"].items():
        out[m] = {
            "T": r["calibration"]["temperature"]["per_seed"],
            "thr": [op["threshold"]["per_seed"] for op in r["operating_points"]],
        }
    return out


def _rewrite(run, split: str, transform) -> None:
    for path in sorted((run / "predictions").rglob(f"*.{split}.csv")):
        pr = read_predictions(path)
        write_predictions(path, pr["id"], pr["label"], transform(pr["log_odds"]))


@pytest.fixture
def run(tmp_path):
    return make_run(tmp_path, models=("naive_bayes", "gpt2"), seeds=(0, 1), n_test=200, n_val=200)


def test_temperature_and_thresholds_ignore_the_test_split(run, tmp_path):
    before = _fitted(run)
    changed = tmp_path / "changed"
    shutil.copytree(run, changed)
    _rewrite(changed, "test", lambda z: -z)  # the test scores turned upside down
    assert _fitted(changed) == before


def test_temperature_and_thresholds_follow_the_validation_split(run, tmp_path):
    before = _fitted(run)
    changed = tmp_path / "changed"
    shutil.copytree(run, changed)
    _rewrite(changed, "validation", lambda z: 3 * z)  # sharper validation scores
    after = _fitted(changed)
    for m in before:
        assert after[m]["T"] != before[m]["T"]


def test_the_temperature_is_the_validation_fit(run):
    fitted = _fitted(run)
    for m in fitted:
        for seed in (0, 1):
            val = read_predictions(run / "predictions" / m / f"seed{seed}.validation.csv")
            expected = stats.fit_temperature(val["label"], val["log_odds"])
            assert fitted[m]["T"][f"seed{seed}"] == pytest.approx(expected)
            thr, _ = stats.threshold_at_ham_rate(val["label"], val["log_odds"], 0.01)
            assert fitted[m]["thr"][1][f"seed{seed}"] == pytest.approx(stats.prob(thr))  # shown as P(spam)
