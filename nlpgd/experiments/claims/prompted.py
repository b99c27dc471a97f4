"""Models that classify without training in the learning curve: channel prompting.

A pretrained causal LM with ``prompts`` (``nlpgd.models.channel``) trains nothing. When it
uses no label at all (no demonstrations, no prior from the labels: ``params.label_free()``)
it is fitted once, on the full train split whose labels it ignores, and drawn at 0 training
messages; one that uses k labels (demonstrations, or the class prior) is fitted on the same
stratified subsets as the pairs at each of ``experiment.learning_curve.few_shot_sizes``. A
paired prompted model is already fitted at every size. The data-efficiency verdict then says
what the generative model reaches with 0 and with few labels, beside the discriminative pair
members at the same sizes.
"""

from __future__ import annotations

from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, Plan, size_set
from nlpgd.experiments.claims.runner import Design

ZERO = 0  # the x of a model that uses no label


def prompted(d: Design) -> dict:
    """The configured models that classify by prompting (``prompts`` set), with their params."""
    return {m: p for m, p in d.cfg.models.items() if getattr(p, "prompts", None) is not None}


def few_shot_sizes(d: Design) -> list[int]:
    n = len(d.data["main"].texts["train"])
    return [s for s in d.grid.learning_curve.few_shot_sizes if s <= n]


def add_cells(d: Design, plan: Plan) -> None:
    """A label-free prompted model once on the full split; one that uses labels at the
    few-shot sizes (paired prompted models are fitted at every size already)."""
    for m, p in prompted(d).items():
        if m in d.paired:
            continue
        sizes = [FULL] if p.label_free() else few_shot_sizes(d)
        for size in sizes:
            for seed in d.seeds_of(m):
                plan.add(size_set(size), m, seed)


def points(d: Design, store: M.Store) -> dict:
    """``{model: {labels used: metrics}}`` of the prompted models, and the draws."""
    out: dict = {}
    draws = None
    for m, p in prompted(d).items():
        seeds = d.seeds_of(m)
        at = {ZERO: FULL} if p.label_free() else {s: s for s in few_shot_sizes(d)}
        for x, size in at.items():
            cell = f"{size_set(size).name}/{m}"
            if not store.has(cell, seeds, "test"):
                continue
            y = store.labels(cell, seeds[0], "test")
            res = M.Resampler(len(y), len(seeds), d.grid.bootstrap)
            draws = res.draws if draws is None else draws
            measures = M.curve_measures(
                store.labels(cell, seeds[0], "validation"), store.log_odds(cell, seeds, "validation")
            )
            out.setdefault(m, {})[x] = (M.measure(res, y, store.log_odds(cell, seeds, "test"), measures), res.draws)
    return out


def series(pts: dict, metric: str) -> list[dict]:
    """One figure line (or marker, at 0) per prompted model."""
    lines = []
    for m, at in pts.items():
        xs = sorted(at)
        summaries = [at[x][0][metric].summary(at[x][1]) for x in xs]
        lines.append(M.series(f"{m} (prompted, no training)", xs, summaries, style="o" if xs == [ZERO] else "--"))
    return lines


def table_and_sentences(d: Design, pts: dict, st: dict, draws, metric: str) -> tuple[dict | None, list[str]]:
    """The table of what each prompted model reaches with 0 and few labels beside the pair
    members at the same sizes, and one sentence per prompted model for the verdict."""
    if not pts:
        return None, []
    label, rows, sentences = M.label(metric), [], []
    sizes = sorted({x for at in pts.values() for x in at})
    for m, at in sorted(pts.items(), key=lambda kv: (min(kv[1]), kv[0])):  # fewest labels first
        parts = []
        for x in sorted(at):
            value = M.text(at[x][0][metric].summary(at[x][1]))
            rows.append([m, "generative, prompted (no training)", str(x), value])
            parts.append(f"{value} with {x} labels")
        sentences.append(f"Without training, {m} (generative, channel prompting) reaches {label} {', '.join(parts)}.")
    for pair in d.pairs:
        found = [(s, st[(s, pair.discriminative)][metric]) for s in sizes if (s, pair.discriminative) in st]
        for s, stat in found:
            rows.append([pair.discriminative, "discriminative, trained", str(s), M.text(stat.summary(draws))])
        if found:
            at = ", ".join(f"{M.text(stat.summary(draws))} with {s}" for s, stat in found)
            sentences.append(f"The discriminative {pair.discriminative} reaches {at} labels.")
    table = {
        "title": f"{label} with 0 and few labels: prompted models (no training) and the trained discriminative members",
        "headers": ["model", "kind", "labels used", label],
        "rows": rows,
    }
    return table, sentences


def add_to_figure(d: Design, figure: dict, pts: dict, metrics) -> dict:
    """The learning-curve figure with the prompted models' points (their full-split marker of a
    reference row moves to 0 labels; the x axis becomes symmetric-log so that 0 shows)."""
    free = {m for m, p in prompted(d).items() if p.label_free()}
    for metric, panel in zip(metrics, figure["panels"]):
        panel["series"] = [s for s in panel["series"] if s["label"].removesuffix(" (reference)") not in free]
        panel["series"] += series(pts, metric)
        if any(ZERO in at for at in pts.values()):
            panel["xscale"] = "symlog"
    return figure
