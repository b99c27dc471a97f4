"""Reports from saved predictions, never from live models.

:func:`write_report` rebuilds everything of one run folder from
``predictions/<model>/seed<k>.{validation,test}.csv`` plus ``run.json``, ``data.json`` and
``costs.json``: ``report.md``, a self-contained ``report.html`` (figures embedded as base64
data URIs), ``results.json`` (every number in the tables) and ``figures/*.png``.
:func:`write_comparison` puts two or more run folders side by side in another folder.

What the numbers are (see :mod:`nlpgd.stats` for the methods and libraries):

- every test metric: mean and standard deviation over seeds, and a 95% percentile
  bootstrap interval (numpy; 1,000 resamples of the test messages, the same resamples for
  every model and seed; per resample the metric is averaged over seeds);
- McNemar's exact test (scipy ``binomtest`` on the discordant pairs) for every pair of
  models, at the 0.5 threshold, separately for each seed (models trained with the same seed
  are paired); the table gives each seed's p-value and the largest of them, so "largest
  p < 0.05" means the difference is significant in every seed. No correction for multiple
  comparisons is applied;
- operating points: per seed, the threshold is chosen on the validation split (most spam
  caught with at most 0.1% / 1% of ham blocked) and applied unchanged to the test split;
- calibration: one temperature per model and seed fitted on validation (scipy
  ``minimize_scalar`` on log T), ECE / Brier / log loss on test before and after;
- costs as recorded by ``compare`` in ``costs.json``.
"""

from __future__ import annotations

import base64
import html
import math
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlpgd.errors import NlpgdError
from nlpgd.io import atomic_write_text, read_json, write_json
from nlpgd.runs import now_iso, open_run, read_predictions

REPORT_FORMAT = 1
SPLITS = ("validation", "test")
MAIN_METRICS = ("accuracy", "f1", "mcc", "roc_auc")
OTHER_METRICS = ("precision", "recall", "macro_f1", "pr_auc", "log_loss", "brier", "ece")
CALIBRATION_METRICS = ("ece", "brier", "log_loss")
OP_TARGETS = (0.001, 0.01)
ALPHA = 0.05
METRIC_LABELS = {
    "accuracy": "accuracy", "precision": "precision", "recall": "recall", "f1": "F1",
    "macro_f1": "macro-F1", "mcc": "MCC", "roc_auc": "ROC-AUC", "pr_auc": "PR-AUC",
    "log_loss": "log loss", "brier": "Brier", "ece": "ECE",
}  # fmt: skip


# -- loading ------------------------------------------------------------------------------


@dataclass
class RunPredictions:
    """Everything a report needs from one run folder (no model)."""

    path: Path
    info: dict
    data: dict
    costs: dict
    models: list[str]
    seeds: list[int]
    test_ids: list[str]
    labels: dict[str, np.ndarray]  # split -> (n,)
    probs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # split -> model -> (S, n)


def _rel(path: Path, root: Path) -> str:
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def load_run_predictions(run_dir: Path, *, partial_ok: bool = False) -> RunPredictions:
    """Read a run folder's saved predictions, or say in one sentence what is missing or wrong."""
    run = open_run(run_dir, allow_partial=partial_ok)
    root, info = run.path, run.info
    seeds, models = info.get("seeds"), info.get("models")
    if not isinstance(seeds, list) or not seeds or not isinstance(models, list) or not models:
        raise NlpgdError(f"{root / 'run.json'} does not list the run's seeds and models (an older or damaged run folder)")
    missing = [f for f in ("data.json", "costs.json") if not (root / f).is_file()]
    for model in models:
        for seed in seeds:
            for split in SPLITS:
                p = root / "predictions" / model / f"seed{seed}.{split}.csv"
                if not p.is_file():
                    missing.append(_rel(p, root))
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise NlpgdError(f"{root} is incomplete: missing {', '.join(missing[:4])}{more}")

    ids: dict[str, list] = {}
    labels: dict[str, np.ndarray] = {}
    probs: dict[str, dict[str, np.ndarray]] = {s: {} for s in SPLITS}
    for split in SPLITS:
        for model in models:
            rows = []
            for seed in seeds:
                path = root / "predictions" / model / f"seed{seed}.{split}.csv"
                pr = read_predictions(path)
                rel = _rel(path, root)
                if not pr["id"]:
                    raise NlpgdError(f"{root}: {rel} has no rows")
                p = pr["prob_spam"]
                if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
                    raise NlpgdError(f"{root}: {rel} has prob_spam values outside [0, 1]")
                if not np.isin(pr["label"], (0, 1)).all():
                    raise NlpgdError(f"{root}: {rel} has labels other than 0 and 1")
                if split not in ids:
                    ids[split], labels[split] = pr["id"], pr["label"]
                elif pr["id"] != ids[split]:
                    if sorted(pr["id"]) != sorted(ids[split]) or len(set(pr["id"])) != len(pr["id"]):
                        raise NlpgdError(
                            f"{root}: {rel} does not cover the same {split} messages as the other prediction files"
                        )
                    order = {k: i for i, k in enumerate(pr["id"])}
                    perm = np.array([order[k] for k in ids[split]])
                    p, pr["label"] = p[perm], pr["label"][perm]
                if not np.array_equal(pr["label"], labels[split]):
                    raise NlpgdError(f"{root}: {rel} gives other labels for the same {split} messages")
                rows.append(p)
            probs[split][model] = np.vstack(rows)
    return RunPredictions(
        path=root, info=info, data=read_json(root / "data.json"), costs=read_json(root / "costs.json"),
        models=list(models), seeds=[int(s) for s in seeds], test_ids=ids["test"], labels=labels, probs=probs,
    )


