"""Numbers with intervals from saved predictions: the analysis every claims experiment shares.

A :class:`Stat` is one quantity (a metric, a drop, a difference, an average over conditions)
for each training seed, on the full test set and on every bootstrap resample of the test
messages (:class:`Resampler`; every model and condition on one test set uses the same
resamples, so differences are paired). Its interval (:meth:`Stat.summary`) is
:func:`nlpgd.intervals.seed_interval`: the mean over seeds with a variance made of the test-set
part every seed shares (from the message bootstrap) and the seed-to-seed part (from the
per-seed values), with Student's t quantiles, so a handful of seeds is not taken for certainty.

A :func:`finding` compares the two members of a pair on one statistic: the favoured member's
advantage (positive when the claim's direction holds, :func:`advantage`), its interval, the
metric's equivalence margin (``experiment.margins`` in the config, :func:`margin`), the
p-values of that interval, and the verdict :func:`nlpgd.report.verdict.judge` gives it. Every
experiment builds its findings here and hands its primary ones to
:func:`nlpgd.report.verdict.verdict`; no experiment chooses a verdict word itself.

Adding a metric: give it a direction in :data:`METRICS` and a margin in
:class:`nlpgd.config.MarginGrid` (a ``_val`` metric uses its base metric's).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nlpgd import intervals, stats
from nlpgd.io import read_json
from nlpgd.report.verdict import judge, verdict
from nlpgd.runs import DERIVED_NOTE, read_predictions

# name -> (label, which way is better)
METRICS = {
    "roc_auc": ("ROC-AUC", "higher"),
    "pr_auc": ("PR-AUC", "higher"),
    "log_loss": ("log loss", "lower"),
    "f1": ("F1 at 0.5", "higher"),
    "mcc": ("MCC at 0.5", "higher"),
    "f1_val": ("F1 at the validation-chosen threshold", "higher"),
    "mcc_val": ("MCC at the validation-chosen threshold", "higher"),
    "accuracy": ("accuracy", "higher"),
    "brier": ("Brier score", "lower"),
    "ece": ("ECE", "lower"),
    "prevalence_error": ("prevalence-estimate error", "lower"),
}
INTERVALS = (
    "Intervals are 95%, of the mean over training seeds: the variance the test messages add (a bootstrap of "
    "them, the same resamples for every model) plus the seed-to-seed variance, with Student's t quantiles. "
    "Naive Bayes and logistic regression, functions of their data, train on a stratified 90% of a whole train "
    "split drawn per seed, so that seeds vary them too. A finding whose interval lies inside the metric's "
    "margin is equivalent. An interval that would reach past what the quantity can take (with few seeds a t "
    "interval can: a ROC-AUC above 1, a difference of two ROC-AUCs beyond ±1) is cut at that limit and "
    "marked '(cut at the range)'; the cut changes no verdict."
)
# what each metric can take: an interval reaching past it (a t interval over 2 seeds can) is cut there
RANGES = {
    "roc_auc": (0.0, 1.0),
    "pr_auc": (0.0, 1.0),
    "log_loss": (0.0, np.inf),
    "f1": (0.0, 1.0),
    "mcc": (-1.0, 1.0),
    "accuracy": (0.0, 1.0),
    "brier": (0.0, 1.0),
    "ece": (0.0, 1.0),
    "prevalence_error": (0.0, 1.0),
}
UNBOUNDED = (-np.inf, np.inf)
THRESHOLD_FREE = ("roc_auc", "pr_auc", "log_loss")
THRESHOLDED = ("f1", "mcc", "f1_val", "mcc_val")
CURVE = THRESHOLD_FREE + THRESHOLDED


def range_of(metric: str) -> tuple[float, float]:
    """The values ``metric`` can take (:data:`RANGES`; unbounded when unknown)."""
    return RANGES.get(metric.removesuffix("_val"), UNBOUNDED)


def label(metric: str) -> str:
    return METRICS[metric][0] if metric in METRICS else metric


def better(metric: str) -> str:
    return METRICS[metric][1] if metric in METRICS else "lower"


# -- reading a run folder -----------------------------------------------------------------


class Store:
    """The predictions and records of one run folder, each file read once."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self._preds: dict[Path, dict | None] = {}
        self._json: dict[str, object] = {}
        self.derived: set[str] = set()  # cells whose files stored no log-odds (older nlpgd)

    def preds(self, cell: str, seed: int, split: str) -> dict | None:
        path = self.path / "predictions" / cell / f"seed{seed}.{split}.csv"
        if path not in self._preds:
            self._preds[path] = read_predictions(path) if path.is_file() else None
            if self._preds[path] is not None and self._preds[path]["log_odds_derived"]:
                self.derived.add(cell)
        return self._preds[path]

    def has(self, cell: str, seeds: list[int], split: str) -> bool:
        return all(self.preds(cell, s, split) is not None for s in seeds)

    def log_odds(self, cell: str, seeds: list[int], split: str) -> list[np.ndarray]:
        """Each seed's spam log-odds (what every measure is computed from)."""
        return [self.preds(cell, s, split)["log_odds"] for s in seeds]

    def derived_note(self) -> list[str]:
        """One note when some files stored only P(spam) (their log-odds are derived, clipped)."""
        if not self.derived:
            return []
        cells = sorted(self.derived)
        more = f" and {len(cells) - 3} more" if len(cells) > 3 else ""
        return [DERIVED_NOTE.format(what=f"The predictions of {', '.join(cells[:3])}{more}")]

    def labels(self, cell: str, seed: int, split: str) -> np.ndarray:
        return self.preds(cell, seed, split)["label"]

    def json(self, relative: str, default=None):
        if relative not in self._json:
            path = self.path / relative
            self._json[relative] = read_json(path) if path.is_file() else default
        return self._json[relative]

    def cost(self, cell: str, seed: int) -> dict:
        return (self.json("costs.json", {}) or {}).get(cell, {}).get(f"seed{seed}", {})


