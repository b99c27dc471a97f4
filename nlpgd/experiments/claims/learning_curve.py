"""Data efficiency: learning curves of every matched pair.

Each paired model is fitted on stratified subsets of the train split at every size of
``experiment.learning_curve.sizes`` (drawn per seed) and on the full split; reference models
on the full split only. The verdict compares the pair members' metric averaged over the subset
sizes (the area between the learning curves on the grid); the report adds the crossover size
per pair and metric and whether spam shows the pattern Ng & Jordan (2001) and Yogatama et al.
(2017) found: the generative model ahead with little data, the discriminative one at the end.
"""

from __future__ import annotations

from nlpgd.experiments.claims import curve_points as CP
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims import prompted
from nlpgd.experiments.claims.plan import FULL, MAIN, Plan, size_set
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.runner import Design
from nlpgd.experiments.claims.training_data import full_size

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
    prompted.add_cells(d, p)  # models that classify without training: at 0 labels, or the few-shot sizes
    return p


# -- analysis -----------------------------------------------------------------------------


def x_of(size, n_full: int) -> int:
    """The training messages of a cell at ``size``: ``n_full`` (what the model trains on at the
    full size, :func:`trained_on`) or the subset size."""
    return n_full if size == FULL else int(size)


def trained_on(d: Design, model: str) -> int:
    """The messages ``model`` trains on at the full size: the whole train split, or the per-seed
    90% subsample of naive Bayes and logistic regression (and their pair partners)."""
    return full_size(d, model, len(d.data[MAIN].texts["train"]))


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
            measures = M.curve_measures(yv, store.log_odds(cell, seeds, "validation"))
            out[(size, m)] = M.measure(res, y, store.log_odds(cell, seeds, "test"), measures)
    return {"stats": out, "draws": None if res is None else res.draws}


SMALL_MAX, LARGE_MIN = 128, 512  # the small-data and large-data parts of the claim


def regimes(grid_sizes: list, n_full: int) -> list[tuple[str, list]]:
    """``[(condition, sizes)]``: the small-data sizes (at most 128 messages) and the large-data
    ones (at least 512, the full split included), each only when the grid has some."""
    small = [s for s in grid_sizes if s != FULL and x_of(s, n_full) <= SMALL_MAX]
    large = [s for s in grid_sizes if x_of(s, n_full) >= LARGE_MIN]
    out = [(f"small data (≤ {SMALL_MAX} messages)", small), (f"large data (≥ {LARGE_MIN} messages)", large)]
    return [(c, sizes) for c, sizes in out if sizes]


def _span(sizes: list, n_full: int) -> str:
    return M.span([x_of(s, n_full) for s in sizes])


def _pair_findings(d: Design, st: dict, pair, grid_sizes: list, draws, n_full: int) -> list:
    """Findings of one pair for every curve metric, separately for small and large data (each
    the metric averaged over that part's sizes; the parts from the grid's sizes, ``n_full`` the
    whole train split)."""
    found, n_pair = [], trained_on(d, pair.generative)
    for condition, sizes in regimes(grid_sizes, n_full):
        if any((s, m) not in st for s in sizes for m in pair.members):
            continue
        for metric in M.CURVE:
            disc = M.average([st[(s, pair.discriminative)][metric] for s in sizes])
            gen = M.average([st[(s, pair.generative)][metric] for s in sizes])
            statistic = f"{M.label(metric)} {_span(sizes, n_pair)}"
            found.append(
                M.pair_finding(
                    d.grid, pair, "discriminative", (disc, gen), metric=metric, statistic=statistic, condition=condition
                )
            )
    return found


def _present(st: dict, pair, grid_sizes: list, n_full: int) -> list:
    """The sizes where both members were fitted, smallest first."""
    sizes = [s for s in grid_sizes if all((s, m) in st for m in pair.members)]
    return sorted(sizes, key=lambda s: x_of(s, n_full))


def crossover_row(st: dict, pair, grid_sizes: list, draws, metric: str, n_full: int) -> list:
    """The size where the discriminative member overtakes the generative one, with its
    bootstrap interval and the share of resamples that cross, or "none in range"."""
    sizes = _present(st, pair, grid_sizes, n_full)
    if len(sizes) < 2:
        return [pair.label, M.label(metric), "n/a (fewer than 2 sizes)", "n/a"]
    adv = [
        M.advantage(st[(s, pair.discriminative)][metric], st[(s, pair.generative)][metric], M.better(metric))
        for s in sizes
    ]
    cross = CP.crossover(adv, [x_of(s, n_full) for s in sizes], draws)
    return [pair.label, M.label(metric), CP.describe_size(cross, 10**12), f"{cross['share_with_crossover']:.0%}"]


def reach_rows(st: dict, pair, grid_sizes: list, draws, metric: str, n_full: int) -> list[list]:
    """Per member: the training messages it needs to reach 95% of its own full-data score."""
    sizes = _present(st, pair, grid_sizes, n_full)
    if not sizes or sizes[-1] != FULL:
        return []
    x = [x_of(s, n_full) for s in sizes]
    higher = M.better(metric) == "higher"
    rows = []
    for m in pair.members:
        got = CP.messages_to_reach([st[(s, m)][metric] for s in sizes], x, draws, higher)
        rows.append([pair.label, m, M.label(metric), CP.describe_size(got, n_full)])
    return rows


