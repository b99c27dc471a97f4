"""Compute: what each member of a pair costs to train and to use.

Read from ``costs.json`` (every fit records it): training seconds on the full split,
scoring throughput (messages per second over the validation and test splits), training
FLOPs where they are known (a network trained in epochs: about 6 x parameters x tokens
seen, counting every message at ``max_length`` tokens, so an upper bound), and the training
seconds each member needs to reach 95% of its own full-data score (from the learning-curve
cells, when the run has them: the seconds of the fits at the size where the curve gets there,
interpolated in log size). The claim favours the discriminative member: it held when the
discriminative member trains in fewer seconds. Seconds vary between seeds (and with the
load of the machine), so intervals come from the seeds alone: every test-message resample
carries the same value.
"""

from __future__ import annotations

import numpy as np

from nlpgd import stats
from nlpgd.experiments.claims import curve_points as CP
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.learning_curve import size_stats, sizes, trained_on, x_of
from nlpgd.experiments.claims.plan import FULL, Plan, describe, size_set
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.runner import Design

NAME = "compute"
TITLE = "Compute (training and scoring cost)"
CLAIM = "Discriminative models are computationally more efficient: generative models need more compute."
QUANTITIES = {
    "train_seconds": ("training seconds (full split)", "lower"),
    "messages_per_second": ("scoring messages per second", "higher"),
}


def plan(d: Design) -> Plan:
    p = Plan()
    for seed in d.seeds:
        for m in d.paired:
            p.add(size_set(FULL), m, seed)
    return p


def _per_seed(store: M.Store, cell: str, seeds: list[int], key: str) -> np.ndarray | None:
    values = []
    for s in seeds:
        cost = store.cost(cell, s)
        if key == "messages_per_second":
            per_1000 = cost.get("predict_seconds_per_1000")
            values.append(1000.0 / per_1000 if per_1000 else None)
        else:
            values.append(cost.get(key))
    if any(v is None for v in values):
        return None
    return np.asarray(values, dtype=np.float64)


def seed_stat(values: np.ndarray, B: int) -> M.Stat:
    """A per-seed quantity with no test-message variation: every resample carries it."""
    return M.Stat(values, np.tile(values, (B, 1)), (0.0, np.inf))  # seconds, messages per second


def training_flops(d: Design, store: M.Store, m: str) -> float | None:
    """About 6 x parameters x tokens seen for a network trained in epochs; None otherwise."""
    model = describe(d.cfg.models[m])
    cost = store.cost(f"{FULL}/{m}", d.seeds[0])
    if not model.can("epoch_trained") or not cost.get("n_parameters"):
        return None
    p = model.params
    return 6.0 * cost["n_parameters"] * cost.get("train_examples", 0) * p.epochs * p.max_length


def seconds_to_reach(d: Design, store: M.Store, m: str, draws) -> dict | None:
    """Training seconds of the fits at the size where the member reaches 95% of its own full-data
    score (the learning-curve cells of this run; None without them)."""
    grid_sizes = sizes(d)[0]
    n_full = trained_on(d, m)
    got = size_stats(d, store, grid_sizes, [m], d.seeds)
    present = sorted([s for s in grid_sizes if (s, m) in got["stats"]], key=lambda s: x_of(s, n_full))
    if len(present) < 2 or present[-1] != FULL:
        return None
    metric = d.grid.compute.metric
    x = [x_of(s, n_full) for s in present]
    reach = CP.messages_to_reach(
        [got["stats"][(s, m)][metric] for s in present], x, got["draws"], M.better(metric) == "higher"
    )
    secs = [float(np.mean(_per_seed(store, f"{size_set(s).name}/{m}", d.seeds, "train_seconds"))) for s in present]
    at = lambda n: None if n is None or not np.isfinite(n) else float(np.interp(np.log(n), np.log(x), secs))  # noqa: E731
    return {"messages": reach, "mean": at(reach["mean"]), "lo": at(reach["lo"]), "hi": at(reach["hi"])}