# -- resampling ---------------------------------------------------------------------------


class Resampler:
    """The bootstrap of one test set of ``n`` messages for ``n_seeds`` training seeds: message
    weights ``W`` (B, n), fixed by ``(n, B, seed)``. (``draws``, seed indices drawn with
    replacement, is kept for callers that pass it on; intervals no longer resample seeds.)"""

    def __init__(self, n: int, n_seeds: int, n_resamples: int, seed: int = 0):
        self.n, self.B = n, n_resamples
        self.W = np.vstack(list(stats.bootstrap_weights(n, n_resamples, seed)))
        self.draws = stats.seed_draws(n_seeds, n_resamples, seed)


@dataclass
class Stat:
    """One quantity per training seed: on the test set (``point``, shape (S,)) and on every
    resample (``dist``, shape (B, S)); ``bounds``: the values it can take (a metric's
    :data:`RANGES`, carried through differences), where its interval is cut."""

    point: np.ndarray
    dist: np.ndarray
    bounds: tuple[float, float] = UNBOUNDED

    def __sub__(self, other: "Stat") -> "Stat":
        lo, hi = self.bounds[0] - other.bounds[1], self.bounds[1] - other.bounds[0]
        return Stat(self.point - other.point, self.dist - other.dist, (lo, hi))

    def __neg__(self) -> "Stat":
        return Stat(-self.point, -self.dist, (-self.bounds[1], -self.bounds[0]))

    def summary(self, draws: np.ndarray | None = None, level: float = stats.CI_LEVEL) -> dict:
        """Mean over seeds, its interval (:func:`nlpgd.intervals.seed_interval`: ``mean``, ``lo``,
        ``hi``, ``se``, ``df``, ``n_seeds``) and each seed's value. ``draws`` is accepted from
        callers written for the seed bootstrap and not used."""
        return {
            **intervals.within(intervals.seed_interval(self.point, self.dist, level), *self.bounds),
            "per_seed": [None if not np.isfinite(v) else float(v) for v in self.point],
        }


def average(items: list[Stat]) -> Stat:
    """The mean of several quantities (conditions), seed by seed and resample by resample, over
    the conditions defined there (a NaN, e.g. a prior that could not be estimated, is left
    out); NaN where none is."""
    if not items:
        raise ValueError("average() of no quantities")
    point = stats.mean_of_defined([s.point for s in items])
    dist = stats.mean_of_defined([s.dist for s in items])
    return Stat(point, dist, (min(s.bounds[0] for s in items), max(s.bounds[1] for s in items)))