def _pattern(d: Design, st: dict, pair, grid_sizes: list, draws, metric: str) -> tuple[list, str]:
    """Per size: both members and the discriminative member's advantage; and whether the
    generative member leads at the smallest size and the discriminative at the largest."""
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
        return rows, "n/a"
    first, last = points[0], points[-1]
    same = first[1] < 0 < last[1]
    pattern = f"{'yes' if same else 'no'}: at {first[0]} {_leader(first[1])}, at {last[0]} {_leader(last[1])}"
    return rows, pattern


def _leader(advantage: float) -> str:
    if advantage == 0:
        return "the two are tied"
    return f"the {'discriminative' if advantage > 0 else 'generative'} member leads"


def _figure(d: Design, st: dict, grid_sizes: list, draws, ref_st: dict, ref_draws) -> dict:
    panels = []
    for metric in PANELS:
        lines = []
        for m in d.paired:  # each at the messages it trained on (the full size: perhaps its 90% subsample)
            present = [s for s in grid_sizes if (s, m) in st]
            x = [x_of(s, trained_on(d, m)) for s in present]
            lines.append(M.series(m, x, [st[(s, m)][metric].summary(draws) for s in present]))
        for m, stat in ref_st.items():
            lines.append(M.series(f"{m} (reference)", [trained_on(d, m)], [stat[metric].summary(ref_draws)], style="o"))
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


def _pair_tables(d: Design, st: dict, grid_sizes: list, draws) -> list[dict]:
    """Per size, the crossover (bootstrap) and the messages each member needs, for every pair."""
    metric = d.grid.learning_curve.metric
    per_size, crossover, reach = [], [], []
    for pair in d.pairs:
        n_full = trained_on(d, pair.generative)  # both members train on the same messages
        rows, pattern = _pattern(d, st, pair, grid_sizes, draws, metric)
        per_size += rows
        crossover += [crossover_row(st, pair, grid_sizes, draws, m, n_full) for m in M.CURVE]
        crossover.append([pair.label, f"same pattern as Yogatama et al. 2017 (on {M.label(metric)})", pattern, ""])
        reach += reach_rows(st, pair, grid_sizes, draws, metric, n_full)
    return [
        {
            "title": f"{M.label(metric)} per training size (discriminative member's advantage)",
            "headers": ["pair", "training messages", "generative", "discriminative", "advantage of discriminative"],
            "rows": per_size,
        },
        {
            "title": f"Training messages each member needs to reach {CP.SHARE:.0%} of its own full-data score "
            "(mean [95% interval])",
            "headers": ["pair", "member", "metric", "training messages"],
            "rows": reach,
        },
        {
            "title": "Crossover: the training size where the discriminative member overtakes the generative one "
            "(bootstrap interval; 'none in range' when the mean curves do not cross)",
            "headers": ["pair", "metric", "crossover size", "resamples with a crossover"],
            "rows": crossover,
        },
    ]


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    lc = d.grid.learning_curve
    grid_sizes, notes = sizes(d)
    got = size_stats(d, store, grid_sizes, d.paired, d.seeds)
    st, draws = got["stats"], got["draws"]
    ref = size_stats(d, store, [FULL], d.reference, d.reference_seeds) if FULL in grid_sizes else {"stats": {}}
    ref_st = {m: v for (_, m), v in ref["stats"].items()}
    n_full = len(d.data["main"].texts["train"])
    findings = [f for pair in d.pairs for f in _pair_findings(d, st, pair, grid_sizes, draws, n_full)]
    param_rows, param_notes = M.parameter_rows(
        store, d.pairs, FULL if FULL in grid_sizes else f"n{grid_sizes[-1]}", d.seeds
    )
    pts = prompted.points(d, store)  # models that classify without training, at 0 and few labels
    few_labels, few_label_sentences = prompted.table_and_sentences(d, pts, st, draws, lc.metric)
    primary, judgement = M.judged(lc.metric, findings, param_notes + few_label_sentences)
    return ExperimentResult(
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        metric=lc.metric,
        verdict=judgement,
        findings=findings,
        key_numbers=_key_numbers(primary),
        tables=[
            *_pair_tables(d, st, grid_sizes, draws),
            _metric_table(st, ref_st, draws, ref.get("draws"), grid_sizes),
            *([few_labels] if few_labels else []),
            {
                "title": "Matched pairs: parameters at the largest size",
                "headers": M.PARAMETER_HEADERS,
                "rows": param_rows,
            },
        ],
        figures=[prompted.add_to_figure(d, _figure(d, st, grid_sizes, draws, ref_st, ref.get("draws")), pts, PANELS)],
        notes=notes,
        method="Subsets are stratified and drawn per seed; each point is the mean over seeds. The verdict "
        "compares the members of each pair on the "
        f"metric averaged over the small-data sizes (at most {SMALL_MAX} messages) and, separately, over the "
        f"large-data sizes (at least {LARGE_MIN}, the full split included); a positive advantage means the "
        "discriminative member is better. Naive Bayes and logistic regression (and their pair partners) train "
        "on a 90% subsample per seed at the full size, so their full-size points are drawn and counted at "
        "90% of the train split. The epoch of a model trained in epochs is chosen on a stratified "
        "validation subset as large as its training set (at least 16 messages, at most the validation split). "
        + M.INTERVALS,
    )


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
            f"{f['pair'].split(':')[-1].strip()}, {f['condition']}: advantage of {f['favoured']} "
            f"{M.text(f['advantage'])}"
            for f in primary
        )
        or "no matched pair"
    )
