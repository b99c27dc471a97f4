"""Verdicts that fail when they are wrong: synthetic predictions with a known answer through
every experiment's analysis, the coverage of the intervals in simulation, equivalence margins,
the Holm correction and the headline per pair."""

import numpy as np
import pytest
from scipy.special import expit

from nlpgd import intervals, stats
from nlpgd.config import ExperimentConfig
from nlpgd.experiments.claims import EXPERIMENTS
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import MAIN, Pair, text_eval
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.runner import Design, prefix_name
from nlpgd.experiments.compare import Splits
from nlpgd.report.verdict import (
    EQUIVALENT,
    HELD,
    NOT_HELD,
    apply_holm,
    headline,
    judge,
    verdict,
)

from conftest import TINY_CSV

SEEDS = [0, 1, 2, 3, 4]
GEN, DISC = "naive_bayes", "logreg"
TARGET = "other"


# -- synthetic predictions with a known answer --------------------------------------------


def _labels(n: int, share: float, salt: int) -> np.ndarray:
    y = np.zeros(n, dtype=int)
    y[: round(share * n)] = 1
    return np.random.default_rng(salt).permutation(y)


def _logits(y: np.ndarray, quality: str, seed: int, salt: int) -> np.ndarray:
    """A good model separates the classes (ROC-AUC near 1, low log loss), a bad one poorly."""
    rng = np.random.default_rng([seed, salt])
    strength, noise = {"good": (3.0, 1.0), "mid": (1.0, 1.0), "bad": (0.7, 1.5), "weak": (0.3, 1.0), "chance": (0, 1)}[
        quality
    ]
    return strength * (2 * y - 1) + rng.normal(0.0, noise, len(y))


class FakeStore(M.Store):
    """A run folder held in memory: ``files[(cell, seed, split)] = predictions``."""

    def __init__(self):
        super().__init__("/nonexistent")
        self.files: dict = {}
        self._json = {}

    def preds(self, cell, seed, split):
        return self.files.get((cell, seed, split))

    def put(self, cell: str, seed: int, split: str, y: np.ndarray, z: np.ndarray) -> None:
        self.files[(cell, seed, split)] = {"label": y, "prob_spam": expit(z), "log_odds": z}


def _pair(store, cells, split, y, winner, salt, loser_quality="bad", winner_quality="good", same=None):
    """Predictions of both ``cells`` (favoured, other) on one split for every seed: the winner
    (``favoured``, ``other``) gets ``winner_quality``, the loser ``loser_quality``; with no
    winner (None) both get ``winner_quality``, equal up to a tiny jitter; ``same`` maps a cell
    to logits to reuse (a model unchanged by a perturbation)."""
    for seed in SEEDS:
        base = _logits(y, winner_quality, seed, salt)
        jitter = np.random.default_rng([seed, salt, 7]).normal(0.0, 0.01, len(y))
        for role, cell in zip(("favoured", "other"), cells):
            if same and cell in same:
                z = same[cell][seed]
            elif winner is None:
                z = base + (jitter if role == "other" else 0.0)
            else:
                z = base if role == winner else _logits(y, loser_quality, seed, salt + 1)
            store.put(cell, seed, split, y, z)


def _design(metric: dict | None = None) -> Design:
    """The linear pair on 5 seeds, a trimmed grid, ``metric``: ``{grid key: metric}``."""
    grid = {
        "learning_curve": {"sizes": [16, 64]},
        "robustness": {"obfuscations": ["swap"], "strengths": [0, 0.4]},
        "missing_words": {"dropout": [0.5], "truncation": [5]},
        "label_shift": {"prevalences": [0.1, 0.5]},
        "calibration": {},
        "augmentation": {"real_sizes": [32]},
    }
    for key, name in (metric or {}).items():
        grid[key]["metric"] = name
    cfg = ExperimentConfig(
        name="t",
        seeds=SEEDS,
        data={"source": "csv", "path": str(TINY_CSV)},
        models={GEN: {"analyzer": "word"}, DISC: {}},
        experiment={**grid, "bootstrap": 200},
    )
    fake = Splits(texts={"train": ["x"] * 500}, labels={"train": ["ham"] * 500}, ids={}, y={})
    data = {MAIN: fake, TARGET: fake}
    return Design(cfg, cfg.experiment, [Pair("linear pair: naive_bayes vs logreg", GEN, DISC, "linear")], [], data)


