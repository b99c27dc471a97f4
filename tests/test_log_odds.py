"""Stored log-odds: every metric, temperature, prior correction and threshold is computed from
them, never from a P(spam) that saturates at exactly 1.0 (log-odds above about 37)."""

import csv

import numpy as np
import pytest

from nlpgd import stats
from nlpgd.experiments.claims import measure as M
from nlpgd.metrics import compute_metrics
from nlpgd.report.analysis import analyse
from nlpgd.report.load import load_run_predictions
from nlpgd.runs import read_predictions, write_predictions
from nlpgd.testing import make_run

# 6 ham, 4 spam; ham #5 is a confident false positive
Y = np.array([0, 0, 0, 0, 0, 0, 1, 1, 1, 1])
BASE = np.array([-5.0, -3.0, -1.0, 2.0, -4.0, 45.0, 50.0, 60.0, 70.0, 3.0])


def _members():
    """Two members whose log-odds differ only beyond +40: the false-positive ham is below the
    confident spam for ``a`` (45) and above all of it for ``b`` (80)."""
    a, b = BASE.copy(), BASE.copy()
    b[5] = 80.0
    return a, b


def test_members_differing_only_beyond_40_keep_their_ranking(tmp_path):
    ids = [f"m{i}" for i in range(len(Y))]
    back = {}
    for name, z in zip("ab", _members()):
        write_predictions(tmp_path / f"{name}.csv", ids, Y, z)
        back[name] = read_predictions(tmp_path / f"{name}.csv")
    # the stored P(spam) cannot tell them apart (both 1.0 from 45 up) ...
    assert np.array_equal(back["a"]["prob_spam"], back["b"]["prob_spam"])
    # ... the stored log-odds can: a's ham at 45 outranks one spam (3), b's at 80 all four
    auc = {k: compute_metrics(Y, log_odds=v["log_odds"])["roc_auc"] for k, v in back.items()}
    assert auc["a"] - auc["b"] == pytest.approx(3 / 24)
    ones = np.ones((1, len(Y)))
    boot = {k: stats.resample_metrics(ones, Y, v["log_odds"], ["roc_auc", "log_loss"]) for k, v in back.items()}
    assert boot["a"]["roc_auc"][0] == pytest.approx(auc["a"]) and boot["b"]["roc_auc"][0] == pytest.approx(auc["b"])
    # log loss is exact: the ham at 80 costs 35 nats more than at 45 (P(spam) clipping hid it)
    diff = (boot["b"]["log_loss"][0] - boot["a"]["log_loss"][0]) * len(Y)
    assert diff == pytest.approx(35.0, abs=1e-9)


def test_the_claims_measures_and_the_report_read_the_log_odds(tmp_path):
    a, b = _members()
    store_dir = tmp_path / "claims"
    for name, z in (("a", a), ("b", b)):
        write_predictions(store_dir / "predictions" / "full" / name / "seed0.test.csv", range(10), Y, z)
    store = M.Store(store_dir)
    res = M.Resampler(len(Y), 1, 50)
    got = {
        m: M.measure(res, Y, store.log_odds(f"full/{m}", [0], "test"), [M.Measure("roc_auc", "roc_auc")]) for m in "ab"
    }
    assert got["a"]["roc_auc"].point[0] - got["b"]["roc_auc"].point[0] == pytest.approx(3 / 24)
    assert not store.derived_note()
    # the report's loader: a run whose two models differ only beyond +40
    run = make_run(tmp_path / "out", models=("a", "b"), seeds=(0,), n_test=10, n_val=10, spam_every=2)
    y = read_predictions(run / "predictions" / "a" / "seed0.test.csv")["label"]
    z = np.where(y == 1, 60.0, -5.0)
    for name, top in (("a", 45.0), ("b", 80.0)):
        zz = z.copy()
        zz[np.flatnonzero(y == 0)[0]] = top
        zz[np.flatnonzero(y == 1)[0]] = 3.0
        write_predictions(run / "predictions" / name / "seed0.test.csv", [f"t{i}" for i in range(10)], y, zz)
    rp = load_run_predictions(run)
    result = analyse(rp, n_resamples=50)
    assert result["models"]["a"]["metrics"]["roc_auc"]["mean"] > result["models"]["b"]["metrics"]["roc_auc"]["mean"]


def _old_file(path, p):
    """A predictions file as nlpgd wrote it before log-odds were stored."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "prob_spam", "pred"])
        for i, (y, v) in enumerate(zip(Y, p)):
            w.writerow([f"m{i}", int(y), repr(float(v)), int(v > 0.5)])


def test_an_old_file_without_log_odds_still_loads_with_a_note(tmp_path):
    p = stats.prob(BASE)
    _old_file(tmp_path / "predictions" / "full" / "a" / "seed0.test.csv", p)
    back = read_predictions(tmp_path / "predictions" / "full" / "a" / "seed0.test.csv")
    assert back["log_odds_derived"] and back["log_lik"] is None
    np.testing.assert_allclose(back["log_odds"], stats.logit(p))
    assert np.all(np.isfinite(back["log_odds"]))  # 1.0 is clipped, not infinite
    store = M.Store(tmp_path)
    store.log_odds("full/a", [0], "test")
    (note,) = store.derived_note()
    assert "full/a" in note and "derived" in note and "\n" not in note
    # the report's loader says so too
    run = make_run(tmp_path / "out", models=("a",), seeds=(0,), n_test=10, n_val=10)
    y = read_predictions(run / "predictions" / "a" / "seed0.test.csv")["label"]
    path = run / "predictions" / "a" / "seed0.test.csv"
    with path.open("w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["id", "label", "prob_spam", "pred"])
        for i, v in enumerate(y):
            w.writerow([f"t{i}", int(v), "1.0" if v else "0.25", int(v)])
    rp = load_run_predictions(run)
    assert any("derived" in n for n in rp.notes)