# -- analysis -----------------------------------------------------------------------------


def _finite(v) -> float | None:
    if v is None:
        return None
    v = float(v)
    return v if math.isfinite(v) else None


def _summary(per_seed: list, seeds: list[int], dist: np.ndarray | None = None, level: float = 0.95) -> dict:
    from nlpgd.stats import percentile_ci

    vals = [_finite(v) for v in per_seed]
    ok = [v for v in vals if v is not None]
    lo, hi = percentile_ci(dist, level) if dist is not None else (None, None)
    return {
        "mean": float(np.mean(ok)) if ok else None,
        "std": float(np.std(ok, ddof=1)) if len(ok) > 1 else None,
        "ci_low": lo,
        "ci_high": hi,
        "per_seed": {f"seed{s}": v for s, v in zip(seeds, vals)},
    }


def dataset_name(data: dict) -> str:
    source, where = data.get("source") or "?", data.get("where")
    if not where or source == "spamassassin":
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
        out[key] = _summary([e.get(key) for e in entries], rp.seeds)
    return out


def analyse(rp: RunPredictions, n_resamples: int = 1000, bootstrap_seed: int = 0, level: float = 0.95) -> dict:
    """Every number of the report for one run, as a JSON-able dict (see the module docstring)."""
    import matplotlib
    import scipy
    import sklearn

    from nlpgd import stats
    from nlpgd.metrics import compute_metrics

    seeds, S = rp.seeds, len(rp.seeds)
    y, yv = rp.labels["test"], rp.labels["validation"]
    ybool = y.astype(bool)
    test, val = rp.probs["test"], rp.probs["validation"]
    data = _data_summary(rp)
    experiment = rp.info.get("experiment") or rp.path.name

    # fitted on validation, per model and seed
    temps = {m: [stats.fit_temperature(yv, val[m][s]) for s in range(S)] for m in rp.models}
    calibrated = {m: np.vstack([stats.apply_temperature(test[m][s], temps[m][s]) for s in range(S)]) for m in rp.models}
    thresholds = {
        m: {t: [stats.threshold_at_ham_rate(yv, val[m][s], t) for s in range(S)] for t in OP_TARGETS} for m in rp.models
    }

    # paired bootstrap: the same resamples for every model, seed and variant
    dists: dict = {m: {"raw": {k: [] for k in stats.ALL_METRICS}, "cal": {k: [] for k in CALIBRATION_METRICS},
                       "op": {t: {"caught": [], "blocked": []} for t in OP_TARGETS}} for m in rp.models}
    for W in stats.bootstrap_weights(len(y), n_resamples, bootstrap_seed):
        n_spam, n_ham = W @ ybool, W @ ~ybool
        for m in rp.models:
            raw = [stats.resample_metrics(W, y, test[m][s]) for s in range(S)]
            cal = [stats.resample_metrics(W, y, calibrated[m][s], CALIBRATION_METRICS) for s in range(S)]
            for k in stats.ALL_METRICS:
                dists[m]["raw"][k].append(np.mean([r[k] for r in raw], axis=0))
            for k in CALIBRATION_METRICS:
                dists[m]["cal"][k].append(np.mean([r[k] for r in cal], axis=0))
            for t in OP_TARGETS:
                caught, blocked = [], []
                for s in range(S):
                    thr = thresholds[m][t][s][0]
                    flag = test[m][s] > (thr if thr is not None else np.inf)
                    caught.append(stats._div(W @ (ybool & flag), n_spam, np.nan))
                    blocked.append(stats._div(W @ (~ybool & flag), n_ham, np.nan))
                dists[m]["op"][t]["caught"].append(np.mean(caught, axis=0))
                dists[m]["op"][t]["blocked"].append(np.mean(blocked, axis=0))

    def cat(chunks):
        return np.concatenate(chunks) if chunks else None

    models: dict = {}
    for m in rp.models:
        per_seed = [compute_metrics(y, test[m][s]) for s in range(S)]
        metrics = {
            k: _summary([r[k] for r in per_seed], seeds, cat(dists[m]["raw"][k]), level) for k in stats.ALL_METRICS
        }
        cms = [r["confusion_matrix"] for r in per_seed]
        ones = np.ones((1, len(y)))
        cal_point = [stats.resample_metrics(ones, y, calibrated[m][s], CALIBRATION_METRICS) for s in range(S)]
        calibration = {
            "temperature": _summary(temps[m], seeds),
            "before": {k: metrics[k] for k in CALIBRATION_METRICS},
            "after": {
                k: _summary([r[k][0] for r in cal_point], seeds, cat(dists[m]["cal"][k]), level)
                for k in CALIBRATION_METRICS
            },
        }
        ops = []
        for t in OP_TARGETS:
            thr = [v[0] for v in thresholds[m][t]]
            rates = [stats.rates_at_threshold(y, test[m][s], thr[s] if thr[s] is not None else np.inf) for s in range(S)]
            vrates = [stats.rates_at_threshold(yv, val[m][s], thr[s] if thr[s] is not None else np.inf) for s in range(S)]
            at_thr = [compute_metrics(y, test[m][s], threshold=thr[s] if thr[s] is not None else np.inf) for s in range(S)]
            ops.append({
                "target_ham_blocked": t,
                "validation_ham": data["n_validation_ham"],
                "validation_ham_allowed": thresholds[m][t][0][1],
                "threshold": _summary(thr, seeds),
                "validation_spam_caught": _summary([r[0] for r in vrates], seeds),
                "validation_ham_blocked": _summary([r[1] for r in vrates], seeds),
                "spam_caught": _summary([r[0] for r in rates], seeds, cat(dists[m]["op"][t]["caught"]), level),
                "ham_blocked": _summary([r[1] for r in rates], seeds, cat(dists[m]["op"][t]["blocked"]), level),
                **{k: _summary([r[k] for r in at_thr], seeds) for k in ("accuracy", "f1", "mcc")},
                "test_ham_blocked_count": _summary(
                    [None if r[1] is None else r[1] * data["n_test_ham"] for r in rates], seeds
                ),
            })  # fmt: skip
        costs = _costs(rp, m)
        models[m] = {
            "type": costs["type"],
            "family": costs["family"],
            "metrics": metrics,
            "confusion_matrix": {
                "layout": "[[tn, fp], [fn, tp]], threshold 0.5",
                "per_seed": {f"seed{s}": cm for s, cm in zip(seeds, cms)},
                "mean": np.mean(cms, axis=0).tolist(),
            },
            "calibration": calibration,
            "operating_points": ops,
            "costs": costs,
        }

    pairs = []
    for i, a in enumerate(rp.models):
        for b in rp.models[i + 1 :]:
            per = {}
            for s, seed in enumerate(seeds):
                per[f"seed{seed}"] = stats.mcnemar(y, test[a][s] > 0.5, test[b][s] > 0.5)
            ps = [r["p_value"] for r in per.values()]
            a_better = sum(r["b"] > r["c"] for r in per.values())
            b_better = sum(r["c"] > r["b"] for r in per.values())
            pairs.append({
                "model_a": a, "model_b": b, "per_seed": per,
                "max_p_value": max(ps), "seeds_significant": sum(p < ALPHA for p in ps),
                "seeds_a_more_accurate": a_better, "seeds_b_more_accurate": b_better,
            })  # fmt: skip

    notes = []
    if S == 1:
        notes.append(
            f"One seed ({seeds[0]}): there is no across-seed spread, so no standard deviation is given; "
            "the 95% intervals come from resampling test messages only."
        )
    if data["n_test"] < 200 or data["n_test_spam"] < 20:
        notes.append(
            f"The test split has only {data['n_test']} messages ({data['n_test_spam']} spam): "
            "intervals are wide and the figures show plumbing, not a result."
        )
    if "smoke" in experiment.lower():
        notes.append(f"'{experiment}' is a smoke run: a check that the pipeline works, not a result.")
    zero = [t for t in OP_TARGETS if math.floor(t * data["n_validation_ham"] + 1e-9) == 0]
    if data["n_validation_ham"] and zero:
        notes.append(
            f"Validation has {data['n_validation_ham']} ham messages, so at most "
            f"{' or '.join(f'{t:.1%}' for t in zero)} ham blocked means no validation ham may be blocked at all; "
            "such a threshold is set by the single highest-scoring validation ham message and is noisy."
        )

    return {
        "format": REPORT_FORMAT,
        "generated": now_iso(),
        "run": {
            "experiment": experiment,
            "run_id": rp.info.get("run_id") or rp.path.name.removesuffix(".partial"),
            "status": rp.info.get("status"),
            "seeds": seeds,
            "models": rp.models,
            "started": rp.info.get("started"),
            "finished": rp.info.get("finished"),
        },
        "data": data,
        "context": context_line(experiment, data, seeds),
        "method": {
            "bootstrap": {
                "resamples": n_resamples, "level": level, "seed": bootstrap_seed, "kind": "percentile",
                "unit": "test messages, the same resamples for every model and seed; per resample the metric "
                        "is averaged over seeds", "library": f"numpy {np.__version__}",
            },
            "mcnemar": {"test": "exact (binomial on discordant pairs), two-sided, per seed at threshold 0.5",
                        "library": f"scipy {scipy.__version__} (scipy.stats.binomtest)", "alpha": ALPHA,
                        "multiple_comparisons": "not corrected"},
            "calibration": {"method": "temperature scaling of logit(P(spam)), one T per model and seed, "
                                      "fitted on validation by minimising NLL",
                            "library": f"scipy {scipy.__version__} (scipy.optimize.minimize_scalar)",
                            "ece": "top-label, 15 equal-width bins"},
            "operating_point": {"targets": list(OP_TARGETS),
                                "rule": "per seed, on validation: most spam caught with ham blocked <= target "
                                        "(blocked when P(spam) > threshold); the threshold is applied to test"},
            "metrics": f"nlpgd.metrics.compute_metrics (scikit-learn {sklearn.__version__}); spam is positive",
            "figures": f"matplotlib {matplotlib.__version__} (Agg)",
        },  # fmt: skip
        "notes": notes,
        "models": models,
        "mcnemar": pairs,
        "_calibrated": calibrated,  # for the figures; dropped before results.json
    }


