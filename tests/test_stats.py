"""nlpgd.stats: bootstrap, McNemar, operating points and temperature scaling."""

import math

import numpy as np
import pytest

from nlpgd import stats
from nlpgd.metrics import compute_metrics


def _scores(n, seed=0, separation=2.0, round_to=None):
    """Labels and log-odds (what every stats function takes)."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < 0.3).astype(int)
    z = separation * (2 * y - 1) + rng.normal(0, 1.5, n)
    if round_to is not None:
        z = np.round(z, round_to - 1)  # many ties
    return y, z


# -- McNemar ------------------------------------------------------------------------------


def test_mcnemar_matches_hand_worked_example():
    # b=1, c=9: 2 * P(X <= 1), X ~ Bin(10, 1/2) = 2 * (1 + 10) / 1024
    assert stats.mcnemar_exact(1, 9) == pytest.approx(0.021484375, abs=1e-12)
    assert stats.mcnemar_exact(9, 1) == pytest.approx(0.021484375, abs=1e-12)
    assert stats.mcnemar_exact(0, 0) == 1.0
    assert stats.mcnemar_exact(5, 5) == pytest.approx(1.0)
    assert stats.mcnemar_exact(0, 6) == pytest.approx(2 / 64)


def test_mcnemar_counts_discordant_pairs():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0])
    a = y.copy()  # A right everywhere
    b = y.copy()
    b[[0, 2]] = 1 - b[[0, 2]]  # B wrong on two messages A gets right
    a[5] = 1 - a[5]
    r = stats.mcnemar(y, a, b)
    assert (r["b"], r["c"], r["n"]) == (2, 1, 12)
    assert r["p_value"] == pytest.approx(stats.mcnemar_exact(2, 1))


def test_mcnemar_pairs_within_and_across_groups():
    y = np.array([1, 1, 0, 0, 1, 0, 1, 0, 1, 1, 0, 0])
    right = np.where(y == 1, 2.2, -2.2)  # log-odds
    wrong2 = right.copy()
    wrong2[[0, 2]] = -wrong2[[0, 2]]  # wrong on two messages
    models = {"a": {"seed0": right, "seed1": right}, "b": {"seed0": wrong2, "seed1": right}, "c": {"seed0": right}}
    pairs = stats.mcnemar_pairs(y, models)
    assert [(p["model_a"], p["model_b"]) for p in pairs] == [("a", "b"), ("a", "c"), ("b", "c")]
    ab = pairs[0]
    assert ab["per_seed"]["seed0"] == stats.mcnemar(y, right > 0, wrong2 > 0)
    assert (ab["per_seed"]["seed0"]["b"], ab["per_seed"]["seed1"]["b"]) == (2, 0)
    assert ab["max_p_value"] == 1.0 and ab["seeds_significant"] == 0
    assert (ab["seeds_a_more_accurate"], ab["seeds_b_more_accurate"]) == (1, 0)
    assert set(pairs[1]["per_seed"]) == {"seed0"}  # only the seeds both have
    # across two groups: every model of one against every model of the other; no shared seed, no pair
    across = stats.mcnemar_pairs(y, {"x/a": models["a"]}, {"y/b": models["b"], "y/d": {"seed7": right}})
    assert [(p["model_a"], p["model_b"]) for p in across] == [("x/a", "y/b")]
    assert across[0]["per_seed"] == ab["per_seed"]


# -- weighted metrics and bootstrap -------------------------------------------------------


@pytest.mark.parametrize("round_to", [None, 1, 2])
def test_weighted_metrics_match_compute_metrics(round_to):
    y, p = _scores(300, seed=round_to or 0, round_to=round_to)
    got = stats.resample_metrics(np.ones((1, len(y))), y, p)
    ref = compute_metrics(y, log_odds=p)
    for m in stats.ALL_METRICS:
        assert got[m][0] == pytest.approx(ref[m], abs=1e-10), m


def test_weighted_metrics_equal_metrics_of_the_explicit_resample():
    y, p = _scores(150, seed=3, round_to=2)
    W = next(stats.bootstrap_weights(len(y), 5, seed=1))
    got = stats.resample_metrics(W, y, p)
    for r in range(W.shape[0]):
        idx = np.repeat(np.arange(len(y)), W[r].astype(int))
        ref = compute_metrics(y[idx], log_odds=p[idx])
        for m in stats.ALL_METRICS:
            assert got[m][r] == pytest.approx(ref[m], abs=1e-10), (m, r)


def test_undefined_auc_in_a_one_class_resample_is_nan():
    y = np.array([0, 0, 0, 1])
    p = stats.logit([0.1, 0.2, 0.3, 0.9])
    W = np.array([[4.0, 0, 0, 0], [1, 1, 1, 1]])
    got = stats.resample_metrics(W, y, p, ["roc_auc", "pr_auc", "recall"])
    assert math.isnan(got["roc_auc"][0]) and got["roc_auc"][1] == 1.0
    assert math.isnan(got["pr_auc"][0])
    assert got["recall"][0] == 0.0


def test_bootstrap_weights_are_resamples_and_deterministic():
    chunks = list(stats.bootstrap_weights(50, 25, seed=7, max_cells=500))
    assert [c.shape for c in chunks] == [(10, 50), (10, 50), (5, 50)]
    W = np.vstack(chunks)
    assert np.all(W.sum(axis=1) == 50) and np.all(W >= 0)
    again = np.vstack(list(stats.bootstrap_weights(50, 25, seed=7, max_cells=500)))
    np.testing.assert_array_equal(W, again)
    assert not np.array_equal(W, np.vstack(list(stats.bootstrap_weights(50, 25, seed=8, max_cells=500))))


def test_bootstrap_interval_contains_point_and_narrows_with_n():
    names = ("accuracy", "f1", "mcc", "roc_auc", "brier")
    widths = {}
    for n in (200, 5000):
        y, p = _scores(n, seed=n)
        P = np.vstack([p, p + 0.1])  # two "seeds"
        res = stats.bootstrap_ci(y, P, names, n_resamples=400, seed=0)
        for m in names:
            assert res[m]["ci_low"] <= res[m]["point"] <= res[m]["ci_high"], (n, m, res[m])
        widths[n] = {m: res[m]["ci_high"] - res[m]["ci_low"] for m in names}
    for m in names:
        assert widths[5000][m] < widths[200][m] / 2, m  # ~ 1/sqrt(n): 5x narrower expected


def test_percentile_ci_ignores_nan():
    lo, hi = stats.percentile_ci([np.nan, *np.linspace(0, 1, 101)])
    assert lo == pytest.approx(0.025) and hi == pytest.approx(0.975)
    assert stats.percentile_ci([np.nan]) == (None, None)


# -- operating point ----------------------------------------------------------------------


def test_threshold_at_ham_rate_by_hand():
    ham = np.array([0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9])
    spam = np.array([0.35, 0.65, 0.95, 0.99])
    y = np.r_[np.zeros(10), np.ones(4)].astype(int)
    p = np.r_[ham, spam]
    # 10% of 10 ham: one may be blocked; threshold = second-highest ham score
    t, k = stats.threshold_at_ham_rate(y, p, 0.1)
    assert (t, k) == (0.8, 1)
    assert stats.rates_at_threshold(y, p, t) == (0.5, 0.1)
    # 0.1% of 10 ham: none may be blocked
    t, k = stats.threshold_at_ham_rate(y, p, 0.001)
    assert (t, k) == (0.9, 0)
    assert stats.rates_at_threshold(y, p, t) == (0.5, 0.0)  # 0.95 and 0.99 exceed 0.9
    assert stats.threshold_at_ham_rate(np.ones(3), [0.2, 0.5, 0.9], 0.01) == (None, 0)


# -- calibration --------------------------------------------------------------------------


def test_temperature_scaling_softens_overconfident_scores():
    rng = np.random.default_rng(0)
    n = 4000
    z_true = rng.normal(0, 2, n)
    y = (rng.random(n) < 1 / (1 + np.exp(-z_true))).astype(int)
    calibrated, overconfident = z_true, 3 * z_true  # log-odds
    assert stats.fit_temperature(y, calibrated) == pytest.approx(1.0, abs=0.15)
    T = stats.fit_temperature(y, overconfident)
    assert T == pytest.approx(3.0, rel=0.15)
    after = stats.apply_temperature(overconfident, T)
    before_ll = compute_metrics(y, log_odds=overconfident)["log_loss"]
    after_m = compute_metrics(y, log_odds=after)
    assert after_m["log_loss"] < before_ll
    assert after_m["ece"] < compute_metrics(y, log_odds=overconfident)["ece"]


def test_temperature_handles_extreme_log_odds():
    y = np.array([0, 0, 1, 1, 0, 1])
    z = np.array([-292.0, -800.0, 800.0, 39.0, 0.85, -0.85])  # far past where P(spam) is 0.0 or 1.0
    T = stats.fit_temperature(y, z)
    assert math.isfinite(T) and T > 1
    out = stats.apply_temperature(z, T)
    assert np.all(np.isfinite(out))
    np.testing.assert_allclose(stats.apply_temperature([0.2, 0.7], 1.0), [0.2, 0.7])


def test_reliability_bins():
    r = stats.reliability_bins([0, 1, 1, 0], stats.logit([0.05, 0.95, 0.91, 0.5]), n_bins=10)
    assert r["count"] == [1, 1, 2]
    assert r["fraction_spam"] == [0.0, 0.0, 1.0]
    assert r["mean_predicted"][2] == pytest.approx(0.93)


# -- label shift, thresholds and the two-level bootstrap (claims experiments) ---------------


def _calibrated_scores(n: int, prevalence: float, train_prior: float, seed: int = 0):
    """Labels drawn at ``prevalence`` and the exact posterior log-odds a model trained under
    ``train_prior`` would give: x ~ N(+1, 1) for spam, N(-1, 1) for ham."""
    rng = np.random.default_rng(seed)
    y = (rng.random(n) < prevalence).astype(int)
    x = rng.normal(np.where(y == 1, 1.0, -1.0), 1.0)
    log_lr = 2.0 * x  # log N(x; 1, 1) - log N(x; -1, 1)
    return y, log_lr + np.log(train_prior / (1 - train_prior))


@pytest.mark.parametrize("true", (0.02, 0.13, 0.5, 0.8))
def test_em_recovers_a_known_prevalence(true):
    y, p = _calibrated_scores(20_000, true, train_prior=0.3)
    estimate, iterations = stats.em_prior(p, 0.3)
    assert abs(estimate - true) < 0.015, (estimate, true)
    assert iterations < 1000
    # the training prior itself is a fixed point only when it is the truth
    assert abs(stats.em_prior(*_calibrated_scores(20_000, 0.3, 0.3)[1:], 0.3)[0] - 0.3) < 0.015


def test_em_in_every_resample_matches_em_once():
    y, p = _calibrated_scores(400, 0.1, 0.5, seed=3)
    W = np.vstack([np.ones(400), *next(stats.bootstrap_weights(400, 5, seed=0))])
    est = stats.em_prior_resampled(W, p, 0.5)
    assert est.shape == (6,)
    assert est[0] == pytest.approx(stats.em_prior(p, 0.5)[0], abs=1e-6)
    assert len(set(np.round(est, 6))) > 1


def test_adjusting_to_the_training_prior_changes_nothing():
    z = np.array([-4.6, -0.8, 0.0, 4.6, 80.0])
    assert np.allclose(stats.adjust_to_prior(z, 0.3, 0.3), z)
    assert stats.adjust_to_prior(np.array([0.0]), 0.5, 0.1)[0] == pytest.approx(np.log(0.1 / 0.9))


def test_best_threshold_and_cost_threshold():
    y = np.array([0, 0, 0, 1, 1, 1])
    p = stats.logit([0.1, 0.2, 0.6, 0.4, 0.7, 0.9])
    # MCC ties (0.707) between blocking {0.9, 0.7} and {0.9, 0.7, 0.6, 0.4}: the higher threshold wins
    assert stats.best_threshold(y, p, "mcc") == pytest.approx(stats.logit(0.6))
    assert stats.best_threshold(y, p, "f1") == pytest.approx(stats.logit(0.2))  # F1 0.857 from 0.4 up
    assert stats.best_threshold(np.zeros(3), [0.1, 0.2, 0.3], "f1") == np.inf
    # ham blocked costs 100 times a spam missed: block only what is certainly spam
    t = stats.min_cost_threshold(y, p, 100.0)
    assert not (p[y == 0] > t).any()
    assert stats.resample_cost(np.ones((1, 6)), y, p, t, 100.0)[0] == pytest.approx(np.sum((y == 1) & (p <= t)) / 6)


def test_seed_draws_and_seed_mean():
    draws = stats.seed_draws(3, 50, seed=0)
    assert draws.shape == (50, 3) and draws.max() <= 2
    assert np.array_equal(draws, stats.seed_draws(3, 50, seed=0))
    per_seed = np.tile([1.0, 2.0, 3.0], (50, 1))
    means = stats.seed_mean(per_seed, draws)
    assert means.min() >= 1 and means.max() <= 3 and means.std() > 0
    assert (stats.seed_draws(1, 4) == 0).all()


# -- undefined inputs: no RuntimeWarning, an explicit answer ----------------------------


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_nll_of_an_undefined_log_odds_is_undefined_without_a_warning():
    """label_shift shifts the log-odds by NaN where a prior could not be estimated: the loss
    there is NaN (numpy's logaddexp warned 'invalid value'); infinite log-odds stay exact."""
    loss = stats.nll([1, 0, 1, 0, 1, 0], [np.nan, np.nan, np.inf, np.inf, -np.inf, 0.0])
    assert np.isnan(loss[:2]).all()
    assert loss[2] == 0.0 and loss[3] == np.inf and loss[4] == np.inf and loss[5] == pytest.approx(math.log(2))
    shifted = stats.nll(np.ones((2, 3), dtype=int), np.array([[0.5], [np.nan]]) + np.zeros((2, 3)))
    assert np.allclose(shifted[0], math.log1p(math.exp(-0.5))) and np.isnan(shifted[1]).all()


@pytest.mark.filterwarnings("error::RuntimeWarning")
def test_average_leaves_undefined_conditions_out_and_is_undefined_where_none_is():
    """measure.average over conditions: a NaN condition is left out at that seed/resample; where
    every condition is NaN the mean is NaN (numpy's nanmean warned 'Mean of empty slice')."""
    from nlpgd.experiments.claims.measure import Stat, average

    a = Stat(np.array([1.0, np.nan]), np.array([[1.0, np.nan], [3.0, np.nan]]), (0.0, 1.0))
    b = Stat(np.array([3.0, np.nan]), np.array([[np.nan, np.nan], [5.0, np.nan]]), (-1.0, 0.5))
    mean = average([a, b])
    assert mean.point[0] == 2.0 and np.isnan(mean.point[1])
    assert mean.dist[0, 0] == 1.0 and mean.dist[1, 0] == 4.0 and np.isnan(mean.dist[:, 1]).all()
    assert mean.bounds == (-1.0, 1.0)
    with pytest.raises(ValueError):
        average([])