Y, Y_VAL, Y_TARGET = _labels(400, 0.25, 1), _labels(200, 0.25, 2), _labels(300, 0.3, 3)


def _clean_full(store, d, winner=None):
    """Both members on the full split, equally good on clean validation and test."""
    cells = (f"full/{GEN}", f"full/{DISC}")
    _pair(store, cells, "validation", Y_VAL, None, 10)
    _pair(store, cells, "test", Y, None, 11)
    return cells


def _fill_shift(store, d, cells, names, winner):
    """Shifted test sets where the winner loses nothing and the loser becomes a bad model."""
    clean = {c: {s: store.preds(c, s, "test")["log_odds"] for s in SEEDS} for c in cells}
    for i, name in enumerate(names):
        if winner is None:  # both lose the same
            _pair(store, cells, name, Y, None, 20 + i, winner_quality="bad")
        else:
            keep = cells[0] if winner == "favoured" else cells[1]
            _pair(store, cells, name, Y, winner, 20 + i, same={keep: clean[keep]})


def fill_robustness(store, d, winner):
    cells = _clean_full(store, d)
    _fill_shift(store, d, cells, [text_eval(("obfuscate", "swap", 0.4)).name], winner)
    _pair(store, cells, f"on-{TARGET}", Y_TARGET, winner, 30, winner_quality="good")
    xd = (f"xd-{TARGET}/{GEN}", f"xd-{TARGET}/{DISC}")
    _pair(store, xd, "validation", Y_VAL, None, 31)
    _pair(store, xd, "test", Y_TARGET, None, 32)
    _pair(store, xd, f"on-{MAIN}", Y, winner, 33, winner_quality="good")
    if winner is None:  # equal: both lose the same across domains
        _pair(store, cells, f"on-{TARGET}", Y_TARGET, None, 30, winner_quality="bad")
        _pair(store, xd, f"on-{MAIN}", Y, None, 33, winner_quality="bad")


def fill_missing_words(store, d, winner):
    cells = _clean_full(store, d)
    names = [text_eval(("dropout", 0.5)).name, text_eval(("truncate", 5)).name]
    # the verdict's variant (shortened messages scored as prefixes) and the one with the end token
    _fill_shift(store, d, cells, [*names, *(prefix_name(n) for n in names)], winner)


def fill_learning_curve(store, d, winner):
    for size in (16, 64):
        cells = (f"n{size}/{DISC}", f"n{size}/{GEN}")  # the claim favours the discriminative
        _pair(store, cells, "validation", Y_VAL, winner, 40 + size)
        _pair(store, cells, "test", Y, winner, 41 + size)


def _calibrated(y: np.ndarray, seed: int, salt: int) -> np.ndarray:
    """The exact posterior log-odds of x ~ N(+-1, 1) at the labels' share of spam."""
    x = np.random.default_rng([seed, salt]).normal(np.where(y == 1, 1.0, -1.0), 1.0)
    return 2.0 * x + np.log(y.mean() / (1 - y.mean()))


def fill_calibration(store, d, winner):
    """The verdict rests on calibration regret: the winner's log-odds are calibrated, the loser's
    claim e^3 times the odds (the same ranking, so only trusting them costs more)."""
    for size in (16, 64):
        cells = (f"n{size}/{GEN}", f"n{size}/{DISC}")
        for split, y, salt in (("validation", Y_VAL, 50 + size), ("test", Y, 51 + size)):
            for seed in SEEDS:
                z = _calibrated(y, seed, salt)
                for role, cell in zip(("favoured", "other"), cells):
                    off = 0.0 if winner is None or role == winner else 3.0
                    store.put(cell, seed, split, y, z + off)


