"""Data efficiency: learning curves of every matched pair.

Each paired model is fitted on stratified subsets of the train split at every size of
``experiment.learning_curve.sizes`` (drawn per seed) and on the full split; reference models
on the full split only. The verdict compares the pair members' metric averaged over the subset
sizes (the area between the learning curves on the grid); the report adds the crossover size
per pair and metric and whether spam shows the pattern Ng & Jordan (2001) and Yogatama et al.
(2017) found: the generative model ahead with little data, the discriminative one at the end.
"""

from __future__ import annotations

from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, Plan, size_set
from nlpgd.experiments.claims.runner import Design
from nlpgd.report.verdict import verdict

NAME = "learning-curve"
TITLE = "Data efficiency (learning curves)"
CLAIM = "Discriminative models need less training data than generative ones to classify well."
PANELS = ("roc_auc", "log_loss", "f1", "mcc", "f1_val", "mcc_val")


def sizes(d: Design, grid_sizes=None) -> tuple[list, list[str]]:
    grid_sizes = grid_sizes if grid_sizes is not None else d.grid.learning_curve.sizes
    return d.usable_sizes(grid_sizes, "training size", "experiment.learning_curve.sizes")


def add_size_cells(d: Design, plan: Plan, grid_sizes: list) -> None:
    """Every paired model at every size, every reference model on the full split."""
    for seed in d.seeds:
        for size in grid_sizes:
            for m in d.paired:
                plan.add(size_set(size), m, seed)
    if FULL in grid_sizes:
        for m in d.reference:
            for seed in d.reference_seeds:
                plan.add(size_set(FULL), m, seed)


def plan(d: Design) -> Plan:
    p = Plan()
    add_size_cells(d, p, sizes(d)[0])
    return p


# -- analysis -----------------------------------------------------------------------------


def x_of(size, n_full: int) -> int:
    return n_full if size == FULL else int(size)


def size_stats(d: Design, store: M.Store, grid_sizes: list, models: list[str], seeds: list[int]) -> dict:
    """``{(size, model): {metric: Stat}}`` of the curve metrics on test, for the cells present."""
    out = {}
    res = None
    for size in grid_sizes:
        for m in models:
            cell = f"{size_set(size).name}/{m}"
            if not store.has(cell, seeds, "test"):
                continue
            y, yv = store.labels(cell, seeds[0], "test"), store.labels(cell, seeds[0], "validation")
            res = res or M.Resampler(len(y), len(seeds), d.grid.bootstrap)
            measures = M.curve_measures(yv, store.probs(cell, seeds, "validation"))
            out[(size, m)] = M.measure(res, y, store.probs(cell, seeds, "test"), measures)
    return {"stats": out, "draws": None if res is None else res.draws}


def _crossover(points: list[tuple], pair) -> str:
    """Where the leader changes along the grid, from the point estimates of the advantage of
    the discriminative member (``points``: ``(size, advantage)``)."""
    leaders = [(s, pair.discriminative if a > 0 else pair.generative if a < 0 else None) for s, a in points]
    leaders = [(s, w) for s, w in leaders if w is not None]
    if not leaders:
        return "no leader (tied everywhere)"
    flips = [(leaders[i - 1], leaders[i]) for i in range(1, len(leaders)) if leaders[i][1] != leaders[i - 1][1]]
    if not flips:
        return f"no crossover in range: {leaders[0][1]} leads at every size"
    return "; ".join(f"{a[1]} leads at {a[0]}, {b[1]} from {b[0]}" for a, b in flips)


def _pair_findings(d: Design, st: dict, pair, grid_sizes: list, draws) -> tuple[list, list]:
    """Findings of one pair for every curve metric (averaged over the subset sizes) and the
    per-size advantages of the primary metric."""
    subset = [s for s in grid_sizes if s != FULL] or grid_sizes
    if any((s, m) not in st for s in subset for m in pair.members):
        return [], []
    span = M.span(subset)
    found = []
    for metric in M.CURVE:
        disc = M.average([st[(s, pair.discriminative)][metric] for s in subset])
        gen = M.average([st[(s, pair.generative)][metric] for s in subset])
        statistic = f"{M.label(metric)} {span}"
        found.append(
            M.finding(
                pair.label,
                pair.discriminative,
                pair.generative,
                (disc, gen),
                draws,
                metric=metric,
                statistic=statistic,
                margin=M.margin(d.grid, metric),
            )
        )
    return found, subset


def _pattern(d: Design, st: dict, pair, grid_sizes: list, draws, metric: str) -> tuple[list, str, str]:
    """Per size: both members and the discriminative member's advantage; the crossover; and
    whether the generative member leads at the smallest size and the discriminative at the largest."""
    rows, points = [], []
    direction = M.better(metric)
    for s in grid_sizes:
        if (s, pair.generative) not in st or (s, pair.discriminative) not in st:
            continue
        g, c = st[(s, pair.generative)][metric], st[(s, pair.discriminative)][metric]
        adv = M.advantage(c, g, direction).summary(draws)
        points.append((s, adv["mean"] or 0.0))
        rows.append([pair.label, str(s), M.text(g.summary(draws)), M.text(c.summary(draws)), M.text(adv)])
    if not points:
        return rows, "n/a", "n/a"
    first, last = points[0], points[-1]
    same = first[1] < 0 < last[1]
    pattern = f"{'yes' if same else 'no'}: at {first[0]} {_leader(first[1])}, at {last[0]} {_leader(last[1])}"
    return rows, _crossover(points, pair), pattern