# -- formatting ---------------------------------------------------------------------------


def _num(v, digits=4, pct=False) -> str:
    """``digits`` decimals; a negative ``digits`` means that many significant digits."""
    if v is None:
        return "n/a"
    if digits < 0:
        return f"{v:.{-digits}g}"
    return f"{100 * v:.{max(digits - 2, 0)}f}%" if pct else f"{v:.{digits}f}"


def fmt_stat(st: dict | None, digits: int = 4, pct: bool = False, ci: bool = True) -> str:
    """``mean ± sd [lo, hi]`` (the ± part only with several seeds, the interval only if known)."""
    if not st or st.get("mean") is None:
        return "n/a"
    s = _num(st["mean"], digits, pct)
    if st.get("std") is not None:
        s += f" ± {_num(st['std'], digits, pct)}"
    if ci and st.get("ci_low") is not None:
        s += f" [{_num(st['ci_low'], digits, pct)}, {_num(st['ci_high'], digits, pct)}]"
    return s


def _fmt_threshold(st: dict) -> str:
    """Thresholds per seed; values next to 0 or 1 are shown by their distance from it."""

    def one(v):
        if v is None:
            return "n/a"
        if v == -math.inf:
            return "-inf (all blocked)"
        if 0.9999 <= v < 1:
            return f"1 − {1 - v:.1e}"
        if 0 < v < 1e-4:
            return f"{v:.1e}"
        return f"{v:.4f}"

    return ", ".join(one(v) for v in st["per_seed"].values())


