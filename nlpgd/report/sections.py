"""Results to report blocks (see :mod:`nlpgd.report.render`): the sections of one run, which a
comparison of several runs reuses one heading level down, and the comparison's own tables."""

from __future__ import annotations

from nlpgd.report.analysis import ALPHA, CALIBRATION_METRICS
from nlpgd.report.figures import FIGURES
from nlpgd.report.render import fmt_big, fmt_p, fmt_stat, fmt_threshold, fmt_where
from nlpgd.report.verdict import EQUIVALENT, HELD, INCONCLUSIVE, NOT_HELD

MAIN_METRICS = ("accuracy", "f1", "mcc", "roc_auc")
OTHER_METRICS = ("precision", "recall", "macro_f1", "pr_auc", "log_loss", "brier", "ece")
METRIC_LABELS = {
    "accuracy": "accuracy",
    "precision": "precision",
    "recall": "recall",
    "f1": "F1",
    "macro_f1": "macro-F1",
    "mcc": "MCC",
    "roc_auc": "ROC-AUC",
    "pr_auc": "PR-AUC",
    "log_loss": "log loss",
    "brier": "Brier",
    "ece": "ECE",
}


def _plural(n: int) -> str:
    return "s" if n > 1 else ""


def _spread(res: dict) -> str:
    """What a cell of a metric table holds."""
    seeds, lvl = res["run"]["seeds"], res["method"]["bootstrap"]["level"]
    if len(seeds) > 1:
        return f"Each cell: mean ± standard deviation over {len(seeds)} seeds [{lvl:.0%} bootstrap interval]."
    return f"Each cell: value for seed {seeds[0]} [{lvl:.0%} bootstrap interval]; one seed, so no across-seed spread."


def _pair_cell(test: dict) -> str:
    """One seed's McNemar test: ``p (b / c)``."""
    return f"{fmt_p(test['p_value'])} ({test['b']} / {test['c']})"


def _more_accurate(pair: dict, n_seeds: int) -> str:
    a, b = pair["seeds_a_more_accurate"], pair["seeds_b_more_accurate"]
    if a == b == 0:
        return "tie"
    name, k = (pair["model_a"], a) if a >= b else (pair["model_b"], b)
    return f"{name} ({k} of {n_seeds} seed{_plural(n_seeds)})"


# -- one run ------------------------------------------------------------------------------


def _overview(res: dict, level: int) -> list:
    run, data = res["run"], res["data"]
    sizes = data.get("sizes") or {}
    blocks: list = [
        ("h", level, f"{run['experiment']} — run {run['run_id']}"),
        ("p", f"Computed on: {res['context']}."),
        (
            "p",
            f"Data: {data['name']} ({fmt_where(data.get('where'))}); train {sizes.get('train', 'n/a')}, "
            f"validation {data['n_validation']} ({data['n_validation_spam']} spam), test {data['n_test']} "
            f"({data['n_test_spam']} spam / {data['n_test_ham']} ham) messages; "
            f"{data.get('duplicates_removed') or 0} exact duplicates and {data.get('empty_dropped') or 0} empty "
            "texts removed before splitting.",
        ),
        (
            "p",
            f"{_spread(res)} Intervals: {res['method']['bootstrap']['resamples']} paired bootstrap resamples of the "
            "test messages (numpy, percentile method), the metric averaged over seeds within each resample. Spam is "
            "the positive class; the decision threshold is 0.5 unless stated.",
        ),
    ]
    if res["notes"]:
        blocks.append(("ul", [f"Note: {n}" for n in res["notes"]]))
    return blocks


def _metric_blocks(res: dict, level: int) -> list:
    models = res["models"]
    main = [
        [f"{m} ({r['type'] or '?'})", r["family"] or "?", *(fmt_stat(r["metrics"][k]) for k in MAIN_METRICS)]
        for m, r in models.items()
    ]
    other = [[m, *(fmt_stat(r["metrics"][k]) for k in OTHER_METRICS)] for m, r in models.items()]
    return [
        ("h", level + 1, "Test metrics"),
        ("p", _spread(res)),
        ("table", ["model", "family", *(METRIC_LABELS[k] for k in MAIN_METRICS)], main),
        ("h", level + 2, "Other test metrics"),
        (
            "p",
            "Lower is better for log loss, Brier and ECE. ECE is biased upwards under resampling (binning noise), "
            "so its bootstrap interval can sit above the point estimate.",
        ),
        ("table", ["model", *(METRIC_LABELS[k] for k in OTHER_METRICS)], other),
    ]