def fill_label_shift(store, d, winner):
    """The verdict rests on the gain of the EM prior after calibration: the winner's outputs carry
    strong evidence (EM finds the new prior, which helps), the loser's little (EM cannot find it
    and the prior it finds helps less); equal: the same."""
    cells = (f"full/{GEN}", f"full/{DISC}")
    kw = dict(winner_quality="good", loser_quality="weak")
    _pair(store, cells, "validation", Y_VAL, winner, 60, **kw)
    for q in (0.1, 0.5):
        yq = _labels(200, q, 60)
        for mode in ("train", "true", "em"):
            _pair(store, cells, f"shift-{q:g}-{mode}", yq, winner, 61 + int(10 * q), **kw)
        for c in cells:
            for s in SEEDS:
                record = store._json.setdefault(f"predictions/{c}/seed{s}.shift.json", {"train_prior": 0.25})
                record["how"] = "adjusted"
                record[f"{q:g}"] = {"prevalence": q, "em_estimate": q, "n": 200}


def fill_augmentation(store, d, winner):
    # the generator is naive Bayes; logreg is compared trained on real + synthetic (favoured) and real only
    for split, y, salt in (("validation", Y_VAL, 70), ("test", Y, 71)):
        _pair(store, (f"aug-r32-mix/{DISC}", f"n32/{DISC}"), split, y, winner, salt)
        _pair(store, (f"aug-r32-syn/{DISC}", f"n32/{GEN}"), split, y, None, salt + 5)


FILL = {
    "learning-curve": fill_learning_curve,
    "robustness": fill_robustness,
    "missing-words": fill_missing_words,
    "label-shift": fill_label_shift,
    "calibration": fill_calibration,
    "augmentation": fill_augmentation,
}
# the metric each experiment's verdict rests on: one where higher is better, one where lower is
HIGHER = {
    "learning-curve": ("learning_curve", "roc_auc"),
    "robustness": ("robustness", "roc_auc"),
    "missing-words": ("missing_words", "roc_auc"),
    "label-shift": ("label_shift", "accuracy"),
    "augmentation": ("augmentation", "f1"),
}
LOWER = {
    "learning-curve": ("learning_curve", "log_loss"),
    "robustness": ("robustness", "log_loss"),
    "missing-words": ("missing_words", "log_loss"),
    "label-shift": ("label_shift", "log_loss"),
    "calibration": ("calibration", "cost"),
    "augmentation": ("augmentation", "log_loss"),
}
CASES = [(name, key, metric) for table in (HIGHER, LOWER) for name, (key, metric) in table.items()]
EXPECTED = {"favoured": HELD, "other": NOT_HELD, None: EQUIVALENT}


def _analyse(name: str, key: str, metric: str, winner):
    d = _design({key: metric})
    store = FakeStore()
    FILL[name](store, d, winner)
    typed = EXPERIMENTS[name].analyse(d, store)
    assert isinstance(typed, ExperimentResult) and typed.experiment == name
    result = typed.to_dict()  # the form results.json and the report read
    primary = [f for f in typed.findings if f["metric"] == typed.metric]
    return result, primary


# compute and hybrids have their own known-answer tests below (their findings are not one pair on
# one metric: compute reads costs.json, hybrids compare each hybrid with the better of its two ends)
ELSEWHERE = {"compute", "hybrids"}


def test_every_experiment_and_metric_is_covered():
    assert set(FILL) | ELSEWHERE == set(EXPERIMENTS) and set(FILL) == set(LOWER)
    assert {M.better(m if m != "cost" else "brier") for _, _, m in CASES} == {"higher", "lower"}


@pytest.mark.parametrize("winner", ["favoured", "other", None], ids=["favoured-better", "favoured-worse", "equal"])
@pytest.mark.parametrize("name, key, metric", CASES, ids=[f"{n}-{m}" for n, _, m in CASES])
def test_a_known_answer_gives_its_verdict_through_every_experiment(name, key, metric, winner):
    """The member the claim favours clearly better, clearly worse, or equal within the margin:
    held, did not hold, equivalent, for every pair and part of the claim."""
    result, primary = _analyse(name, key, metric, winner)
    assert primary, result["findings"]
    expected = EXPECTED[winner]
    assert {f["verdict"] for f in primary} == {expected}, [(f["condition"], f["advantage"]) for f in primary]
    if winner == "favoured":
        assert all(f["advantage"]["lo"] > 0 for f in primary)
    compared = DISC if name == "augmentation" else "the linear pair"  # augmentation compares training sets
    assert result["verdict"]["headline"] == f"{expected} for {compared}"
    if name == "robustness":
        assert {f["condition"] for f in primary} == {"obfuscation", "tiny_spam.csv to other", "other to tiny_spam.csv"}