def _leader(advantage: float) -> str:
    if advantage == 0:
        return "the two are tied"
    return f"the {'discriminative' if advantage > 0 else 'generative'} member leads"


def _figure(d: Design, st: dict, grid_sizes: list, draws, ref_st: dict, ref_draws, n_full: int) -> dict:
    panels = []
    for metric in PANELS:
        lines = []
        for m in d.paired:
            present = [s for s in grid_sizes if (s, m) in st]
            lines.append(
                M.series(m, [x_of(s, n_full) for s in present], [st[(s, m)][metric].summary(draws) for s in present])
            )
        for m, stat in ref_st.items():
            lines.append(M.series(f"{m} (reference)", [n_full], [stat[metric].summary(ref_draws)], style="o"))
        panels.append(
            {
                "title": M.label(metric),
                "xlabel": "training messages",
                "ylabel": M.label(metric),
                "xscale": "log",
                "series": lines,
            }
        )
    return {
        "name": "learning_curve",
        "title": "Learning curves on the test split (mean over seeds, 95% band)",
        "panels": panels,
    }


def analyse(d: Design, store: M.Store) -> dict:
    lc = d.grid.learning_curve
    grid_sizes, notes = sizes(d)
    got = size_stats(d, store, grid_sizes, d.paired, d.seeds)
    st, draws = got["stats"], got["draws"]
    ref = size_stats(d, store, [FULL], d.reference, d.reference_seeds) if FULL in grid_sizes else {"stats": {}}
    ref_st = {m: v for (_, m), v in ref["stats"].items()}
    n_full = len(d.data["main"].texts["train"])
    findings, per_size, crossover = [], [], []
    for pair in d.pairs:
        found, _ = _pair_findings(d, st, pair, grid_sizes, draws)
        findings += found
        rows, cross, pattern = _pattern(d, st, pair, grid_sizes, draws, lc.metric)
        per_size += rows
        for metric in M.CURVE:
            crossover.append([pair.label, M.label(metric), _pattern(d, st, pair, grid_sizes, draws, metric)[1]])
        crossover.append([pair.label, "same pattern as Yogatama et al. 2017 (on " + M.label(lc.metric) + ")", pattern])
    primary = [f for f in findings if f["metric"] == lc.metric]
    others = [f for f in findings if f["metric"] != lc.metric]
    param_rows, param_notes = M.parameter_rows(
        store, d.pairs, FULL if FULL in grid_sizes else f"n{grid_sizes[-1]}", d.seeds
    )
    return {
        "experiment": NAME,
        "title": TITLE,
        "claim": CLAIM,
        "metric": lc.metric,
        "verdict": verdict(primary, others, param_notes),
        "findings": findings,
        "key_numbers": _key_numbers(primary),
        "tables": [
            {
                "title": f"{M.label(lc.metric)} per training size (discriminative member's advantage)",
                "headers": ["pair", "training messages", "generative", "discriminative", "advantage of discriminative"],
                "rows": per_size,
            },
            {
                "title": "Crossover per pair and metric (point estimates)",
                "headers": ["pair", "metric", "crossover"],
                "rows": crossover,
            },
            _metric_table(st, ref_st, draws, ref.get("draws"), grid_sizes),
            {
                "title": "Matched pairs: parameters at the largest size",
                "headers": M.PARAMETER_HEADERS,
                "rows": param_rows,
            },
        ],
        "figures": [_figure(d, st, grid_sizes, draws, ref_st, ref.get("draws"), n_full)],
        "notes": notes,
        "method": "Subsets are stratified and drawn per seed; each point is the mean over seeds. The verdict compares "
        "the members of each pair on the metric averaged over the subset sizes; a positive advantage means the "
        "discriminative member is better. " + M.INTERVALS,
    }


def _metric_table(st: dict, ref_st: dict, draws, ref_draws, grid_sizes: list) -> dict:
    rows = [[m, str(s), *(M.text(stats[k].summary(draws)) for k in M.CURVE)] for (s, m), stats in st.items()]
    rows += [[f"{m} (reference)", FULL, *(M.text(v[k].summary(ref_draws)) for k in M.CURVE)] for m, v in ref_st.items()]
    order = {str(s): i for i, s in enumerate(grid_sizes)}
    rows.sort(key=lambda r: (r[0], order.get(r[1], 0)))
    return {
        "title": "Every metric per model and size (mean [95% interval])",
        "headers": ["model", "size", *(M.label(k) for k in M.CURVE)],
        "rows": rows,
    }


def _key_numbers(primary: list[dict]) -> str:
    return (
        "; ".join(
            f"{f['pair'].split(':')[-1].strip()}: advantage of {f['favoured']} {M.text(f['advantage'])}"
            for f in primary
        )
        or "no matched pair"
    )