def _operating_point_row(m: str, op: dict) -> list:
    return [
        m,
        f"≤ {op['target_ham_blocked']:.1%}",
        f"{op['validation_ham_allowed']} of {op['validation_ham']}",
        fmt_threshold(op["threshold"]),
        fmt_stat(op["spam_caught"], 4, pct=True),
        fmt_stat(op["ham_blocked"], 4, pct=True),
        fmt_stat(op["accuracy"], ci=False),
        fmt_stat(op["f1"], ci=False),
        fmt_stat(op["mcc"], ci=False),
    ]


def _operating_point_blocks(res: dict, level: int) -> list:
    headers = [
        "model",
        "target ham blocked",
        "validation ham allowed",
        "threshold per seed",
        "spam caught (test)",
        "ham blocked (test)",
        "accuracy",
        "F1",
        "MCC",
    ]
    rows = [_operating_point_row(m, op) for m, r in res["models"].items() for op in r["operating_points"]]
    return [
        ("h", level + 1, "Operating points"),
        (
            "p",
            "Spam filters are judged by how much spam they catch while blocking almost no ham. For each seed the "
            "threshold is chosen on the validation split (the most spam caught with at most the target share of "
            "ham blocked; a message is blocked when P(spam) > threshold) and then applied unchanged to the test "
            "split. Test rates: mean ± sd over seeds [bootstrap interval over test messages, threshold held "
            "fixed].",
        ),
        ("table", headers, rows),
        (
            "p",
            "Accuracy, F1 and MCC are on the test split at the chosen threshold (compare with the 0.5 "
            "threshold in the test metrics table).",
        ),
    ]


def _calibration_blocks(res: dict, level: int) -> list:
    before_after = [f"{METRIC_LABELS[k]} {w}" for k in CALIBRATION_METRICS for w in ("before", "after")]
    headers = ["model", "T", *before_after]
    rows = [
        [m, fmt_stat(r["calibration"]["temperature"], 3)]
        + [fmt_stat(r["calibration"][w][k]) for k in CALIBRATION_METRICS for w in ("before", "after")]
        for m, r in res["models"].items()
    ]
    return [
        ("h", level + 1, "Calibration"),
        (
            "p",
            "Temperature scaling: one temperature T per model and seed, fitted on the validation split by "
            "minimising the negative log-likelihood of sigmoid(logit(P(spam)) / T) (scipy.optimize."
            "minimize_scalar over log T). Test ECE (top-label, 15 bins), Brier score and log loss before and "
            "after; lower is better. T > 1 means the model was over-confident.",
        ),
        ("table", headers, rows),
    ]


def _mcnemar_blocks(res: dict, level: int) -> list:
    pairs, seeds = res["mcnemar"], res["run"]["seeds"]
    blocks: list = [("h", level + 1, "McNemar's exact test")]
    if not pairs:
        return blocks + [("p", "Only one model: nothing to compare.")]
    headers = ["model A", "model B", *(f"seed {s}: p (b / c)" for s in seeds), "largest p", "more accurate"]
    rows = [
        [pr["model_a"], pr["model_b"], *(_pair_cell(pr["per_seed"][f"seed{s}"]) for s in seeds)]
        + [fmt_p(pr["max_p_value"]), _more_accurate(pr, len(seeds))]
        for pr in pairs
    ]
    text = (
        "For each pair of models and each seed, on the same test messages at threshold 0.5: b = messages only "
        "model A gets right, c = messages only model B gets right; the two-sided exact p-value is "
        "scipy.stats.binomtest(b, b + c, 0.5). 'largest p' is the largest over seeds: below "
        f"{ALPHA} means the models differ in every seed. Not corrected for multiple comparisons "
        f"({len(pairs)} pair{_plural(len(pairs))})."
    )
    return blocks + [("p", text), ("table", headers, rows)]


def _cost_row(m: str, c: dict) -> list:
    return [
        m,
        c["type"] or "?",
        c["device"] or "n/a",
        fmt_stat(c["train_seconds"], -3),
        fmt_big(c["train_examples"]),
        fmt_stat(c["predict_seconds_per_1000"], -3),
        fmt_big(c["n_parameters"]),
        fmt_stat(c["peak_memory_mb"], 0),
    ]


def _cost_blocks(res: dict, level: int) -> list:
    headers = [
        "model",
        "type",
        "device",
        "train s",
        "train examples",
        "predict s / 1,000",
        "parameters",
        "peak memory MB",
    ]
    rows = [_cost_row(m, r["costs"]) for m, r in res["models"].items()]
    return [
        ("h", level + 1, "Costs"),
        (
            "p",
            "As recorded by compare: wall-clock training time, prediction time per 1,000 messages (validation "
            "and test together), parameter count, peak resident memory of the process while training (MB), "
            "and the device. Mean ± sd over seeds.",
        ),
        ("table", headers, rows),
    ]


