"""Missing data: words dropped at random, and messages cut short, at test time.

Every model fitted on the full train split scores the test split after random word dropout at
each rate of ``experiment.missing_words.dropout`` (each word dropped independently, at least
one kept, drawn per message with the model's seed) and after truncation to the first N words.
The claim favours the generative member: it held when the discriminative member loses more,
at the highest dropout rate and at the shortest truncation.

A shortened message is not a complete one: a class-conditional LM that scores it with the
end-of-message token adds a "the message ends here" term that real short spam and real short ham
differ on. Every message the perturbation changed is therefore scored twice: as the observed
beginning of a message (no end token: the generative model's likelihood of a prefix) and, as
before, as a complete message. Both variants are reported; **the verdict uses the prefix
variant**. A model without an end-of-message term (naive Bayes' bag of words, the encoders)
scores the same either way.
"""

from __future__ import annotations

from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, Plan, text_eval
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.robustness import drop, effect_table
from nlpgd.experiments.claims.runner import Design, prefix_name

NAME = "missing-words"
TITLE = "Missing data (word dropout and truncation)"
CLAIM = "Generative models handle missing words more gracefully: they lose less when words are dropped or cut off."


def _transforms(d: Design) -> list[tuple]:
    mw = d.grid.missing_words
    return [("dropout", r) for r in mw.dropout if r > 0] + [("truncate", n) for n in mw.truncation]


def plan(d: Design) -> Plan:
    p = Plan()
    d.add_full_cells(p, [text_eval(t) for t in _transforms(d)])
    return p


def model_curves(d: Design, store: M.Store, m: str) -> dict:
    seeds, cell = d.seeds_of(m), f"{FULL}/{m}"
    if (tested := M.measure_test(store, cell, seeds, d.grid.bootstrap)) is None:
        return {}
    res, y, measures, clean = tested
    out = {"clean": clean, "draws": res.draws, "shifted": {}, "with_end": {}}
    for t in _transforms(d):
        name = text_eval(t).name
        for key, file in (("shifted", prefix_name(name)), ("with_end", name)):
            if store.has(cell, seeds, file):
                shifted = M.measure(res, y, store.log_odds(cell, seeds, file), measures)
                out[key][t] = (shifted, drop(clean, shifted))
    return out


# the verdict's variant first: shortened messages scored as prefixes (no end token)
VARIANTS = {
    "shifted": ("", "shortened messages scored as prefixes, no end token"),
    "with_end": ("_with_end", "shortened messages scored as complete ones, with the end token"),
}


def _conditions(d: Design) -> list[tuple[str, tuple]]:
    mw = d.grid.missing_words
    out = []
    if [r for r in mw.dropout if r > 0]:
        out.append((f"dropout {max(mw.dropout):g}", ("dropout", max(mw.dropout))))
    if mw.truncation:
        out.append((f"first {min(mw.truncation)} words", ("truncate", min(mw.truncation))))
    return out


def _findings(d: Design, curves: dict) -> list[dict]:
    out = []
    for pair in d.pairs:
        g, c = curves.get(pair.generative), curves.get(pair.discriminative)
        if not g or not c:
            continue
        for cond, t in _conditions(d):
            for variant, (suffix, how) in VARIANTS.items():
                if t not in g[variant] or t not in c[variant]:
                    continue
                for metric in M.CURVE:
                    out.append(
                        M.drop_finding(
                            d.grid,
                            pair,
                            (g[variant][t][1][metric], c[variant][t][1][metric]),
                            metric=metric,
                            suffix=suffix,
                            condition=cond,
                            metric_label=f"{M.label(metric)} ({how})",
                            statistic=f"{M.label(metric)} drop with {cond} ({how})",
                        )
                    )
    return out


def _tables(d: Design, curves: dict, metric: str) -> list[dict]:
    return [t for variant in VARIANTS for t in _variant_tables(d, curves, metric, variant)]


def _variant_tables(d: Design, curves: dict, metric: str, variant: str) -> list[dict]:
    ts = _transforms(d)
    heads = [f"dropout {t[1]:g}" if t[0] == "dropout" else f"first {t[1]} words" for t in ts]
    values, lost = [], []
    how = VARIANTS[variant][1] + ("; the verdict's variant" if variant == "shifted" else "")
    for m, v in curves.items():
        cells = [v[variant].get(t) for t in ts]
        values.append(
            [
                m,
                M.text(v["clean"][metric].summary(v["draws"])),
                *(M.text(x[0][metric].summary(v["draws"])) if x else "n/a" for x in cells),
            ]
        )
        lost.append([m, *(M.text(x[1][metric].summary(v["draws"])) if x else "n/a" for x in cells)])
    label = M.label(metric)
    return [
        {"title": f"{label} with words missing ({how})", "headers": ["model", "all words", *heads], "rows": values},
        {"title": f"Drop in {label} (larger = loses more; {how})", "headers": ["model", *heads], "rows": lost},
    ]


def _figure(d: Design, curves: dict, metric: str) -> dict:
    mw = d.grid.missing_words
    drop_x = [0.0] + [r for r in mw.dropout if r > 0]
    trunc = list(mw.truncation)
    panels = [
        {
            "title": "random word dropout",
            "xlabel": "share of words dropped",
            "ylabel": M.label(metric),
            "xscale": "linear",
            "series": [],
        },
        {
            "title": "truncation",
            "xlabel": "words kept",
            "ylabel": M.label(metric),
            "xticks": list(range(len(trunc) + 1)),
            "xticklabels": [*map(str, trunc), "all"],
            "series": [],
        },
    ]
    for m, v in curves.items():
        sh = v["shifted"]
        pts = [(0.0, v["clean"][metric])] + [
            (r, sh[("dropout", r)][0][metric]) for r in drop_x[1:] if ("dropout", r) in sh
        ]
        panels[0]["series"].append(M.series(m, [x for x, _ in pts], [s.summary(v["draws"]) for _, s in pts]))
        pts = [(i, sh[("truncate", n)][0][metric]) for i, n in enumerate(trunc) if ("truncate", n) in sh]
        pts.append((len(trunc), v["clean"][metric]))
        panels[1]["series"].append(M.series(m, [x for x, _ in pts], [s.summary(v["draws"]) for _, s in pts]))
    return {"name": "missing_words", "title": f"{M.label(metric)} with words missing at test time", "panels": panels}


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    metric = d.grid.missing_words.metric
    curves = {m: v for m in d.paired + d.reference if (v := model_curves(d, store, m))}
    findings = _findings(d, curves)
    return M.paired_result(
        d,
        store,
        findings,
        metric=metric,
        key=M.drop_key,
        tables=[*_tables(d, curves, metric)],
        effects=[effect_table(store, ("dropout", "truncate"))],
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        figures=[_figure(d, curves, metric)],
        notes=[],
        method="The same bootstrap resamples of the test messages for clean and damaged texts and for both "
        "members of a pair; a positive advantage means the generative member lost less. Every message the "
        "perturbation changed is scored twice, as the beginning of a message (no end-of-message token) and as a "
        "complete one; the verdict uses the first, the generative model's likelihood of what was observed. Models "
        "without an end-of-message term score the same either way. " + M.INTERVALS,
    )