def _fmt_p(p: float) -> str:
    return "n/a" if p is None else (f"{p:.2e}" if p < 1e-4 else f"{p:.4f}")


def _fmt_big(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, list):
        return " / ".join(_fmt_big(x) for x in v)
    return f"{int(v):,}"


def _run_blocks(res: dict, figures: dict[str, tuple[Path, str]], level: int = 1) -> list:
    """The report of one run as blocks: ("h", level, text), ("p", text), ("ul", items),
    ("table", headers, rows), ("figure", path, relative path, alt text, caption)."""
    h = lambda n, t: ("h", level + n, t)  # noqa: E731
    run, data, models = res["run"], res["data"], res["models"]
    lvl = res["method"]["bootstrap"]["level"]
    B = res["method"]["bootstrap"]["resamples"]
    S = len(run["seeds"])
    sizes = data.get("sizes") or {}
    spread = (
        f"Each cell: mean ± standard deviation over {S} seeds [{lvl:.0%} bootstrap interval]."
        if S > 1
        else f"Each cell: value for seed {run['seeds'][0]} [{lvl:.0%} bootstrap interval]; one seed, so no across-seed spread."
    )
    blocks: list = [
        h(0, f"{run['experiment']} — run {run['run_id']}"),
        ("p", f"Computed on: {res['context']}."),
        ("p", f"Data: {data['name']} ({data.get('where')}); train {sizes.get('train', 'n/a')}, validation "
              f"{data['n_validation']} ({data['n_validation_spam']} spam), test {data['n_test']} "
              f"({data['n_test_spam']} spam / {data['n_test_ham']} ham) messages; "
              f"{data.get('duplicates_removed') or 0} exact duplicates and {data.get('empty_dropped') or 0} empty "
              "texts removed before splitting."),
        ("p", f"{spread} Intervals: {B} paired bootstrap resamples of the test messages (numpy, percentile "
              "method), the metric averaged over seeds within each resample. Spam is the positive class; "
              "the decision threshold is 0.5 unless stated."),
    ]  # fmt: skip
    if res["notes"]:
        blocks.append(("ul", [f"Note: {n}" for n in res["notes"]]))

    blocks += [h(1, "Test metrics"), ("p", spread)]
    blocks.append((
        "table", ["model", "family", *(METRIC_LABELS[k] for k in MAIN_METRICS)],
        [[f"{m} ({r['type'] or '?'})", r["family"] or "?", *(fmt_stat(r["metrics"][k]) for k in MAIN_METRICS)]
         for m, r in models.items()],
    ))  # fmt: skip
    blocks += [h(2, "Other test metrics"), ("p", "Lower is better for log loss, Brier and ECE. ECE is biased upwards under resampling (binning "
                                         "noise), so its bootstrap interval can sit above the point estimate.")]
    blocks.append((
        "table", ["model", *(METRIC_LABELS[k] for k in OTHER_METRICS)],
        [[m, *(fmt_stat(r["metrics"][k]) for k in OTHER_METRICS)] for m, r in models.items()],
    ))  # fmt: skip

    blocks += [
        h(1, "Operating points"),
        ("p", "Spam filters are judged by how much spam they catch while blocking almost no ham. For each seed the "
              "threshold is chosen on the validation split (the most spam caught with at most the target share of "
              "ham blocked; a message is blocked when P(spam) > threshold) and then applied unchanged to the test "
              "split. Test rates: mean ± sd over seeds [bootstrap interval over test messages, threshold held "
              "fixed]."),
        ("table",
         ["model", "target ham blocked", "validation ham allowed", "threshold per seed", "spam caught (test)",
          "ham blocked (test)", "accuracy", "F1", "MCC"],
         [[m, f"≤ {op['target_ham_blocked']:.1%}", f"{op['validation_ham_allowed']} of {op['validation_ham']}",
           _fmt_threshold(op["threshold"]), fmt_stat(op["spam_caught"], 4, pct=True),
           fmt_stat(op["ham_blocked"], 4, pct=True), fmt_stat(op["accuracy"], ci=False),
           fmt_stat(op["f1"], ci=False), fmt_stat(op["mcc"], ci=False)]
          for m, r in models.items() for op in r["operating_points"]]),
        ("p", "Accuracy, F1 and MCC are on the test split at the chosen threshold (compare with the 0.5 "
              "threshold in the test metrics table)."),
    ]  # fmt: skip

    blocks += [
        h(1, "Calibration"),
        ("p", "Temperature scaling: one temperature T per model and seed, fitted on the validation split by "
              "minimising the negative log-likelihood of sigmoid(logit(P(spam)) / T) (scipy.optimize."
              "minimize_scalar over log T). Test ECE (top-label, 15 bins), Brier score and log loss before and "
              "after; lower is better. T > 1 means the model was over-confident."),
        ("table",
         ["model", "T", "ECE before", "ECE after", "Brier before", "Brier after", "log loss before", "log loss after"],
         [[m, fmt_stat(r["calibration"]["temperature"], 3),
           *(fmt_stat(r["calibration"][w][k]) for k in CALIBRATION_METRICS for w in ("before", "after"))]
          for m, r in models.items()]),
    ]  # fmt: skip

    blocks.append(h(1, "McNemar's exact test"))
    if res["mcnemar"]:
        seeds = run["seeds"]
        blocks += [
            ("p", "For each pair of models and each seed, on the same test messages at threshold 0.5: b = messages "
                  "only model A gets right, c = messages only model B gets right; the two-sided exact p-value is "
                  "scipy.stats.binomtest(b, b + c, 0.5). 'largest p' is the largest over seeds: below "
                  f"{ALPHA} means the models differ in every seed. Not corrected for multiple comparisons "
                  f"({len(res['mcnemar'])} pair{'s' if len(res['mcnemar']) > 1 else ''})."),
            ("table",
             ["model A", "model B", *(f"seed {s}: p (b / c)" for s in seeds), "largest p", "more accurate"],
             [[pr["model_a"], pr["model_b"],
               *(f"{_fmt_p(pr['per_seed'][f'seed{s}']['p_value'])} ({pr['per_seed'][f'seed{s}']['b']} / "
                 f"{pr['per_seed'][f'seed{s}']['c']})" for s in seeds),
               _fmt_p(pr["max_p_value"]), _more_accurate(pr, len(seeds))]
              for pr in res["mcnemar"]]),
        ]  # fmt: skip
    else:
        blocks.append(("p", "Only one model: nothing to compare."))

    blocks += [
        h(1, "Costs"),
        ("p", "As recorded by compare: wall-clock training time, prediction time per 1,000 messages (validation "
              "and test together), parameter count, peak resident memory of the process while training (MB), "
              "and the device. Mean ± sd over seeds."),
        ("table",
         ["model", "type", "device", "train s", "train examples", "predict s / 1,000", "parameters", "peak memory MB"],
         [[m, r["costs"]["type"] or "?", r["costs"]["device"] or "n/a", fmt_stat(r["costs"]["train_seconds"], -3),
           _fmt_big(r["costs"]["train_examples"]), fmt_stat(r["costs"]["predict_seconds_per_1000"], -3),
           _fmt_big(r["costs"]["n_parameters"]), fmt_stat(r["costs"]["peak_memory_mb"], 0)]
          for m, r in models.items()]),
    ]  # fmt: skip

    from nlpgd.plots import FIGURES

    blocks.append(h(1, "Figures"))
    for name, (path, rel) in figures.items():
        blocks.append(("figure", path, rel, FIGURES.get(name, name), f"{FIGURES.get(name, name)} — {res['context']}"))
    return blocks


