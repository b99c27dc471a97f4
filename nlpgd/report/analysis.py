"""Every number of a report, from saved predictions alone (no file is written, nothing drawn).

:func:`analyse` turns one :class:`RunPredictions` into one JSON-able results dict (what
``results.json`` holds); :func:`analyse_runs` does it for several runs and pairs their
models. Keys that start with ``_`` hold arrays for the figures and are not saved.
"""

from __future__ import annotations

import math
import re

import numpy as np

from nlpgd import stats
from nlpgd.data import data_notes
from nlpgd.report.continuum import continuum, generation_summary, stack_verdicts
from nlpgd.report.load import RunPredictions, split_files
from nlpgd.report.over_seeds import summarise, threshold_of

REPORT_FORMAT = 1
CALIBRATION_METRICS = ("ece", "brier", "log_loss")
OP_TARGETS = (0.001, 0.01)
ALPHA = 0.05


# -- what the run is ----------------------------------------------------------------------


def dataset_name(data: dict) -> str:
    """Short name of the data set in ``data.json``: the source, and the file unless it is one per split."""
    source, where = data.get("source") or "?", data.get("where")
    if not where or source == "spamassassin" or split_files(where) is not None:
        return source
    if source == "hub":
        return f"{source}:{where}"
    return f"{source}:{str(where).rstrip('/').split('/')[-1]}"


def _data_summary(rp: RunPredictions) -> dict:
    d = rp.data
    yt, yv = rp.labels["test"], rp.labels["validation"]
    return {
        "name": dataset_name(d),
        "source": d.get("source"),
        "where": d.get("where"),
        "sizes": d.get("sizes", {}),
        "class_counts": d.get("class_counts", {}),
        "duplicates_removed": d.get("duplicates_removed"),
        "empty_dropped": d.get("empty_dropped"),
        "cleaning": data_notes(d),
        "n_test": int(len(yt)),
        "n_test_spam": int(yt.sum()),
        "n_test_ham": int(len(yt) - yt.sum()),
        "n_validation": int(len(yv)),
        "n_validation_spam": int(yv.sum()),
        "n_validation_ham": int(len(yv) - yv.sum()),
    }


def context_line(experiment: str, data: dict, seeds: list[int]) -> str:
    """What a figure or table was computed on, in one line."""
    return (
        f"{experiment} | {data['name']} | test {data['n_test']} ({data['n_test_spam']} spam, "
        f"{data['n_test_ham']} ham), validation {data['n_validation']} | "
        f"seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
    )


def _costs(rp: RunPredictions, model: str) -> dict:
    by_seed = rp.costs.get(model, {}) if isinstance(rp.costs, dict) else {}
    entries = [by_seed.get(f"seed{s}") or {} for s in rp.seeds]

    def first(key):
        return next((e[key] for e in entries if e.get(key) is not None), None)

    def distinct(key):
        vals = [e.get(key) for e in entries if e.get(key) is not None]
        return sorted(set(vals), key=str)

    out = {
        "type": first("type"),
        "family": first("family"),
        "device": ", ".join(map(str, distinct("device"))) or None,
        "train_examples": first("train_examples"),
        "recorded_seeds": sum(1 for e in entries if e),
    }
    params = distinct("n_parameters")
    out["n_parameters"] = params[0] if len(params) == 1 else (params or None)
    for key in ("train_seconds", "predict_seconds_per_1000", "peak_memory_mb"):
        out[key] = summarise([e.get(key) for e in entries], rp.seeds)
    return out


# -- fitted on validation, resampled on test ----------------------------------------------


def _fit_on_validation(rp: RunPredictions) -> tuple[dict, dict, dict]:
    """Per model and seed, all from the log-odds: temperature, temperature-scaled test log-odds
    (``(S, n)`` per model) and ``(log-odds threshold, ham allowed)`` per operating-point target."""
    yv, val, test = rp.labels["validation"], rp.log_odds["validation"], rp.log_odds["test"]
    temps = {m: [stats.fit_temperature(yv, p) for p in val[m]] for m in rp.models}
    calibrated = {m: np.vstack([stats.apply_temperature(p, t) for p, t in zip(test[m], temps[m])]) for m in rp.models}
    thresholds = {
        m: {t: [stats.threshold_at_ham_rate(yv, p, t) for p in val[m]] for t in OP_TARGETS} for m in rp.models
    }
    return temps, calibrated, thresholds


