"""Calibration for decisions rests on regret: the cost of trusting the probabilities (Bayes
threshold) beyond the cost of the same scores at a threshold chosen on validation."""

from types import SimpleNamespace

import numpy as np
import pytest

from nlpgd import stats
from nlpgd.experiments.claims import calibration as C
from nlpgd.experiments.claims import measure as M
from nlpgd.runs import write_predictions


def _gaussian(n: int, seed: int):
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    return y, 2.0 * rng.normal(np.where(y == 1, 1.0, -1.0), 1.0) + np.log(0.3 / 0.7)  # exact posterior log-odds


def test_regret_separates_trust_in_the_probabilities_from_the_ranking(tmp_path):
    yv, zv = _gaussian(4000, 1)
    y, z = _gaussian(4000, 2)
    members = {"calibrated": 0.0, "shifted": 3.0}  # the same ranking; one claims e^3 times the odds
    for m, shift in members.items():
        folder = tmp_path / "predictions" / "full" / m
        write_predictions(folder / "seed0.validation.csv", range(len(yv)), yv, zv + shift)
        write_predictions(folder / "seed0.test.csv", range(len(y)), y, z + shift)
    store = M.Store(tmp_path)
    d = SimpleNamespace(grid=SimpleNamespace(calibration=SimpleNamespace(cost_ratios=[10.0], metric="cost")))
    res = M.Resampler(len(y), 1, 200)
    st = {m: C._cell_stats(d, store, f"full/{m}", [0], res)["before"] for m in members}
    regret = {m: st[m]["regret_10"].point[0] for m in members}
    # the validation-chosen threshold cancels the shift; the Bayes threshold does not
    assert st["shifted"]["cost_10_val"].point[0] == pytest.approx(st["calibrated"]["cost_10_val"].point[0], abs=0.01)
    assert regret["shifted"] > 0.05 and abs(regret["calibrated"]) < 0.02
    assert regret["shifted"] == pytest.approx(st["shifted"]["cost_10"].point[0] - st["shifted"]["cost_10_val"].point[0])
    assert C._primary_key(d) == "regret_10"  # the verdict rests on regret
    assert stats.bayes_threshold(10.0) == pytest.approx(np.log(10.0))
