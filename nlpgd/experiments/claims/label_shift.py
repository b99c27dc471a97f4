"""Label shift: test sets with another share of spam, and the prior.

For each prevalence of ``experiment.label_shift.prevalences`` and each seed, the test split is
resampled (without replacement, the largest subset with that share of spam; the same subset for
every model of the seed). Every model fitted on the full train split scores it three ways:

- ``train``: as it is (the training prior; for a discriminative model, no correction);
- ``true``: with the subset's true prevalence;
- ``em``: with the prevalence estimated by EM from the model's own outputs (Saerens et al. 2002).

A generative model gets the prior inside the model (``set_prior``, then the texts are scored
again); a discriminative model gets the same Bayes correction applied to its outputs. The claim
favours the generative member: with the EM prior, its probabilities are better.
"""

from __future__ import annotations

import numpy as np

from nlpgd import stats
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, Plan, shift_eval
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.runner import Design
from nlpgd.report.verdict import verdict

NAME = "label-shift"
TITLE = "Label shift and priors"
CLAIM = (
    "Generative models adapt to a new share of spam by replacing their prior: with an EM-estimated prior their "
    "probabilities beat a discriminative model given the same EM correction."
)
MODES = {"train": "training prior (no correction)", "true": "true prevalence", "em": "EM estimate"}
STYLES = {"train": ":", "true": "--", "em": "-"}


def plan(d: Design) -> Plan:
    p = Plan()
    d.add_full_cells(p, [shift_eval(d.grid.label_shift.prevalences)])
    return p


def _prevalence_error(res: M.Resampler, store: M.Store, cell: str, seeds: list[int], q: float) -> M.Stat:
    """|EM estimate - true prevalence| per seed, on the subset and in every resample."""
    point, dist = [], []
    for s in seeds:
        record = store.json(f"predictions/{cell}/seed{s}.shift.json", {})
        p = store.preds(cell, s, f"shift-{q:g}-train")
        y = p["label"]
        point.append(abs(record[f"{q:g}"]["em_estimate"] - record[f"{q:g}"]["prevalence"]))
        est = stats.em_prior_resampled(res.W, p["prob_spam"], record["train_prior"])
        dist.append(np.abs(est - (res.W @ y) / res.W.sum(axis=1)))
    return M.Stat(np.array(point), np.stack(dist, axis=1))


def model_shift(d: Design, store: M.Store, m: str) -> dict:
    """``{q: {"train"|"true"|"em": {accuracy, log_loss}, "prevalence_error": Stat, ...}}`` of one model."""
    seeds, cell = d.seeds_of(m), f"{FULL}/{m}"
    out = {}
    for q in d.grid.label_shift.prevalences:
        if not all(store.has(cell, seeds, f"shift-{q:g}-{mode}") for mode in MODES):
            continue
        ys = [store.labels(cell, s, f"shift-{q:g}-train") for s in seeds]
        res = M.Resampler(len(ys[0]), len(seeds), d.grid.bootstrap)
        row = {
            mode: M.measure(
                res,
                ys,
                store.probs(cell, seeds, f"shift-{q:g}-{mode}"),
                [M.Measure("accuracy", "accuracy"), M.Measure("log_loss", "log_loss")],
            )
            for mode in MODES
        }
        row["prevalence_error"] = _prevalence_error(res, store, cell, seeds, q)
        records = [store.json(f"predictions/{cell}/seed{s}.shift.json", {}) for s in seeds]
        row["estimates"] = [r[f"{q:g}"]["em_estimate"] for r in records]
        row["prevalence"] = float(np.mean([r[f"{q:g}"]["prevalence"] for r in records]))
        row["n"], row["n_spam"] = len(ys[0]), int(ys[0].sum())
        row["how"] = records[0].get("how")
        row["draws"] = res.draws
        out[q] = row
    return out


def _with_em(v: dict, q: float, metric: str) -> M.Stat:
    return v[q][metric] if metric == "prevalence_error" else v[q]["em"][metric]