def _resample_model(W, y, P, C, thresholds: dict, into: dict) -> None:
    """Append one chunk of resamples to ``into`` for one model: test log-odds ``P`` and
    calibrated ``C`` (``(S, n)`` each); every metric averaged over seeds within each resample."""
    ybool = y.astype(bool)
    n_spam, n_ham = W @ ybool, W @ ~ybool
    raw = [stats.resample_metrics(W, y, p) for p in P]
    cal = [stats.resample_metrics(W, y, c, CALIBRATION_METRICS) for c in C]
    for k in stats.ALL_METRICS:
        into["raw"][k].append(np.mean([r[k] for r in raw], axis=0))
    for k in CALIBRATION_METRICS:
        into["cal"][k].append(np.mean([r[k] for r in cal], axis=0))
    for t in OP_TARGETS:
        caught, blocked = [], []
        for p, (thr, _) in zip(P, thresholds[t]):
            flag = p > threshold_of(thr)
            caught.append(stats._div(W @ (ybool & flag), n_spam, np.nan))
            blocked.append(stats._div(W @ (~ybool & flag), n_ham, np.nan))
        into["op"][t]["caught"].append(np.mean(caught, axis=0))
        into["op"][t]["blocked"].append(np.mean(blocked, axis=0))


def _bootstrap(rp: RunPredictions, calibrated: dict, thresholds: dict, n_resamples: int, seed: int) -> dict:
    """Paired bootstrap distributions per model (the same resamples for every model, seed and
    variant): ``{model: {"raw": {metric}, "cal": {metric}, "op": {target: {"caught", "blocked"}}}}``."""
    y = rp.labels["test"]
    chunks = {
        m: {
            "raw": {k: [] for k in stats.ALL_METRICS},
            "cal": {k: [] for k in CALIBRATION_METRICS},
            "op": {t: {"caught": [], "blocked": []} for t in OP_TARGETS},
        }
        for m in rp.models
    }
    for W in stats.bootstrap_weights(len(y), n_resamples, seed):
        for m in rp.models:
            _resample_model(W, y, rp.log_odds["test"][m], calibrated[m], thresholds[m], chunks[m])

    def cat(node):
        if isinstance(node, dict):
            return {k: cat(v) for k, v in node.items()}
        return np.concatenate(node) if node else None

    return cat(chunks)


# -- per model ----------------------------------------------------------------------------


def _calibration(y, seeds, temps: list, calibrated, metrics: dict, dists: dict, level: float) -> dict:
    """Temperatures, and the calibration metrics on test as saved (from ``metrics``) and after scaling."""
    ones = np.ones((1, len(y)))
    point = [stats.resample_metrics(ones, y, c, CALIBRATION_METRICS) for c in calibrated]
    before = {k: metrics[k] for k in CALIBRATION_METRICS}
    after = {k: summarise([r[k][0] for r in point], seeds, dists[k], level) for k in CALIBRATION_METRICS}
    return {"temperature": summarise(temps, seeds), "before": before, "after": after}


def _operating_point(
    rp: RunPredictions, m: str, t: float, thresholds: list, dists: dict, data: dict, level: float
) -> dict:
    """The validation-chosen threshold for target ``t`` of model ``m`` (on the log-odds; shown
    as P(spam) too), and what it does on test."""
    y, yv, seeds = rp.labels["test"], rp.labels["validation"], rp.seeds
    P, V = rp.log_odds["test"][m], rp.log_odds["validation"][m]
    thr = [v[0] for v in thresholds]
    rates = [stats.rates_at_threshold(y, p, threshold_of(x)) for p, x in zip(P, thr)]
    vrates = [stats.rates_at_threshold(yv, p, threshold_of(x)) for p, x in zip(V, thr)]
    ones = np.ones((1, len(y)))
    at_thr = [
        {
            k: float(v[0])
            for k, v in stats.resample_metrics(ones, y, p, ("accuracy", "f1", "mcc"), threshold_of(x)).items()
        }
        for p, x in zip(P, thr)
    ]
    return {
        "target_ham_blocked": t,
        "validation_ham": data["n_validation_ham"],
        "validation_ham_allowed": thresholds[0][1],
        "threshold": summarise([x if x is None or not np.isfinite(x) else float(stats.prob(x)) for x in thr], seeds),
        "threshold_log_odds": summarise(thr, seeds),
        "validation_spam_caught": summarise([r[0] for r in vrates], seeds),
        "validation_ham_blocked": summarise([r[1] for r in vrates], seeds),
        "spam_caught": summarise([r[0] for r in rates], seeds, dists["caught"], level),
        "ham_blocked": summarise([r[1] for r in rates], seeds, dists["blocked"], level),
        **{k: summarise([r[k] for r in at_thr], seeds) for k in ("accuracy", "f1", "mcc")},
        "test_ham_blocked_count": summarise(
            [None if r[1] is None else r[1] * data["n_test_ham"] for r in rates], seeds
        ),
    }