def test_the_generative_member_clearly_better_reads_as_the_claim_says():
    """Where the claim favours the generative member it held; where it favours the
    discriminative member (data efficiency) it did not hold."""
    _, primary = _analyse("robustness", "robustness", "roc_auc", "favoured")
    assert {f["favoured"] for f in primary} == {GEN} and {f["verdict"] for f in primary} == {HELD}
    # learning curve: the generative member (the 'other' there) clearly better
    _, primary = _analyse("learning-curve", "learning_curve", "roc_auc", "other")
    assert {f["favoured"] for f in primary} == {DISC} and {f["verdict"] for f in primary} == {NOT_HELD}


# -- the compute claim: costs.json with a known answer --------------------------------------


@pytest.mark.parametrize("winner", ["favoured", "other", None], ids=["favoured-better", "favoured-worse", "equal"])
def test_compute_known_answers_through_its_analysis(winner):
    """The discriminative member (the one the claim favours) trains in clearly fewer seconds,
    clearly more, or the same within the margin (0.1 s): held, did not hold, equivalent."""
    d = _design()
    seconds = {"favoured": (1.0, 9.0), "other": (9.0, 1.0), None: (1.0, 1.02)}[winner]  # (logreg, naive Bayes)
    rng = np.random.default_rng(5)
    store = FakeStore()
    store._json["costs.json"] = {
        f"full/{m}": {
            f"seed{s}": {"train_seconds": sec + rng.normal(0, 0.01), "predict_seconds_per_1000": 0.1} for s in SEEDS
        }
        for m, sec in zip((DISC, GEN), seconds)
    }
    typed = EXPERIMENTS["compute"].analyse(d, store)
    primary = [f for f in typed.findings if f["metric"] == typed.metric]
    assert [(f["favoured"], f["other"]) for f in primary] == [(DISC, GEN)]
    assert primary[0]["verdict"] == EXPECTED[winner], primary[0]["advantage"]
    assert typed.to_dict()["verdict"]["headline"] == f"{EXPECTED[winner]} for the linear pair"


# -- the hybrids claim: each hybrid against the better of its two ends -----------------------