@dataclass(frozen=True)
class Measure:
    """What to compute from the log-odds: a metric of :func:`nlpgd.stats.resample_metrics` at
    log-odds ``thresholds`` (one per seed; None: 0, i.e. P(spam) 0.5), or the expected cost at
    ``cost_ratio``."""

    name: str
    base: str
    thresholds: tuple | None = None
    cost_ratio: float | None = None


def curve_measures(y_val: np.ndarray, Z_val: list[np.ndarray], names=CURVE) -> list[Measure]:
    """The curve metrics, the ``_val`` ones at the threshold that maximises them on validation."""
    out = []
    for name in names:
        if name.endswith("_val"):
            base = name.removesuffix("_val")
            out.append(Measure(name, base, tuple(stats.best_threshold(y_val, z, base) for z in Z_val)))
        else:
            out.append(Measure(name, name))
    return out


def measure(res: Resampler, y, P: list[np.ndarray], measures: list[Measure]) -> dict[str, Stat]:
    """Every measure for every seed's log-odds ``P`` on one test set (``y``: its labels, or a list of
    each seed's labels when every seed has its own test messages of the same number)."""
    ys = list(y) if isinstance(y, list) else [y] * len(P)
    ones = np.ones((1, len(ys[0])))
    plain = [m.base for m in measures if m.thresholds is None and m.cost_ratio is None]
    point: dict[str, list] = {m.name: [] for m in measures}
    dist: dict[str, list] = {m.name: [] for m in measures}
    for s, (y, p) in enumerate(zip(ys, P)):
        if plain:
            d, pt = stats.resample_metrics(res.W, y, p, plain), stats.resample_metrics(ones, y, p, plain)
        for m in measures:
            if m.cost_ratio is not None:
                thr = m.thresholds[s]
                dm, pm = (stats.resample_cost(w, y, p, thr, m.cost_ratio) for w in (res.W, ones))
            elif m.thresholds is not None:
                dm, pm = (stats.resample_metrics(w, y, p, [m.base], m.thresholds[s])[m.base] for w in (res.W, ones))
            else:
                dm, pm = d[m.base], pt[m.base]
            dist[m.name].append(dm)
            point[m.name].append(pm[0])
    bounds = {m.name: (0.0, max(1.0, m.cost_ratio)) if m.cost_ratio is not None else range_of(m.base) for m in measures}
    return {k: Stat(np.array(point[k], dtype=np.float64), np.stack(dist[k], axis=1), bounds[k]) for k in point}


def measure_test(store: Store, cell: str, seeds: list[int], n_resamples: int) -> tuple | None:
    """``(resampler, labels, curve measures, their values)`` of ``cell``'s test split (``_val``
    thresholds from validation), to score other versions of those messages alike; None: not scored."""
    if not store.has(cell, seeds, "test"):
        return None
    y = store.labels(cell, seeds[0], "test")
    res = Resampler(len(y), len(seeds), n_resamples)
    measures = curve_measures(store.labels(cell, seeds[0], "validation"), store.log_odds(cell, seeds, "validation"))
    return res, y, measures, measure(res, y, store.log_odds(cell, seeds, "test"), measures)


# -- comparing the members of a pair ------------------------------------------------------


def advantage(favoured: Stat, other: Stat, direction: str) -> Stat:
    """How much better ``favoured`` is than ``other`` (positive: better), ``direction`` saying
    whether higher or lower values are better."""
    return favoured - other if direction == "higher" else other - favoured


def margin(grid, metric: str) -> float:
    """The practical-equivalence margin of ``metric`` in an experiment grid (its ``margins``)."""
    return grid.margins.of(metric)