def _model_result(rp: RunPredictions, m: str, fits: tuple, dists: dict, data: dict, level: float) -> dict:
    """Everything about model ``m``: test metrics, confusion matrices, calibration, operating points, costs."""
    from nlpgd.metrics import compute_metrics

    temps, calibrated, thresholds = fits
    y, seeds = rp.labels["test"], rp.seeds
    per_seed = [compute_metrics(y, log_odds=z) for z in rp.log_odds["test"][m]]
    metrics = {k: summarise([r[k] for r in per_seed], seeds, dists["raw"][k], level) for k in stats.ALL_METRICS}
    cms = [r["confusion_matrix"] for r in per_seed]
    costs = _costs(rp, m)
    return {
        "type": costs["type"],
        "family": costs["family"],
        "metrics": metrics,
        "confusion_matrix": {
            "layout": "[[tn, fp], [fn, tp]], threshold 0.5",
            "per_seed": {f"seed{s}": cm for s, cm in zip(seeds, cms)},
            "mean": np.mean(cms, axis=0).tolist(),
        },
        "calibration": _calibration(y, seeds, temps[m], calibrated[m], metrics, dists["cal"], level),
        "operating_points": [
            _operating_point(rp, m, t, thresholds[m][t], dists["op"][t], data, level) for t in OP_TARGETS
        ],
        "costs": costs,
    }


# -- the run as a whole -------------------------------------------------------------------


def _seed_probs(rp: RunPredictions, prefix: str = "") -> dict:
    """``{prefix + model: {"seed<k>": test log-odds}}``, as :func:`nlpgd.stats.mcnemar_pairs` takes it."""
    return {prefix + m: {f"seed{s}": Z for s, Z in zip(rp.seeds, rp.log_odds["test"][m])} for m in rp.models}


def _notes(experiment: str, data: dict, seeds: list[int]) -> list[str]:
    """Warnings about what the numbers can and cannot show."""
    notes = []
    if len(seeds) == 1:
        notes.append(
            f"One seed ({seeds[0]}): there is no across-seed spread, so no standard deviation is given; "
            "the 95% intervals come from resampling test messages only, and a comparison between models (the "
            "stack's verdict, McNemar) compares one training run of each: a verdict needs at least 2 seeds."
        )
    if data["n_test"] < 200 or data["n_test_spam"] < 20:
        notes.append(
            f"The test split has only {data['n_test']} messages ({data['n_test_spam']} spam): "
            "intervals are wide and the figures show plumbing, not a result."
        )
    notes.extend(f"Data: {n}." for n in data.get("cleaning", ()))
    if "smoke" in experiment.lower():
        notes.append(f"'{experiment}' is a smoke run: a check that the pipeline works, not a result.")
    zero = [t for t in OP_TARGETS if math.floor(t * data["n_validation_ham"] + 1e-9) == 0]
    if data["n_validation_ham"] and zero:
        notes.append(
            f"Validation has {data['n_validation_ham']} ham messages, so at most "
            f"{' or '.join(f'{t:.1%}' for t in zero)} ham blocked means no validation ham may be blocked at all; "
            "such a threshold is set by the single highest-scoring validation ham message and is noisy."
        )
    return notes