def _more_accurate(pr: dict, n_seeds: int) -> str:
    a, b = pr["seeds_a_more_accurate"], pr["seeds_b_more_accurate"]
    if a == b == 0:
        return "tie"
    name, k = (pr["model_a"], a) if a >= b else (pr["model_b"], b)
    return f"{name} ({k} of {n_seeds} seed{'s' if n_seeds > 1 else ''})"


def _md_cell(v) -> str:
    return str(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list) -> str:
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            out += ["#" * min(b[1], 6) + " " + b[2], ""]
        elif kind == "p":
            out += [b[1], ""]
        elif kind == "ul":
            out += [f"- {item}" for item in b[1]] + [""]
        elif kind == "table":
            headers, rows = b[1], b[2]
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("")
        elif kind == "figure":
            out += [f"![{b[3]}]({b[2]})", "", f"*{b[4]}*", ""]
    return "\n".join(out).rstrip() + "\n"


def _h(text) -> str:
    # escaped text; "://" is broken up so no URL-looking text (e.g. a data source) appears in the page
    return html.escape(str(text)).replace("://", "&#58;//")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.5em 0 1.2em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2} tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0 2em} figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.85em;color:#555} li{margin:0.2em 0}
"""


def render_html(blocks: list, title: str) -> str:
    """A self-contained page: inline CSS, figures as base64 data URIs, no external reference."""
    out = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">',
           f"<title>{_h(title)}</title>", f"<style>{CSS}</style>", "</head>", "<body>"]  # fmt: skip
    for b in blocks:
        kind = b[0]
        if kind == "h":
            n = min(b[1], 6)
            out.append(f"<h{n}>{_h(b[2])}</h{n}>")
        elif kind == "p":
            out.append(f"<p>{_h(b[1])}</p>")
        elif kind == "ul":
            out.append("<ul>" + "".join(f"<li>{_h(i)}</li>" for i in b[1]) + "</ul>")
        elif kind == "table":
            out.append("<table><thead><tr>" + "".join(f"<th>{_h(c)}</th>" for c in b[1]) + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_h(c)}</td>" for c in r) + "</tr>" for r in b[2]]
            out.append("</tbody></table>")
        elif kind == "figure":
            data = base64.b64encode(Path(b[1]).read_bytes()).decode("ascii")
            out.append(f'<figure><img alt="{_h(b[3])}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{_h(b[4])}</figcaption></figure>")  # fmt: skip
    out += ["</body>", "</html>", ""]
    return "\n".join(out)


def _clean(obj):
    """JSON-safe copy: NaN/inf become null, numpy types become Python ones."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return _clean(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