GPT2_TINY = {"type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 300, "epochs": 1, "max_length": 32}
# kind: (the hybrid, its ends (generative, discriminative), the end that is better everywhere)
HYBRID_KINDS = {
    "stack": ("stack", (GEN, DISC), GEN),
    "continuum": ("gpt2_hybrid", ("gpt2", "gpt2_posterior"), "gpt2_posterior"),
}
# winner -> role -> (quality on clean data, whether a shift leaves the model unchanged); with no
# winner the hybrid is the better end up to a tiny jitter
HYBRID_PROFILES = {
    "favoured": {"hybrid": ("good", True), "better": ("mid", False), "worse": ("bad", False)},
    "other": {"hybrid": ("bad", False), "better": ("good", True), "worse": ("mid", True)},
    None: {"hybrid": ("good", True), "better": ("good", True), "worse": ("bad", False)},
}


def _hybrid_design(kind: str) -> Design:
    if kind == "stack":
        models = {GEN: {"analyzer": "word"}, DISC: {}, "stack": {"members": [GEN, DISC], "folds": 2}}
        pairs = [Pair("linear pair: naive_bayes vs logreg", GEN, DISC, "linear")]
    else:
        posterior = {**GPT2_TINY, "generative_weight": 0.0, "discriminative_weight": 1.0}
        models = {
            "gpt2": GPT2_TINY,
            "gpt2_posterior": posterior,
            "gpt2_hybrid": {**GPT2_TINY, "discriminative_weight": 0.3},
        }
        pairs = [Pair("continuum pair: gpt2 vs gpt2_posterior", "gpt2", "gpt2_posterior", "continuum")]
    cfg = ExperimentConfig(
        name="t",
        seeds=SEEDS,
        data={"source": "csv", "path": str(TINY_CSV)},
        models=models,
        experiment={"missing_words": {"dropout": [0.5], "truncation": [5]}, "bootstrap": 200},
    )
    fake = Splits(texts={"train": ["x"] * 500}, labels={"train": ["ham"] * 500}, ids={}, y={})
    return Design(cfg, cfg.experiment, pairs, [], {MAIN: fake, TARGET: fake})


def fill_hybrids(store, kind: str, winner) -> None:
    """The hybrid and both ends on the full split: clean validation and test, word dropout (the
    prefix variant the verdict uses), the cross-domain target, and (for the continuum, whose
    models can generate) the samples' label fidelity."""
    hybrid, ends, better = HYBRID_KINDS[kind]
    role = {better: "better", next(e for e in ends if e != better): "worse", hybrid: "hybrid"}  # hybrid last
    dropout = prefix_name(text_eval(("dropout", 0.5)).name)
    splits = {"validation": (Y_VAL, False), "test": (Y, False), dropout: (Y, True), f"on-{TARGET}": (Y_TARGET, True)}
    if kind == "continuum":
        splits["fidelity"] = (_labels(200, 0.5, 4), False)
    z: dict = {}
    for i, (m, r) in enumerate(role.items()):
        quality, keeps = HYBRID_PROFILES[winner][r]
        for seed in SEEDS:
            for j, (split, (y, shifted)) in enumerate(splits.items()):
                if winner is None and r == "hybrid":
                    jitter = np.random.default_rng([seed, j, 7]).normal(0.0, 0.01, len(y))
                    z[m, seed, split] = z[better, seed, split] + jitter
                elif shifted and not keeps:
                    z[m, seed, split] = _logits(y, "chance", seed, 90 + 10 * i + j)
                elif split == dropout:  # word dropout leaves this model's scores as they were
                    z[m, seed, split] = z[m, seed, "test"]
                else:
                    z[m, seed, split] = _logits(y, quality, seed, 90 + 10 * i + j)
                store.put(f"full/{m}", seed, split, y, z[m, seed, split])


@pytest.mark.parametrize("kind", list(HYBRID_KINDS))
@pytest.mark.parametrize("winner", ["favoured", "other", None], ids=["hybrid-better", "hybrid-worse", "equal"])
def test_hybrids_known_answers_against_the_better_end(kind, winner):
    """A hybrid clearly better than both ends on every measure, clearly worse than the better
    end, or the better end itself up to a jitter: held, did not hold, equivalent on every
    measure (in-domain ROC-AUC and F1, the drops at word dropout and across domains, the label
    fidelity of samples). The worse end is clearly worse than the hybrid in the equal case, so a
    comparison with the wrong end would say held there."""
    hybrid, ends, better = HYBRID_KINDS[kind]
    d = _hybrid_design(kind)
    store = FakeStore()
    fill_hybrids(store, kind, winner)
    typed = EXPERIMENTS["hybrids"].analyse(d, store)
    result = typed.to_dict()
    found = typed.findings
    conditions = {"in-domain ROC-AUC", "in-domain F1", "ROC-AUC drop at 0.5 word dropout", f"ROC-AUC drop on {TARGET}"}
    assert {f["condition"] for f in found} == conditions | (
        {"label fidelity of samples"} if kind == "continuum" else set()
    )
    assert {f["favoured"] for f in found} == {hybrid}
    expected = EXPECTED[winner]
    assert {f["verdict"] for f in found} == {expected}, [(f["condition"], f["other"], f["advantage"]) for f in found]
    in_domain = [f for f in found if f["condition"].startswith("in-domain") or winner is None]
    assert {f["other"] for f in in_domain} == {better}  # the better end, by its point estimate
    assert result["verdict"]["headline"] == f"{expected} for {hybrid} vs the better end"
    (row,) = result["tables"][0]["rows"]
    assert row[:2] == [hybrid, " | ".join(ends)]
    if winner == "other":
        assert row[2:] == [f"0 of {len(found)}", "; ".join(f["condition"] for f in found)]
        assert "No hybrid is shown at least as good as the better end on every measure" in result["verdict"]["text"]
    else:
        assert row[2:] == [f"{len(found)} of {len(found)}", "none"]
        assert f"on every measure (held or equivalent on each): {hybrid}." in result["verdict"]["text"]


# -- the intervals: coverage in simulation -------------------------------------------------


def _simulate(n_seeds: int, reps: int = 300, n: int = 300, seed_sd: float = 0.15, bootstrap: int = 200, rng_seed=12345):
    """Two members of equal true quality; each training run shifts a member's quality by a
    seed effect; test messages share a difficulty both members see. Returns the share of
    findings that report held or did not hold, the same share for the old interval (a
    bootstrap over seeds, then messages), and the ratio of seed-to-seed to test-message
    variance of one member's log loss."""
    rng = np.random.default_rng(rng_seed)
    decided, decided_old, seed_var, msg_var = 0, 0, [], []
    for r in range(reps):
        y = (rng.random(n) < 0.25).astype(int)
        hard = rng.normal(0.0, 2.0, n)  # message difficulty, shared by every model
        res = M.Resampler(n, n_seeds, bootstrap, seed=r)
        values = []
        for _ in range(2):
            P = [(2 + rng.normal(0, seed_sd)) * (2 * y - 1) + hard + rng.normal(0, 0.3, n) for _ in SEEDS]  # log-odds
            values.append(M.measure(res, y, P[:n_seeds], [M.Measure("log_loss", "log_loss")])["log_loss"])
            everyone = M.measure(res, y, P, [M.Measure("log_loss", "log_loss")])["log_loss"]
            seed_var.append(np.var(everyone.point, ddof=1))
            msg_var.append(np.var(everyone.dist[:, 0]))
        f = M.finding("p", "a", "b", tuple(values), None, metric="log_loss", statistic="s", margin=1e-9)
        decided += f["verdict"] in (HELD, NOT_HELD)
        adv = M.advantage(values[0], values[1], "lower")
        lo, hi = stats.percentile_ci(stats.seed_mean(adv.dist, stats.seed_draws(n_seeds, bootstrap, 0)))
        decided_old += judge(lo, hi, 1e-9) in (HELD, NOT_HELD)
    return decided / reps, decided_old / reps, float(np.mean(seed_var) / np.mean(msg_var))


def test_equal_members_rarely_get_a_decided_verdict_at_5_seeds():
    """Seed-to-seed variance as large as the test-message variance: at 5 seeds at most 7% of
    the findings say held or did not hold (a 95% interval: 5% expected). The bootstrap over
    seeds that the intervals used before says so far more often, here and at 3 seeds."""
    share, old, ratio = _simulate(5, reps=600)
    assert 0.5 < ratio < 2.0  # the premise: seeds vary about as much as the test set does
    assert share <= 0.07, share
    assert old > 0.1, old
    share3, old3, _ = _simulate(3, reps=200, rng_seed=3)
    assert share3 <= 0.11 and old3 > 0.15, (share3, old3)


def test_the_interval_is_the_t_interval_when_the_test_set_adds_nothing():
    point = np.array([0.1, 0.3, 0.2, 0.5, 0.4])
    got = intervals.seed_interval(point, np.tile(point, (50, 1)))
    half = 2.7764451051977987 * point.std(ddof=1) / np.sqrt(5)  # t(4) 97.5% quantile
    assert got["mean"] == pytest.approx(0.3) and got["df"] == pytest.approx(4)
    assert got["lo"] == pytest.approx(0.3 - half) and got["hi"] == pytest.approx(0.3 + half)
    one = intervals.seed_interval(point[:1], np.random.default_rng(0).normal(0.1, 0.01, (400, 1)))
    assert one["n_seeds"] == 1 and one["lo"] < 0.1 < one["hi"] and one["hi"] - one["lo"] < 0.05


def test_an_interval_past_what_the_metric_can_take_is_cut_there_and_says_so():
    """Two seeds, one near-perfect and one good: the t(1) interval of the mean ROC-AUC reaches
    past 1 and the interval of a difference of two ROC-AUCs past ±1. Both are cut at the range
    (the page says so), the mean and the verdict stay as they were."""
    from nlpgd.report.verdict import effect

    y = _labels(400, 0.25, 9)
    res = M.Resampler(len(y), 2, 200)
    roc = [M.Measure("roc_auc", "roc_auc")]
    sharp = M.measure(res, y, [_logits(y, "good", 0, 1), _logits(y, "mid", 1, 1)], roc)["roc_auc"]
    raw = intervals.seed_interval(sharp.point, sharp.dist)
    assert raw["hi"] > 1  # the premise: at 2 seeds the t interval passes what a ROC-AUC can be
    got = sharp.summary()
    assert sharp.bounds == (0.0, 1.0) and got["hi"] == 1.0 and got["cut"] == ["hi"]
    assert got["lo"] == raw["lo"] and got["mean"] == raw["mean"] and got["se"] == raw["se"]
    assert M.text(got).endswith("1.0000] (cut at the range)")
    chance = M.measure(res, y, [_logits(y, "chance", s, 2) for s in (0, 1)], roc)["roc_auc"]
    f = M.finding("p", "a", "b", (sharp, chance), None, metric="roc_auc", statistic="s", margin=0.005)
    adv = M.advantage(sharp, chance, "higher")
    assert adv.bounds == (-1.0, 1.0) and (-adv).bounds == (-1.0, 1.0)
    unclipped = intervals.seed_interval(adv.point, adv.dist)
    assert unclipped["hi"] > 1 and f["advantage"]["hi"] == 1.0 and f["advantage"]["cut"] == ["hi"]
    assert f["verdict"] == judge(unclipped["lo"], unclipped["hi"], 0.005)
    assert "(cut at the range)" in effect(f)
    # averages keep the range; a level inside it is not cut; log loss is cut at 0 only
    assert M.average([sharp, sharp]).bounds == (0.0, 1.0) and M.range_of("f1_val") == (0.0, 1.0)
    assert M.range_of("log_loss") == (0.0, np.inf)
    assert M.Stat(np.array([0.5, 0.52]), np.tile([0.5, 0.52], (50, 1)), (0.0, 1.0)).summary()["cut"] == []


# -- margins, p-values, Holm, headline ------------------------------------------------------


def test_p_values_agree_with_the_interval_and_the_margin():
    from scipy.stats import t

    for mean, se, df, margin in [(0.01, 0.004, 4.0, 0.005), (0.001, 0.001, 20.0, 0.005), (0.0, 0.01, 3.0, 0.02)]:
        half = t.ppf(0.975, df) * se  # the interval's half-width under the same t law
        p_zero, p_margin = intervals.interval_p_values(mean, se, df, margin)
        assert (p_zero < 0.05) == (mean - half > 0 or mean + half < 0)
        assert (p_margin < 0.05) == (-margin < mean - half and mean + half < margin)


def test_holm_adjusts_step_down():
    assert intervals.holm([0.01, 0.04, 0.03, None]) == pytest.approx([0.03, 0.06, 0.06, None])
    assert intervals.holm([]) == []


def _finding(pair, cond, lo, hi, p_zero, p_margin, margin=0.005):
    return {
        "pair": pair,
        "condition": cond,
        "statistic": "s",
        "metric": "roc_auc",
        "metric_label": "ROC-AUC",
        "favoured": "a",
        "other": "b",
        "better": "higher",
        "favoured_value": {"mean": 0.9},
        "other_value": {"mean": 0.8},
        "advantage": {"mean": (lo + hi) / 2, "lo": lo, "hi": hi, "n_seeds": 5},
        "margin": margin,
        "p_difference": p_zero,
        "p_equivalence": p_margin,
        "verdict": judge(lo, hi, margin),
    }


def test_holm_across_the_page_marks_what_survives():
    a = _finding("linear pair (x): nb vs lr", None, 0.01, 0.05, 0.001, 1.0)
    b = _finding("scratch pair: g vs d", None, 0.001, 0.05, 0.04, 1.0)
    c = _finding("scratch pair: g vs d", "other", -0.002, 0.002, 0.9, 0.0001)
    results = [
        {"title": "One", "metric": "roc_auc", "findings": [a]},
        {"title": "Two", "metric": "roc_auc", "findings": [b, c, {**a, "metric": "f1"}]},
    ]
    summary = apply_holm(results)
    assert summary["findings"] == 3 and summary["hypotheses"] == 6
    assert a["holm"]["survives"] is True and c["holm"]["survives"] is True and b["holm"]["survives"] is False
    assert "these do not (marked †): Two, scratch pair: held." in summary["text"]
    assert "2 of the 3 decided findings (held, did not hold, equivalent) survive it" in summary["text"]


def test_the_headline_lists_every_pair_and_its_parts():
    found = [
        _finding("linear pair (same word counts): nb vs lr", "obfuscation", 0.01, 0.05, 0.0, 1.0),
        _finding("linear pair (same word counts): nb vs lr", "A to B", 0.01, 0.05, 0.0, 1.0),
        _finding("neural pair, from scratch: g vs d", "obfuscation", -0.01, 0.05, 0.5, 1.0),
        _finding("neural pair, from scratch: g vs d", "A to B", -0.003, 0.003, 0.9, 0.01),
        _finding("nb vs lr", "obfuscation", -0.05, -0.01, 0.0, 1.0),
    ]
    assert headline(found) == (
        "held for the linear pair; for the neural pair, from scratch: inconclusive on obfuscation, equivalent on "
        "A to B; did not hold for nb vs lr"
    )
    assert "mixed" not in verdict(found)["text"]


def test_few_seeds_carry_a_one_sentence_warning():
    f = _finding("p", None, 0.01, 0.05, 0.0, 1.0)
    f["advantage"]["n_seeds"] = 2
    v = verdict([f])
    assert v["warning"].startswith("Warning: this verdict rests on 2 seeds") and v["warning"].count(". ") == 0
    assert v["warning"] in v["text"]


# -- the page --------------------------------------------------------------------------------


def test_the_claims_page_reads_at_a_glance():
    """A summary table (claim × pair, verdict words linking to the sections) first; under each
    claim the verdict line, the figure, the verdict table; every comparison folded."""
    from nlpgd.report.claims import claims_blocks, experiment_blocks
    from nlpgd.report.render import render_html, render_markdown

    results = []
    for name, winner in (("robustness", "favoured"), ("label-shift", None)):
        r, _ = _analyse(name, name.replace("-", "_"), "log_loss", winner)
        r["wall_seconds"] = 1.0
        results.append(r)
    holm = apply_holm(results)
    for r in results:
        r["holm"] = holm
    figures = {r["experiment"]: [(b"\x89PNG fake", f"{r['experiment']}/figures/f.png", "a figure")] for r in results}
    blocks = claims_blocks(results, figures, "ctx", [])
    md = render_markdown(blocks)
    assert md.index("| claim | linear pair |") < md.index("Multiple comparisons: Holm") < md.index("## Robustness")
    assert "| [Robustness to shifted data](#claim-robustness) | [held](#claim-robustness) |" in md
    assert "[equivalent](#claim-label-shift)" in md and "mixed" not in md
    section = md[md.index('<a id="claim-robustness"></a>') :]
    verdict_line = section.index("Verdict: held for the linear pair.")
    assert verdict_line < section.index("![a figure]") < section.index("| pair | obfuscation |")
    assert section.index("| pair | obfuscation |") < section.index("<details><summary>")
    assert "| linear pair: naive_bayes vs logreg | held: +" in section
    assert section.index("Every comparison behind the verdict") > section.index("<details><summary>")
    html = render_html(blocks, "t")
    assert '<h2 id="claim-robustness">' in html and '<td class="v-held"><a href="#claim-robustness">held</a>' in html
    assert '<td class="v-equivalent">equivalent: ' in html and "<details><summary>" in html
    one = render_markdown(experiment_blocks(results[0], figures["robustness"], "ctx"))
    assert one.index("Verdict: held") < one.index("![a figure]") < one.index("| pair |") < one.index("<details>")


def test_the_margins_are_the_configs():
    """A wider margin makes the same clear difference equivalent; a margin of 0 is refused."""
    from pydantic import ValidationError

    d = _design({"learning_curve": "roc_auc"})
    d.grid.margins.roc_auc = 0.9
    store = FakeStore()
    fill_learning_curve(store, d, "favoured")
    primary = [f for f in EXPERIMENTS["learning-curve"].analyse(d, store).findings if f["metric"] == "roc_auc"]
    assert {f["verdict"] for f in primary} == {EQUIVALENT} and {f["margin"] for f in primary} == {0.9}
    assert d.grid.margins.of("f1_val") == 0.01 and d.grid.margins.of("cost_100_val") == 0.01
    with pytest.raises(ValidationError, match="margin 0 is out of range"):
        type(d.grid.margins)(log_loss=0)