def _findings(d: Design, store: M.Store) -> list[dict]:
    found = []
    for pair in d.pairs:
        for key, (label, direction) in QUANTITIES.items():
            values = [_per_seed(store, f"{FULL}/{m}", d.seeds, key) for m in (pair.discriminative, pair.generative)]
            if any(v is None for v in values):
                continue
            disc, gen = (seed_stat(v, d.grid.bootstrap) for v in values)
            found.append(
                M.pair_finding(
                    d.grid,
                    pair,
                    "discriminative",
                    (disc, gen),
                    metric=key,
                    statistic=label,
                    direction=direction,
                    metric_label=label,
                    condition=label,
                )
            )
    return found


def _member_rows(d: Design, store: M.Store) -> list[list[str]]:
    rows = []
    draws = stats.seed_draws(len(d.seeds), d.grid.bootstrap, 0)
    for pair in d.pairs:
        for m in pair.members:
            cells = [_per_seed(store, f"{FULL}/{m}", d.seeds, k) for k in QUANTITIES]
            shown = [
                M.text(seed_stat(v, d.grid.bootstrap).summary(draws), 2) if v is not None else "n/a" for v in cells
            ]
            flops = training_flops(d, store, m)
            reach = seconds_to_reach(d, store, m, draws)
            rows.append(
                [
                    pair.label,
                    m,
                    describe(d.cfg.models[m]).family,
                    *shown,
                    "n/a (count features)" if flops is None else f"{flops:.2e}",
                    "n/a (no learning-curve cells)"
                    if reach is None or reach["mean"] is None
                    else f"{reach['mean']:.1f} s at {CP.describe_size(reach['messages'], 10**12)} messages",
                ]
            )
    return rows


def _figure(d: Design, store: M.Store) -> dict:
    grid_sizes = sizes(d)[0]
    lines = []
    for m in d.paired:
        xs, ys, n_full = [], [], trained_on(d, m)
        for s in grid_sizes:
            v = _per_seed(store, f"{size_set(s).name}/{m}", d.seeds, "train_seconds")
            if v is not None:
                xs.append(x_of(s, n_full))
                ys.append({"mean": float(v.mean()), "lo": float(v.min()), "hi": float(v.max())})
        if xs:
            lines.append(M.series(m, xs, ys))
    panel = {
        "title": "training seconds",
        "xlabel": "training messages",
        "ylabel": "seconds",
        "xscale": "log",
        "series": lines,
    }
    return {
        "name": "compute",
        "title": "Training seconds per training size (mean over seeds, range)",
        "panels": [panel],
    }


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    findings = _findings(d, store)
    primary, judgement = M.judged("train_seconds", findings)
    return ExperimentResult(
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        metric="train_seconds",
        verdict=judgement,
        findings=findings,
        key_numbers="; ".join(
            f"{f['pair'].split(':')[-1].strip()}: {f['favoured']} {M.text(f['favoured_value'], 1)} s vs "
            f"{f['other']} {M.text(f['other_value'], 1)} s"
            for f in primary
        )
        or "no matched pair",
        tables=[
            {
                "title": "Cost per member (mean over seeds [95% interval over seeds])",
                "headers": [
                    "pair",
                    "member",
                    "family",
                    *(label for label, _ in QUANTITIES.values()),
                    "training FLOPs (upper bound)",
                    "training seconds to reach 95% of its full-data score",
                ],
                "rows": _member_rows(d, store),
            },
            M.findings_table(findings),
        ],
        figures=[_figure(d, store)],
        notes=[],
        method="Training seconds and scoring throughput are what each fit recorded in costs.json (wall time of "
        "the fit and of scoring the validation and test splits, on this machine); intervals come from the "
        "seeds alone. A positive advantage means the discriminative member is cheaper (fewer seconds, more "
        "messages per second). FLOPs are 6 x parameters x (training messages x epochs x max_length tokens), "
        "an upper bound, for networks trained in epochs.",
    )