def _method(n_resamples: int, level: float, bootstrap_seed: int) -> dict:
    """How the numbers were computed, with library versions (the figure step adds ``figures``)."""
    import scipy
    import sklearn

    scipy_v = f"scipy {scipy.__version__}"
    return {
        "bootstrap": {
            "resamples": n_resamples,
            "level": level,
            "seed": bootstrap_seed,
            "kind": "percentile",
            "unit": "test messages, the same resamples for every model and seed; per resample the metric "
            "is averaged over seeds",
            "library": f"numpy {np.__version__}",
        },
        "mcnemar": {
            "test": "exact (binomial on discordant pairs), two-sided, per seed at threshold 0.5",
            "library": f"{scipy_v} (scipy.stats.binomtest)",
            "alpha": ALPHA,
            "multiple_comparisons": "not corrected",
        },
        "calibration": {
            "method": "temperature scaling of the stored log-odds, one T per model and seed, fitted on validation "
            "by minimising NLL",
            "library": f"{scipy_v} (scipy.optimize.minimize_scalar)",
            "ece": "top-label, 15 equal-width bins",
        },
        "operating_point": {
            "targets": list(OP_TARGETS),
            "rule": "per seed, on validation: most spam caught with ham blocked <= target (blocked when "
            "log-odds > threshold); the threshold is applied to test",
        },
        "metrics": f"nlpgd.metrics.compute_metrics (scikit-learn {sklearn.__version__}) on the stored log-odds "
        "(ranks, decisions and log loss; never a saturated P(spam)); spam is positive",
    }


def analyse(
    rp: RunPredictions,
    n_resamples: int = 1000,
    bootstrap_seed: int = 0,
    level: float = 0.95,
    generated: str | None = None,
) -> dict:
    """Every number of the report for one run (see :mod:`nlpgd.report`); ``generated`` is
    stored as given. ``_calibrated`` holds the temperature-scaled test P(spam) per model."""
    data = _data_summary(rp)
    experiment = rp.info.get("experiment") or rp.path.name
    fits = _fit_on_validation(rp)
    dists = _bootstrap(rp, fits[1], fits[2], n_resamples, bootstrap_seed)
    run = {
        "experiment": experiment,
        "run_id": rp.info.get("run_id") or rp.path.name.removesuffix(".partial"),
        "status": rp.info.get("status"),
        "seeds": rp.seeds,
        "models": rp.models,
        "started": rp.info.get("started"),
        "finished": rp.info.get("finished"),
    }
    models = {m: _model_result(rp, m, fits, dists[m], data, level) for m in rp.models}
    generation = generation_summary(rp)
    return {
        "format": REPORT_FORMAT,
        "generated": generated,
        "run": run,
        "data": data,
        "context": context_line(experiment, data, rp.seeds),
        "method": _method(n_resamples, level, bootstrap_seed),
        "notes": _notes(experiment, data, rp.seeds) + list(rp.notes),
        "models": models,
        "mcnemar": stats.mcnemar_pairs(rp.labels["test"], _seed_probs(rp), alpha=ALPHA),
        "generation": generation,
        "continuum": continuum(rp, models, generation),
        "stack": stack_verdicts(rp, models, dists, level),
        "_calibrated": {m: stats.prob(c) for m, c in fits[1].items()},
    }


# -- several runs -------------------------------------------------------------------------


def run_label(rp: RunPredictions, taken: set) -> str:
    """``<experiment>_<run id>`` made safe as a folder name, unique among ``taken`` (updated)."""
    name = f"{rp.info.get('experiment') or 'run'}_{rp.info.get('run_id') or rp.path.name}"
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"
    label, n = base, 1
    while label in taken:
        n += 1
        label = f"{base}-{n}"
    taken.add(label)
    return label


def analyse_runs(loaded: list[RunPredictions], n_resamples: int = 1000, generated: str | None = None) -> dict:
    """Results of two or more runs side by side: each run's :func:`analyse` with a ``label``,
    and, when every run has the same test messages with the same labels, McNemar's test for
    every model of one run against every model of a later one (on the seeds both have)."""
    taken: set = set()
    runs = []
    for rp in loaded:
        label = run_label(rp, taken)
        runs.append({**analyse(rp, n_resamples=n_resamples, generated=generated), "label": label})
    first = loaded[0]
    same_test = all(
        rp.test_ids == first.test_ids and np.array_equal(rp.labels["test"], first.labels["test"]) for rp in loaded[1:]
    )
    cross = []
    if same_test:
        probs = [_seed_probs(rp, f"{res['label']}/") for rp, res in zip(loaded, runs)]
        for i, a in enumerate(probs):
            for b in probs[i + 1 :]:
                cross += stats.mcnemar_pairs(first.labels["test"], a, b, alpha=ALPHA)
    return {
        "format": REPORT_FORMAT,
        "generated": generated,
        "same_test_set": same_test,
        "runs": runs,
        "cross_run_mcnemar": cross,
    }