# -- writing ------------------------------------------------------------------------------


def _build(rp: RunPredictions, fig_dir: Path, n_resamples: int) -> tuple[dict, dict[str, Path]]:
    from nlpgd.plots import write_figures

    res = analyse(rp, n_resamples=n_resamples)
    figures = write_figures(
        fig_dir, rp.labels["test"], rp.probs["test"], res.pop("_calibrated"), rp.seeds, res["context"]
    )
    return res, figures


def _write_outputs(out_dir: Path, blocks: list, title: str, results: dict) -> Path:
    out_dir.mkdir(parents=True, exist_ok=True)
    md = out_dir / "report.md"
    atomic_write_text(md, render_markdown(blocks))
    atomic_write_text(out_dir / "report.html", render_html(blocks, title))
    write_json(out_dir / "results.json", _clean(results))
    return md


def write_report(run_dir: Path, partial_ok: bool = False, out_dir: Path | None = None,
                 n_resamples: int = 1000) -> Path:
    """Rebuild ``report.md``, ``report.html``, ``results.json`` and ``figures/*.png`` of one run
    from its saved predictions (no model is loaded). They go into the run folder unless
    ``out_dir`` is given. ``partial_ok`` accepts a ``<id>.partial`` folder (``compare`` reports
    before marking the run complete). Returns the path of ``report.md``."""
    rp = load_run_predictions(run_dir, partial_ok=partial_ok)
    out_dir = Path(out_dir) if out_dir is not None else rp.path
    res, figures = _build(rp, out_dir / "figures", n_resamples)
    figs = {name: (path, _rel(path, out_dir)) for name, path in figures.items()}
    res["figures"] = {name: rel for name, (_, rel) in figs.items()}
    blocks = _run_blocks(res, figs)
    title = f"{res['run']['experiment']} — run {res['run']['run_id']}"
    return _write_outputs(out_dir, blocks, title, res)