def finding(
    pair: str,
    favoured: str,
    other: str,
    values: tuple[Stat, Stat],
    draws: np.ndarray | None,
    *,
    metric: str,
    statistic: str,
    margin: float,
    direction: str | None = None,
    quantity: str | None = None,
    metric_label: str | None = None,
    condition: str | None = None,
) -> dict:
    """One comparison behind a verdict: the two members' values of ``statistic`` (e.g. "ROC-AUC
    averaged over sizes 16-512"), the favoured member's advantage with its interval, the
    ``margin`` within which a difference counts as none (:func:`margin`), the p-values of the
    interval (of no difference; of a difference beyond the margin) and the verdict.
    ``direction``: which way the compared quantity is better (default: the metric's);
    ``quantity``: its name when it is not the metric itself (a drop); ``condition``: the part of
    the claim it belongs to (a column of the claim's verdict table; findings of other metrics on
    the same pair and condition are checked against it for disagreement). ``draws`` is unused."""
    direction = direction or better(metric)
    adv = advantage(values[0], values[1], direction).summary()
    fav, oth = values[0].summary(), values[1].summary()
    p_zero, p_margin = intervals.interval_p_values(adv["mean"], adv["se"], adv["df"], margin)
    return {
        "pair": pair,
        "favoured": favoured,
        "other": other,
        "metric": metric,
        "metric_label": metric_label or label(metric),
        "quantity": quantity or metric_label or label(metric),
        "condition": condition,
        "statistic": statistic,
        "better": direction,
        "favoured_value": fav,
        "other_value": oth,
        "advantage": adv,
        "margin": margin,
        "p_difference": p_zero,
        "p_equivalence": p_margin,
        "verdict": judge(adv["lo"], adv["hi"], margin),
    }


# -- what the tables show -----------------------------------------------------------------


def text(summary: dict | None, digits: int = 4) -> str:
    """``mean [lo, hi]`` of a summary."""
    if not summary or summary.get("mean") is None:
        return "n/a"
    from nlpgd.report.verdict import interval, num

    return f"{num(summary['mean'], digits)} {interval(summary, digits)}"


def span(values: list, what: str = "training sizes") -> str:
    """``averaged over training sizes 16-512``, or ``at training size 32`` for one."""
    if len(values) == 1:
        return f"at {what.removesuffix('s')} {values[0]}"
    return f"averaged over {what} {values[0]}-{values[-1]}"


def shown(stats_by_name: dict, key: str, draws: np.ndarray) -> str:
    """``mean [lo, hi]`` of one :class:`Stat` of a mapping."""
    return text(stats_by_name[key].summary(draws))


def parameter_rows(store: Store, pairs, cell_prefix: str, seeds: list[int]) -> tuple[list[list], list[str]]:
    """Per pair, both members' parameter counts as fitted on ``cell_prefix`` (e.g. ``full``) and
    whether they are within 20% of each other; the notes name every neural pair that is not."""
    rows, notes = [], []
    for pair in pairs:
        counts = []
        for m in pair.members:
            found = [store.cost(f"{cell_prefix}/{m}", s).get("n_parameters") for s in seeds]
            found = [c for c in found if c]
            counts.append(int(np.mean(found)) if found else None)
        if None in counts:
            continue
        ratio = max(counts) / min(counts)
        matched = ratio <= 1.2
        shown = "n/a (same features)" if pair.kind == "linear" else ("yes" if matched else "no")
        rows.append([pair.label, f"{counts[0]:,}", f"{counts[1]:,}", f"{ratio:.2f}", shown])
        if not matched and pair.kind != "linear":
            notes.append(
                f"The {pair.label} is not size-matched: {counts[0]:,} vs {counts[1]:,} parameters "
                f"(ratio {ratio:.2f}, more than 20% apart), so its verdict mixes family and size."
            )
    return rows, notes


PARAMETER_HEADERS = ["pair", "generative: parameters", "discriminative: parameters", "ratio", "within 20%"]


def series(name: str, x: list, summaries: list[dict | None], style: str = "-", group: str | None = None) -> dict:
    """One line of a figure: the means and interval bounds at each ``x`` (``group`` picks the
    colour, so one model keeps its colour across panels and line styles)."""
    pick = lambda k: [None if s is None else s.get(k) for s in summaries]  # noqa: E731
    return {
        "label": name,
        "x": list(x),
        "y": pick("mean"),
        "lo": pick("lo"),
        "hi": pick("hi"),
        "style": style,
        "group": group or name,
    }


