"""Calibration for decisions: are the probabilities good enough to act on?

The fits are the learning curve's (the same cells; in a claims run they are fitted once). Per
model and training size: ECE, Brier score and log loss on test before and after temperature
scaling (one temperature per seed, fitted on validation), and the expected cost per message of
blocking when P(spam) exceeds a threshold, at each cost ratio R of a ham blocked to a spam
missed: with the Bayes threshold R / (1 + R) applied to the probabilities as they are (what a
user who trusts them would do), after temperature scaling, and with the cost-minimising
threshold chosen on validation. The verdict rests on the *calibration regret*: the cost at the
Bayes threshold minus the cost at the validation-chosen threshold, i.e. what trusting the
probabilities costs beyond what the same scores could achieve with a threshold fitted for the
purpose (0 for perfectly calibrated probabilities, up to sampling noise). It separates the
quality of the probabilities from the quality of the ranking; the raw costs are reported beside
it. Everything is computed from the stored log-odds (the Bayes threshold R / (1 + R) is log-odds
log R).
"""

from __future__ import annotations

from nlpgd import stats
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.learning_curve import add_size_cells, sizes, trained_on, x_of
from nlpgd.experiments.claims.plan import FULL, Plan, size_set
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.runner import Design
from nlpgd.report.verdict import verdict

NAME = "calibration"
TITLE = "Calibration for decisions"
CLAIM = "Generative models give probability estimates that are useful for decisions."
SCORES = ("ece", "brier", "log_loss")


def calibration_sizes(d: Design) -> tuple[list, list[str]]:
    return sizes(d, d.grid.calibration.sizes or d.grid.learning_curve.sizes)


def plan(d: Design) -> Plan:
    p = Plan()
    add_size_cells(d, p, calibration_sizes(d)[0])
    return p


def cost_label(ratio: float, how: str) -> str:
    return f"expected cost at {ratio:g}:1 ({how})"


def regret_label(ratio: float) -> str:
    return f"calibration regret at {ratio:g}:1 (cost at the Bayes threshold minus cost at the validation-chosen one)"


def _cell_stats(d: Design, store: M.Store, cell: str, seeds: list[int], res: M.Resampler) -> dict:
    """Before and after temperature scaling, and the costs, of one cell's seeds."""
    y, yv = store.labels(cell, seeds[0], "test"), store.labels(cell, seeds[0], "validation")
    P, V = store.log_odds(cell, seeds, "test"), store.log_odds(cell, seeds, "validation")
    temps = [stats.fit_temperature(yv, v) for v in V]
    C = [stats.apply_temperature(p, t) for p, t in zip(P, temps)]
    raw = [M.Measure(k, k) for k in SCORES]
    cal = list(raw)
    for r in d.grid.calibration.cost_ratios:
        bayes = (stats.bayes_threshold(r),) * len(seeds)
        chosen = tuple(stats.min_cost_threshold(yv, v, r) for v in V)
        raw += [M.Measure(f"cost_{r:g}", "cost", bayes, r), M.Measure(f"cost_{r:g}_val", "cost", chosen, r)]
        cal.append(M.Measure(f"cost_{r:g}", "cost", bayes, r))
    before = M.measure(res, y, P, raw)
    for r in d.grid.calibration.cost_ratios:  # what trusting the probabilities costs beyond a fitted threshold
        before[f"regret_{r:g}"] = before[f"cost_{r:g}"] - before[f"cost_{r:g}_val"]
    return {"before": before, "after": M.measure(res, y, C, cal), "temperature": temps}


def _all_stats(d: Design, store: M.Store, grid_sizes: list) -> tuple[dict, object]:
    out, res = {}, None
    for size in grid_sizes:
        for m in d.paired + (d.reference if size == FULL else []):
            seeds = d.seeds_of(m)
            cell = f"{size_set(size).name}/{m}"
            if not store.has(cell, seeds, "test"):
                continue
            n = len(store.labels(cell, seeds[0], "test"))
            res = (
                res
                if res is not None and res.draws.shape[1] == len(seeds)
                else M.Resampler(n, len(seeds), d.grid.bootstrap)
            )
            out[(size, m)] = {**_cell_stats(d, store, cell, seeds, res), "draws": res.draws}
    return out, res


def _findings(d: Design, st: dict, grid_sizes: list) -> list[dict]:
    cal = d.grid.calibration
    names = [(f"regret_{r:g}", regret_label(r)) for r in cal.cost_ratios]
    names += [(f"cost_{r:g}", cost_label(r, "Bayes threshold on the probabilities as given")) for r in cal.cost_ratios]
    names += [(f"cost_{r:g}_val", cost_label(r, "threshold chosen on validation")) for r in cal.cost_ratios]
    names += [(k, M.label(k) + " before scaling") for k in SCORES]
    out = []
    for pair in d.pairs:
        present = [s for s in grid_sizes if (s, pair.generative) in st and (s, pair.discriminative) in st]
        if not present:
            continue
        for key, text in names:
            gen = M.average([st[(s, pair.generative)]["before"][key] for s in present])
            disc = M.average([st[(s, pair.discriminative)]["before"][key] for s in present])
            out.append(
                M.pair_finding(
                    d.grid,
                    pair,
                    "generative",
                    (gen, disc),
                    metric=key,
                    metric_label=text,
                    direction="lower",
                    statistic=f"{text} {M.span(present)}",
                )
            )
    return out