def _findings(d: Design, shifts: dict) -> list[dict]:
    out = []
    for pair in d.pairs:
        g, c = shifts.get(pair.generative), shifts.get(pair.discriminative)
        qs = [q for q in d.grid.label_shift.prevalences if g and c and q in g and q in c]
        if not qs:
            continue
        draws = g[qs[0]]["draws"]
        span = ", ".join(f"{q:g}" for q in qs)
        for metric in ("log_loss", "accuracy", "prevalence_error"):
            vg, vc = (M.average([_with_em(v, q, metric) for q in qs]) for v in (g, c))
            what = "with the EM prior" if metric != "prevalence_error" else "of the EM estimate"
            out.append(
                M.finding(
                    pair.label,
                    pair.generative,
                    pair.discriminative,
                    (vg, vc),
                    draws,
                    metric=metric,
                    margin=M.margin(d.grid, metric),
                    statistic=f"{M.label(metric)} {what}, averaged over prevalences {span}",
                )
            )
    return out


def _tables(d: Design, shifts: dict) -> list[dict]:
    rows, est = [], []
    for m, by_q in shifts.items():
        for q, v in by_q.items():
            rows.append(
                [
                    m,
                    f"{q:g}",
                    f"{v['n']} ({v['n_spam']} spam)",
                    *(M.shown(v[mode], k, v["draws"]) for k in ("accuracy", "log_loss") for mode in MODES),
                ]
            )
            est.append(
                [
                    m,
                    v["how"],
                    f"{v['prevalence']:.4f}",
                    ", ".join(f"{e:.4f}" for e in v["estimates"]),
                    M.text(v["prevalence_error"].summary(v["draws"])),
                ]
            )
    heads = [f"{k} ({MODES[mode]})" for k in ("accuracy", "log loss") for mode in MODES]
    return [
        {
            "title": "Resampled test sets: accuracy and log loss with each prior",
            "headers": ["model", "target prevalence", "messages", *heads],
            "rows": rows,
        },
        {
            "title": "EM prevalence estimates (per seed) and their error",
            "headers": ["model", "prior applied", "true prevalence", "EM estimate per seed", "absolute error"],
            "rows": est,
        },
    ]


def _figure(d: Design, shifts: dict) -> dict:
    panels = []
    for metric in ("log_loss", "accuracy"):
        lines = []
        for m, by_q in shifts.items():
            qs = sorted(by_q)
            for mode in MODES:
                lines.append(
                    M.series(
                        f"{m}, {MODES[mode]}",
                        qs,
                        [by_q[q][mode][metric].summary(by_q[q]["draws"]) for q in qs],
                        STYLES[mode],
                        group=m,
                    )
                )
        panels.append(
            {
                "title": M.label(metric),
                "xlabel": "share of spam in the test set",
                "ylabel": M.label(metric),
                "xscale": "log",
                "series": lines,
            }
        )
    lines = [
        M.series(m, sorted(by_q), [by_q[q]["prevalence_error"].summary(by_q[q]["draws"]) for q in sorted(by_q)])
        for m, by_q in shifts.items()
    ]
    panels.append(
        {
            "title": "EM prevalence-estimate error",
            "xlabel": "share of spam in the test set",
            "ylabel": "|estimate - true|",
            "xscale": "log",
            "series": lines,
        }
    )
    return {"name": "label_shift", "title": "Label shift: resampled test sets, three priors", "panels": panels}


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    metric = d.grid.label_shift.metric
    shifts = {m: v for m in d.paired + d.reference if (v := model_shift(d, store, m))}
    findings = _findings(d, shifts)
    primary = [f for f in findings if f["metric"] == metric]
    others = [f for f in findings if f["metric"] != metric]
    param_rows, param_notes = M.parameter_rows(store, d.pairs, FULL, d.seeds)
    return ExperimentResult(
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        metric=metric,
        verdict=verdict(primary, others, param_notes),
        findings=findings,
        key_numbers="; ".join(
            f"{f['favoured']} vs {f['other']}: {M.text(f['favoured_value'])} vs {M.text(f['other_value'])}"
            for f in primary
        )
        or "no matched pair",
        tables=[
            *_tables(d, shifts),
            M.findings_table(findings),
            {"title": "Matched pairs: parameters", "headers": M.PARAMETER_HEADERS, "rows": param_rows},
        ],
        figures=[_figure(d, shifts)],
        notes=[],
        method="Resampled test sets keep every message at most once. EM: Saerens et al. (2002), from the "
        "outputs under the training prior; its interval reruns EM in every bootstrap resample. A positive "
        "advantage means the generative member is better. " + M.INTERVALS,
    )