def _generation_blocks(res: dict, level: int) -> list:
    gen = res.get("generation") or {}
    if not gen:
        return []
    label = next(iter(gen.values()))["label"]
    headers = [
        "model",
        "samples",
        f"called {label} by naive Bayes",
        f"called {label} by the generator",
        "distinct-1",
        "distinct-2",
        "copies of training messages",
        "sharing an 8-gram with training",
    ]
    rows = [
        [m, fmt_stat(g["n_samples"], 0, ci=False), fmt_stat(g["judge_fidelity"], 4, pct=True, ci=False)]
        + [fmt_stat(g["self_fidelity"], 4, pct=True, ci=False)]
        + [fmt_stat(g[k], 3, ci=False) for k in ("distinct_1", "distinct_2")]
        + [fmt_stat(g[k], 4, pct=True, ci=False) for k in ("copy_share", "overlap_8gram_share")]
        for m, g in gen.items()
    ]
    return [
        ("h", level + 1, "Generated samples"),
        (
            "p",
            f"Each model that can generate sampled '{label}' messages after its fit (the config's generation "
            "section; sampling seed = the fit's seed). Label fidelity: the share a multinomial naive Bayes trained "
            "on the real train split (the same judge for every model) and the generator itself classify as "
            f"'{label}'. Diversity: distinct word n-grams / all word n-grams. Copies: exact copies of a training "
            "message (ignoring case). Mean ± sd over seeds.",
        ),
        ("table", headers, rows),
    ]


def _continuum_blocks(res: dict, level: int) -> list:
    cont = res.get("continuum")
    if not cont:
        return []
    headers = ["model", "generative weight", "discriminative weight", "discriminative share"]
    headers += ["F1", "log loss", "ECE", "samples called spam by naive Bayes", "distinct-2"]
    rows = [
        [p["model"], f"{p['generative_weight']:g}", f"{p['discriminative_weight']:g}", f"{p['share']:.3f}"]
        + [fmt_stat(p[k]) for k in ("f1", "log_loss", "ece")]
        + [fmt_stat(p["label_fidelity"], 4, pct=True, ci=False), fmt_stat(p["distinct_2"], 3, ci=False)]
        for p in cont["points"]
    ]
    if cont.get("label"):
        headers[-2] = f"samples called {cont['label']} by naive Bayes"
    other = cont.get("other_differences") or []
    text = (
        "Models trained on generative_weight × (mean per-token NLL under the true class) + discriminative_weight × "
        "(cross-entropy of the Bayes posterior softmax_y(log P(x|y) + log P(y))), ordered by the discriminative "
        "share dw / (gw + dw) of the loss: 0 is the pure language model, 1 the same network trained on the "
        "posterior alone. Test metrics: mean ± sd over seeds [bootstrap interval]; samples: mean ± sd over seeds "
        "(n/a: no generation section in the config)."
    )
    if other:
        text += f" Besides the weights, these models also differ in: {', '.join(other)}."
    return [("h", level + 1, "Generative-discriminative continuum"), ("p", text), ("table", headers, rows)]


def _stack_outcome(v: dict) -> str:
    """What the verdict on "the stack beats the best single arm" means, in words."""
    m = f"± {v.get('margin', 0):g}"
    return {
        HELD: "the claim that it beats the best single arm held: the interval of the F1 difference lies above 0",
        NOT_HELD: "the claim that it beats the best single arm did not hold: the interval of the F1 difference lies "
        "below 0",
        EQUIVALENT: f"it is equivalent to the best single arm: the interval of the F1 difference lies inside {m}",
        INCONCLUSIVE: "whether it beats the best single arm is inconclusive: the interval of the F1 difference "
        f"includes 0 and reaches beyond {m}"
        if v["f1_difference"]["mean"] is not None
        else "whether it beats the best single arm is inconclusive: there is no F1 to compare",
    }[v["verdict"]]


def _stack_blocks(res: dict, level: int) -> list:
    verdicts = res.get("stack") or []
    if not verdicts:
        return []
    lvl = res["method"]["bootstrap"]["level"]
    items = []
    for v in verdicts:
        d = v["f1_difference"]
        diff = "n/a" if d["mean"] is None else f"{d['mean']:+.4f} [{d['ci_low']:+.4f}, {d['ci_high']:+.4f}]"
        chosen = f" (chosen by its validation F1, {v['best_single_validation_f1']:.4f})"
        items.append(
            f"{v['stack']} (members: {', '.join(v['members'])}): {v['verdict']}; {_stack_outcome(v)}. Test F1 "
            f"{fmt_stat(v['stack_f1'])} against {v['best_single']} {fmt_stat(v['best_single_f1'])}{chosen}; "
            f"difference {diff} ({lvl:.0%} paired bootstrap interval over test messages)."
        )
    return [
        ("h", level + 1, "Stack against the best single arm"),
        (
            "p",
            "The best single arm is the model with the highest mean validation F1 among those that are not stacks "
            "(chosen on validation, so the test comparison does not favour it; ties go to the first in the config). "
            "The stack's logistic regression was fitted on out-of-fold scores of the train split; validation only "
            "chose its regularisation. Both are then compared on test. The verdict on the claim that the stack beats "
            "it: held or did not hold when the interval of the F1 difference lies above or below 0, equivalent when "
            "it lies inside the F1 margin (experiment.margins.f1), inconclusive otherwise.",
        ),
        ("ul", items),
    ]