def _label(rp: RunPredictions, taken: set) -> str:
    name = f"{rp.info.get('experiment') or 'run'}_{rp.info.get('run_id') or rp.path.name}"
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("_") or "run"
    label, n = base, 1
    while label in taken:
        n += 1
        label = f"{base}-{n}"
    taken.add(label)
    return label


def write_comparison(run_dirs: list[Path], out_dir: Path, n_resamples: int = 1000) -> Path:
    """A combined report of two or more finished runs in ``out_dir`` (``report.md``,
    ``report.html``, ``results.json``, ``figures/<run>/*.png``). Returns the path of ``report.md``.

    Each run keeps its own intervals and McNemar tests. When every run has the same test
    messages with the same labels, models of different runs are also paired with McNemar's
    test, seed by seed on the seeds the two runs share."""
    from nlpgd import stats

    if not run_dirs:
        raise NlpgdError("no run folder given")
    out_dir = Path(out_dir)
    loaded = [load_run_predictions(d) for d in run_dirs]
    seen = {}
    for rp in loaded:
        if rp.path in seen:
            raise NlpgdError(f"run folder {rp.path} is given twice")
        seen[rp.path] = True
    taken: set = set()
    runs, sections = [], []
    for rp in loaded:
        label = _label(rp, taken)
        res, figures = _build(rp, out_dir / "figures" / label, n_resamples)
        figs = {name: (path, _rel(path, out_dir)) for name, path in figures.items()}
        res["label"] = label
        res["figures"] = {name: rel for name, (_, rel) in figs.items()}
        runs.append(res)
        sections.append(_run_blocks(res, figs, level=2))

    same_test = all(
        rp.test_ids == loaded[0].test_ids and np.array_equal(rp.labels["test"], loaded[0].labels["test"])
        for rp in loaded[1:]
    )
    cross = []
    if same_test:
        y = loaded[0].labels["test"]
        for i, (ra, resa) in enumerate(zip(loaded, runs)):
            for rb, resb in list(zip(loaded, runs))[i + 1 :]:
                common = [s for s in ra.seeds if s in rb.seeds]
                for ma in ra.models:
                    for mb in rb.models:
                        per = {}
                        for s in common:
                            pa = ra.probs["test"][ma][ra.seeds.index(s)]
                            pb = rb.probs["test"][mb][rb.seeds.index(s)]
                            per[f"seed{s}"] = stats.mcnemar(y, pa > 0.5, pb > 0.5)
                        if per:
                            ps = [r["p_value"] for r in per.values()]
                            cross.append({
                                "model_a": f"{resa['label']}/{ma}", "model_b": f"{resb['label']}/{mb}",
                                "per_seed": per, "max_p_value": max(ps),
                                "seeds_significant": sum(p < ALPHA for p in ps),
                                "seeds_a_more_accurate": sum(r["b"] > r["c"] for r in per.values()),
                                "seeds_b_more_accurate": sum(r["c"] > r["b"] for r in per.values()),
                            })  # fmt: skip

    blocks: list = [
        ("h", 1, f"Comparison of {len(runs)} runs"),
        ("ul", [f"{r['label']}: {r['context']}" for r in runs]),
        ("p", "Each cell: mean ± standard deviation over seeds [95% paired bootstrap interval over that run's test "
              "messages]. " + ("All runs share the same test messages, so models of different runs are also "
                               "paired with McNemar's test below." if same_test else
                               "The runs do not share one test set: numbers from different runs are not paired, "
                               "compare them with care.")),
        ("table",
         ["run", "model", "family", "test n", *(METRIC_LABELS[k] for k in MAIN_METRICS),
          "spam caught at ≤ 1% ham blocked", "ECE after T-scaling", "train s"],
         [[r["label"], m, mr["family"] or "?", r["data"]["n_test"], *(fmt_stat(mr["metrics"][k]) for k in MAIN_METRICS),
           fmt_stat(next(op for op in mr["operating_points"] if op["target_ham_blocked"] == 0.01)["spam_caught"],
                    pct=True),
           fmt_stat(mr["calibration"]["after"]["ece"], ci=False), fmt_stat(mr["costs"]["train_seconds"], -3, ci=False)]
          for r in runs for m, mr in r["models"].items()]),
    ]  # fmt: skip
    if cross:
        blocks += [
            ("h", 2, "McNemar's exact test across runs"),
            ("p", "Same test messages, threshold 0.5, seed by seed on the seeds both runs have; b / c = messages "
                  "only model A / only model B gets right; p from scipy.stats.binomtest(b, b + c, 0.5)."),
            ("table", ["model A", "model B", "p per seed (b / c)", "largest p", "more accurate"],
             [[pr["model_a"], pr["model_b"],
               "; ".join(f"{k}: {_fmt_p(v['p_value'])} ({v['b']} / {v['c']})" for k, v in pr["per_seed"].items()),
               _fmt_p(pr["max_p_value"]), _more_accurate(pr, len(pr["per_seed"]))] for pr in cross]),
        ]  # fmt: skip
    for sec in sections:
        blocks += sec
    results = {"format": REPORT_FORMAT, "generated": now_iso(), "same_test_set": same_test, "runs": runs,
               "cross_run_mcnemar": cross}  # fmt: skip
    return _write_outputs(out_dir, blocks, f"Comparison of {len(runs)} runs", results)