def pair_finding(grid, pair, favoured: str, values: tuple[Stat, Stat], *, metric: str, **kw) -> dict:
    """A :func:`finding` between the members of a matched ``pair``: ``favoured`` is the member the
    claim favours ("generative" or "discriminative"), ``values`` (favoured, other), with
    ``metric``'s equivalence margin from ``grid``; ``kw`` as :func:`finding` takes them."""
    other = "discriminative" if favoured == "generative" else "generative"
    members = getattr(pair, favoured), getattr(pair, other)
    return finding(pair.label, *members, values, None, metric=metric, margin=margin(grid, metric), **kw)


def drop_finding(grid, pair, drops: tuple[Stat, Stat], *, metric: str, condition: str, suffix: str = "", **kw) -> dict:
    """A :func:`pair_finding` on the drops (generative, discriminative; smaller is better) of ``metric``
    under ``condition``, as ``metric + suffix`` (a scoring variant); :func:`drop_key` reads it back."""
    kw = {"direction": "lower", "quantity": f"{label(metric)} drop", "condition": condition, **kw}
    return pair_finding(grid, pair, "generative", drops, metric=metric + suffix, **kw)


def judged(metric: str, findings: list[dict], notes: list[str] | None = None) -> tuple[list[dict], dict]:
    """The primary findings (those on the claim's ``metric``) and the verdict over ``findings``:
    :func:`nlpgd.report.verdict.verdict` on the primary ones, the others checked against them;
    ``notes``: the verdict's caveats (e.g. the pairs' parameter notes)."""
    primary = [f for f in findings if f["metric"] == metric]
    others = [f for f in findings if f["metric"] != metric]
    return primary, verdict(primary, others, notes)


def drop_key(f: dict) -> str:
    """A drop finding in the key numbers: condition, pair, both members' drops."""
    return (
        f"{f.get('condition')}, {f['pair'].split(':')[-1].strip()}: drop {text(f['favoured_value'])} vs "
        f"{text(f['other_value'])}"
    )


def judged_result(metric: str, findings: list[dict], *, key, nothing: str, caveats=None, **fields):
    """The :class:`~.result.ExperimentResult` of :func:`judged` over ``findings`` (``caveats``: its notes),
    ``key(finding)`` of each primary one as the key numbers (else ``nothing``), ``fields`` the rest."""
    from nlpgd.experiments.claims.result import ExperimentResult

    primary, judgement = judged(metric, findings, caveats)
    key_numbers = "; ".join(key(f) for f in primary) or nothing
    return ExperimentResult(metric=metric, verdict=judgement, findings=findings, key_numbers=key_numbers, **fields)


def paired_result(d, store: Store, findings: list[dict], *, metric: str, key, tables, effects=(), **fields):
    """:func:`judged_result` of a claim on the matched pairs (their parameter notes as caveats); tables: its
    own ``tables``, every comparison, ``effects`` (what the perturbations did), the pairs' parameters."""
    from nlpgd.experiments.claims.plan import FULL

    param_rows, param_notes = parameter_rows(store, d.pairs, FULL, d.seeds)
    params_table = {"title": "Matched pairs: parameters", "headers": PARAMETER_HEADERS, "rows": param_rows}
    tables = [*tables, findings_table(findings), *effects, params_table]
    return judged_result(
        metric, findings, key=key, nothing="no matched pair", caveats=param_notes, tables=tables, **fields
    )


def findings_table(findings: list[dict]) -> dict:
    """Every comparison behind a verdict, every metric, one row each."""
    rows = [
        [
            f["pair"],
            f.get("condition") or "",
            f["metric_label"],
            f"{f['favoured']}: {text(f['favoured_value'])}",
            f"{f['other']}: {text(f['other_value'])}",
            text(f["advantage"]),
            f["verdict"],
        ]
        for f in findings
    ]
    headers = ["pair", "condition", "metric", "favoured by the claim", "other", "advantage of the favoured", "verdict"]
    return {"title": "Every comparison behind the verdict (every metric)", "headers": headers, "rows": rows}
