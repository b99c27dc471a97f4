"""Label shift measured as adaptation: corrections start from the prior a model's outputs assume,
the finding is the gain of the EM prior after temperature calibration, and BBSE estimates too."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
import yaml
from test_claims import run_experiment

from nlpgd import stats
from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims import label_shift as LS
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.runner import assumed_spam_prior
from nlpgd.io import write_json
from nlpgd.models.base import MODEL_META
from nlpgd.models.logreg import LogRegClassifier
from nlpgd.models.registry import load_model
from nlpgd.params import LogRegParams
from nlpgd.runs import read_predictions, write_predictions

from conftest import TINY_CSV


def _gaussian(n: int, prevalence: float, seed: int):
    """Labels at ``prevalence`` and the log-likelihood ratio 2x of x ~ N(+-1, 1)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    return y, 2.0 * rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)


def test_bbse_recovers_a_known_prevalence():
    yv, lv = _gaussian(20_000, 0.3, seed=1)
    for true in (0.05, 0.5, 0.8):
        y, lam = _gaussian(20_000, true, seed=2)
        est = stats.bbse_prior(yv, lv, lam)
        assert est.shape == (1,) and abs(est[0] - true) < 0.02, (true, est)
    # a classifier whose decisions ignore the label gives no estimate
    assert np.isnan(stats.bbse_prior([0, 1, 0, 1], [1.0, 1.0, 1.0, 1.0], [1.0, -1.0])[0])


def _design(q: float, n_seeds: int = 1):
    grid = SimpleNamespace(label_shift=SimpleNamespace(prevalences=[q], metric="log_loss"), bootstrap=200)
    return SimpleNamespace(grid=grid, seeds_of=lambda m: list(range(n_seeds)))


def _store(tmp_path, q: float, members: dict) -> M.Store:
    """A claims folder by hand: for each member, validation log-odds and a resampled test subset
    at prevalence ``q``, with the record a label-shift eval writes."""
    train = 0.3
    yv, lv = _gaussian(3000, train, seed=3)
    y, lam = _gaussian(2000, q, seed=4)
    for m, (scale, assumed) in members.items():
        folder = tmp_path / "predictions" / "full" / m
        logit = float(stats.logit(assumed))
        write_predictions(folder / "seed0.validation.csv", range(len(yv)), yv, scale * lv + logit)
        z = scale * lam + logit
        for mode in LS.MODES:
            write_predictions(folder / f"seed0.shift-{q:g}-{mode}.csv", range(len(y)), y, z)
        em, _ = stats.em_prior(z, assumed)
        record = {"train_prior": train, "assumed_prior": assumed, "how": "adjusted"}
        record[f"{q:g}"] = {"prevalence": float(y.mean()), "n": len(y), "em_estimate": em, "bbse_estimate": None}
        write_json(folder / "seed0.shift.json", record)
    return M.Store(tmp_path)


def test_the_finding_is_the_gain_after_calibration_not_the_calibration(tmp_path):
    """Two members with the same evidence, one three times over-confident: with the EM prior
    their raw log losses differ a lot; their gains after temperature calibration do not."""
    q = 0.05
    store = _store(tmp_path, q, {"calibrated": (1.0, 0.3), "overconfident": (3.0, 0.3)})
    d = _design(q)
    shifts = {m: LS.model_shift(d, store, m) for m in ("calibrated", "overconfident")}
    raw = {m: v[q]["em"]["log_loss"].point[0] for m, v in shifts.items()}
    gain = {m: v[q]["calibrated"]["em/gain_log_loss"].point[0] for m, v in shifts.items()}
    assert raw["overconfident"] - raw["calibrated"] > 0.1
    assert abs(gain["overconfident"] - gain["calibrated"]) < 0.1 * (raw["overconfident"] - raw["calibrated"])
    assert gain["calibrated"] > 0  # at 5% spam, the EM prior beats the train prior of 30%
    for m, v in shifts.items():  # both estimators land near the truth
        for est in ("em", "bbse"):
            assert v[q]["calibrated"][f"{est}/error"].point[0] < 0.03, (m, est)


def test_corrections_start_from_the_prior_the_outputs_assume(tmp_path):
    """A member whose outputs assume a uniform prior (class_weight: balanced) and one that
    assumes the train share, with the same likelihood ratio: corrected from their own priors they
    agree; corrected from the train share (the old rule) the balanced one would be off."""
    q = 0.05
    store = _store(tmp_path, q, {"share": (1.0, 0.3), "balanced": (1.0, 0.5)})
    d = _design(q)
    shifts = {m: LS.model_shift(d, store, m) for m in ("share", "balanced")}
    for key in ("em/gain_log_loss", "em/error", "train/log_loss"):
        a, b = (shifts[m][q]["calibrated"][key].point[0] for m in ("share", "balanced"))
        assert a == pytest.approx(b, abs=1e-3), key


def test_label_shift_run_records_and_uses_the_assumed_prior(tmp_path):
    cfg = {
        "name": "shift-test",
        "seeds": [0, 1],
        "data": {"source": "csv", "path": str(TINY_CSV), "validation_size": 0.2, "test_size": 0.2},
        "models": {"naive_bayes": {}, "logreg": {"class_weight": "balanced"}},
    }
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    folder = run_experiment("label-shift", path, tmp_path / "out")
    record = json.loads((folder / "predictions/full/logreg/seed0.shift.json").read_text())
    assert record["assumed_prior"] == 0.5 and record["train_prior"] != 0.5
    for q in ("0.01", "0.5"):
        base = read_predictions(folder / f"predictions/full/logreg/seed0.shift-{q}-train.csv")
        true = read_predictions(folder / f"predictions/full/logreg/seed0.shift-{q}-true.csv")
        expected = stats.adjust_to_prior(base["log_odds"], 0.5, record[q]["prevalence"])
        np.testing.assert_allclose(true["log_odds"], expected, atol=1e-9)
        assert record[q]["bbse_estimate"] is None or 0 <= record[q]["bbse_estimate"] <= 1
    results = json.loads((folder / "results.json").read_text())
    primary = [f for f in results["findings"] if f["metric"] == "log_loss"]
    assert primary and all("gain of the EM prior" in f["metric_label"] for f in primary)
    assert any("BBSE" in f["metric_label"] for f in results["findings"])


def test_an_unknown_prior_is_one_sentence(tiny_corpus, tmp_path):
    model = LogRegClassifier(LogRegParams()).fit(*tiny_corpus)
    model.save(tmp_path / "m")
    meta = json.loads((tmp_path / "m" / MODEL_META).read_text())
    del meta["output_prior"]  # as an older nlpgd saved it
    (tmp_path / "m" / MODEL_META).write_text(json.dumps(meta))
    old = load_model(tmp_path / "m")
    assert old.output_prior() is None
    with pytest.raises(NlpgdError, match="class prior this model's outputs assume is not recorded") as err:
        assumed_spam_prior(old, "full/logreg/seed0")
    assert "\n" not in str(err.value) and "full/logreg/seed0" in str(err.value)