def _figure_blocks(res: dict, figures: dict[str, tuple[bytes, str]], level: int) -> list:
    blocks: list = [("h", level + 1, "Figures")]
    for name, (png, rel) in figures.items():
        title = FIGURES.get(name, name)
        blocks.append(("figure", png, rel, title, f"{title} — {res['context']}"))
    return blocks


def run_blocks(res: dict, figures: dict[str, tuple[bytes, str]], level: int = 1) -> list:
    """The report of one run; its title is a heading of ``level`` (2 inside a comparison).
    ``figures`` maps a figure name to its PNG and its path relative to the report."""
    return [
        *_overview(res, level),
        *_metric_blocks(res, level),
        *_operating_point_blocks(res, level),
        *_calibration_blocks(res, level),
        *_mcnemar_blocks(res, level),
        *_continuum_blocks(res, level),
        *_generation_blocks(res, level),
        *_cost_blocks(res, level),
        *_stack_blocks(res, level),
        *_figure_blocks(res, figures, level),
    ]


# -- several runs -------------------------------------------------------------------------


def _comparison_row(r: dict, m: str, mr: dict) -> list:
    at_1pct = next(op for op in mr["operating_points"] if op["target_ham_blocked"] == 0.01)
    return [
        r["label"],
        m,
        mr["family"] or "?",
        r["data"]["n_test"],
        *(fmt_stat(mr["metrics"][k]) for k in MAIN_METRICS),
        fmt_stat(at_1pct["spam_caught"], pct=True),
        fmt_stat(mr["calibration"]["after"]["ece"], ci=False),
        fmt_stat(mr["costs"]["train_seconds"], -3, ci=False),
    ]


def _comparison_overview(runs: list, same_test: bool) -> list:
    pairing = (
        "All runs share the same test messages, so models of different runs are also paired with McNemar's test below."
        if same_test
        else "The runs do not share one test set: numbers from different runs are not paired, compare them with care."
    )
    headers = [
        "run",
        "model",
        "family",
        "test n",
        *(METRIC_LABELS[k] for k in MAIN_METRICS),
        "spam caught at ≤ 1% ham blocked",
        "ECE after T-scaling",
        "train s",
    ]
    return [
        ("h", 1, f"Comparison of {len(runs)} runs"),
        ("ul", [f"{r['label']}: {r['context']}" for r in runs]),
        (
            "p",
            "Each cell: mean ± standard deviation over seeds [95% paired bootstrap interval over that run's test "
            "messages]. " + pairing,
        ),
        ("table", headers, [_comparison_row(r, m, mr) for r in runs for m, mr in r["models"].items()]),
    ]


def _cross_mcnemar_blocks(cross: list) -> list:
    rows = [
        [pr["model_a"], pr["model_b"], "; ".join(f"{k}: {_pair_cell(v)}" for k, v in pr["per_seed"].items())]
        + [fmt_p(pr["max_p_value"]), _more_accurate(pr, len(pr["per_seed"]))]
        for pr in cross
    ]
    return [
        ("h", 2, "McNemar's exact test across runs"),
        (
            "p",
            "Same test messages, threshold 0.5, seed by seed on the seeds both runs have; b / c = messages "
            "only model A / only model B gets right; p from scipy.stats.binomtest(b, b + c, 0.5).",
        ),
        ("table", ["model A", "model B", "p per seed (b / c)", "largest p", "more accurate"], rows),
    ]


def comparison_blocks(results: dict, figures: dict[str, dict[str, tuple[bytes, str]]]) -> list:
    """The report of several runs: an overview table, McNemar across runs when they share a
    test set, then each run's own sections. ``figures`` maps a run's label to its figures."""
    runs = results["runs"]
    blocks = _comparison_overview(runs, results["same_test_set"])
    if results["cross_run_mcnemar"]:
        blocks += _cross_mcnemar_blocks(results["cross_run_mcnemar"])
    for r in runs:
        blocks += run_blocks(r, figures[r["label"]], level=2)
    return blocks
