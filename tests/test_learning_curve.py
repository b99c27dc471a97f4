"""The learning-curve claim measures what it says: small-data and large-data findings apart,
the messages each member needs to reach 95% of its own full-data score and the crossover
size with bootstrap intervals, and epoch choice on a validation set that scales with the
training size."""

import json
from types import SimpleNamespace

import numpy as np
import pytest
from test_claims import linear_config, run_experiment

from nlpgd import stats
from nlpgd.experiments.claims import curve_points as CP
from nlpgd.experiments.claims.learning_curve import regimes
from nlpgd.experiments.claims.measure import Stat
from nlpgd.experiments.claims.plan import Cell, TrainSet
from nlpgd.experiments.claims.runner import MIN_VALIDATION, epoch_validation

B, S = 400, 5
DRAWS = stats.seed_draws(S, B, 0)


def curve(values, noise=0.0, seed=0) -> list[Stat]:
    """One Stat per size: every seed and resample near ``values[k]``."""
    rng = np.random.default_rng(seed)
    return [Stat(np.full(S, v) + rng.normal(0, noise, S), v + rng.normal(0, noise, (B, S))) for v in values]


def test_small_and_large_data_are_separate_parts():
    parts = regimes([16, 32, 128, 512, "full"], 2000)
    assert parts == [("small data (≤ 128 messages)", [16, 32, 128]), ("large data (≥ 512 messages)", [512, "full"])]
    assert regimes([16, 32, "full"], 84) == [("small data (≤ 128 messages)", [16, 32])]


def test_messages_to_reach_95_percent_of_the_own_full_data_score():
    x = [16, 64, 256, 1024]
    fast = CP.messages_to_reach(curve([0.94, 0.96, 0.97, 0.98]), x, DRAWS, higher=True)
    slow = CP.messages_to_reach(curve([0.50, 0.70, 0.90, 0.98]), x, DRAWS, higher=True)
    assert fast["mean"] == 16 and 256 < slow["mean"] < 1024  # 0.931 is reached between 256 and 1,024
    noisy = CP.messages_to_reach(curve([0.50, 0.70, 0.90, 0.98], noise=0.03), x, DRAWS, higher=True)
    assert noisy["lo"] < noisy["hi"] and noisy["lo"] <= slow["mean"] <= noisy["hi"]
    # log loss: lower is better; reached where it is at most full / 0.95
    loss = CP.messages_to_reach(curve([0.9, 0.3, 0.21, 0.2]), x, DRAWS, higher=False)
    assert 64 < loss["mean"] <= 256


def test_the_crossover_size_has_an_interval_or_is_none_in_range():
    x = [16, 64, 256, 1024]
    crossing = CP.crossover(curve([-0.05, -0.02, 0.02, 0.05], noise=0.01), x, DRAWS)
    assert 64 < crossing["mean"] < 256 and crossing["lo"] < crossing["mean"] < crossing["hi"]
    assert crossing["share_with_crossover"] > 0.9
    never = CP.crossover(curve([0.05, 0.04, 0.05, 0.06], noise=0.001), x, DRAWS)
    assert never["mean"] is None and CP.describe_size(never, 1024) == "none in range"


def _session(n_val=200):
    texts = [f"v{i}" for i in range(n_val)]
    labels = ["spam" if i % 5 == 0 else "ham" for i in range(n_val)]
    split = SimpleNamespace(texts={"validation": texts}, labels={"validation": labels})
    return SimpleNamespace(design=SimpleNamespace(data={"main": split}))


@pytest.mark.parametrize("n_train, expected", [(8, MIN_VALIDATION), (32, 32), (128, 128), (2000, 200)])
def test_epoch_choice_validates_on_as_many_messages_as_it_trains_on(n_train, expected):
    cell = Cell(TrainSet(f"n{n_train}", size=n_train), "gpt2", 0)
    texts, labels = epoch_validation(_session(), cell, n_train)
    assert len(texts) == len(labels) == expected
    assert labels.count("spam") == round(expected / 5)  # stratified
    again = epoch_validation(_session(), Cell(TrainSet(f"n{n_train}", size=n_train), "gpt2", 1), n_train)
    assert expected == 200 or again[0] != texts  # drawn per seed


def test_the_learning_curve_reports_each_part_and_the_new_tables(tmp_path):
    folder = run_experiment("learning-curve", linear_config(tmp_path), tmp_path / "out")
    results = json.loads((folder / "results.json").read_text())
    assert {f["condition"] for f in results["findings"]} == {"small data (≤ 128 messages)"}
    titles = [t["title"] for t in results["tables"]]
    assert any(t.startswith("Training messages each member needs to reach 95%") for t in titles)
    assert any(t.startswith("Crossover: the training size") for t in titles)
    assert titles[-1] == "What differs within each pair (besides the family)"
    costs = json.loads((folder / "costs.json").read_text())
    assert costs["n16/naive_bayes"]["seed0"]["epoch_validation_messages"] == MIN_VALIDATION


def test_members_on_a_90_percent_subsample_are_drawn_at_the_size_they_trained_on():
    """Naive Bayes and logistic regression at the full size train on 90% of the train split per
    seed: the learning-curve figure draws (and the findings count) them at that size, not at
    the whole split's; a model that trains on the whole split stays at the whole split's."""
    from test_verdicts import DISC, GEN, Y_VAL, FakeStore, Y, _design, _hybrid_design, _pair

    from nlpgd.experiments.claims import EXPERIMENTS
    from nlpgd.experiments.claims.plan import MAIN
    from nlpgd.experiments.claims.runner import SEED_SHARE
    from nlpgd.experiments.compare import Splits

    d = _design()
    d.grid.learning_curve.sizes = [16, 64, "full"]
    big = Splits(texts={"train": ["x"] * 1000}, labels={"train": ["ham"] * 1000}, ids={}, y={})
    d.data = {MAIN: big}
    store = FakeStore()
    for i, name in enumerate(("n16", "n64", "full")):
        _pair(store, (f"{name}/{DISC}", f"{name}/{GEN}"), "validation", Y_VAL, "favoured", 80 + i)
        _pair(store, (f"{name}/{DISC}", f"{name}/{GEN}"), "test", Y, "favoured", 90 + i)
    result = EXPERIMENTS["learning-curve"].analyse(d, store)
    n = round(SEED_SHARE * 1000)
    for panel in result.figures[0]["panels"]:
        assert {tuple(s["x"]) for s in panel["series"] if s["label"] in (GEN, DISC)} == {(16, 64, n)}
    large = {f["statistic"] for f in result.findings if f["condition"].startswith("large")}
    assert large and all(s.endswith(f"at training size {n}") for s in large), large
    from nlpgd.experiments.claims.learning_curve import trained_on

    assert trained_on(d, GEN) == trained_on(d, DISC) == n
    # a pair whose seeds vary its fit (the GPT-2 continuum pair) trains on the whole split
    continuum = _hybrid_design("continuum")
    assert trained_on(continuum, "gpt2") == len(continuum.data[MAIN].texts["train"]) == 500