def _primary_key(d: Design) -> str:
    cal = d.grid.calibration
    return f"regret_{cal.cost_ratios[0]:g}" if cal.metric == "cost" else cal.metric


def _tables(d: Design, st: dict) -> list[dict]:
    scores, costs = [], []
    for (size, m), v in st.items():
        temps = ", ".join(f"{t:.3g}" for t in v["temperature"])
        scores.append(
            [m, str(size), temps, *(M.shown(v[w], k, v["draws"]) for k in SCORES for w in ("before", "after"))]
        )
        costs.append(
            [
                m,
                str(size),
                *(
                    M.shown(v[w], f"cost_{r:g}{suffix}", v["draws"])
                    for r in d.grid.calibration.cost_ratios
                    for w, suffix in (("before", ""), ("after", ""), ("before", "_val"))
                ),
                *(M.shown(v["before"], f"regret_{r:g}", v["draws"]) for r in d.grid.calibration.cost_ratios),
            ]
        )
    cost_headers = [
        f"{r:g}:1 {how}"
        for r in d.grid.calibration.cost_ratios
        for how in ("Bayes threshold", "Bayes threshold after scaling", "threshold chosen on validation")
    ] + [f"{r:g}:1 calibration regret" for r in d.grid.calibration.cost_ratios]
    return [
        {
            "title": "Calibration on test before and after temperature scaling (lower is better)",
            "headers": [
                "model",
                "size",
                "T per seed",
                *(f"{M.label(k)} {w}" for k in SCORES for w in ("before", "after")),
            ],
            "rows": scores,
        },
        {
            "title": "Expected cost per message (cost of a ham blocked : a spam missed)",
            "headers": ["model", "size", *cost_headers],
            "rows": costs,
        },
    ]


def _figure(d: Design, st: dict, grid_sizes: list) -> dict:
    r0 = d.grid.calibration.cost_ratios
    plots = [
        ("ece", "ECE", [("before", "ece", "-"), ("after", "ece", "--")]),
        ("log_loss", "log loss", [("before", "log_loss", "-"), ("after", "log_loss", "--")]),
    ]
    plots += [
        (
            f"cost_{r:g}",
            f"expected cost at {r:g}:1",
            [("before", f"cost_{r:g}", "-"), ("before", f"cost_{r:g}_val", "--")],
        )
        for r in r0
    ]
    plots += [(f"regret_{r:g}", f"calibration regret at {r:g}:1", [("before", f"regret_{r:g}", "-")]) for r in r0]
    panels = []
    for _, title, lines in plots:
        series = []
        for m in d.paired + d.reference:
            present = [s for s in grid_sizes if (s, m) in st]
            for part, key, style in lines:
                tag = {"-": "", "--": " (scaled)" if part == "after" else " (threshold from validation)"}[style]
                series.append(
                    M.series(
                        m + tag,
                        [x_of(s, trained_on(d, m)) for s in present],  # a 90% subsample at full
                        [st[(s, m)][part][key].summary(st[(s, m)]["draws"]) for s in present],
                        style if len(present) > 1 else "o",
                        group=m,
                    )
                )
        panels.append(
            {"title": title, "xlabel": "training messages", "ylabel": title, "xscale": "log", "series": series}
        )
    return {
        "name": "calibration",
        "title": "Calibration and decision cost on the test split (lower is better)",
        "panels": panels,
    }


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    grid_sizes, notes = calibration_sizes(d)
    st, _ = _all_stats(d, store, grid_sizes)
    findings = _findings(d, st, grid_sizes)
    key = _primary_key(d)
    primary = [f for f in findings if f["metric"] == key]
    others = [f for f in findings if f["metric"] != key]
    return ExperimentResult(
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        metric=key,
        verdict=verdict(primary, others),
        findings=findings,
        key_numbers="; ".join(
            f"{f['favoured']} vs {f['other']}: {M.text(f['favoured_value'])} vs {M.text(f['other_value'])}"
            for f in primary
        )
        or "no matched pair",
        tables=_tables(d, st),
        figures=[_figure(d, st, grid_sizes)],
        notes=notes,
        method="Temperature scaling: one T per model and seed fitted on validation (NLL, scipy), on the stored "
        "log-odds. Expected cost per message = (R x ham blocked + spam missed) / messages. The verdict compares the "
        "pair members' calibration regret: the cost with the Bayes threshold R/(1+R) on the probabilities as given "
        "minus the cost with the threshold chosen on validation (what trusting the probabilities costs beyond the "
        "ranking's best), averaged over training sizes; the raw costs are reported beside it. A positive advantage "
        "means the generative member's probabilities cost less to trust. " + M.INTERVALS,
    )
