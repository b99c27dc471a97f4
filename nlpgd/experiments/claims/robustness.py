"""Robustness to shifted data: obfuscated test messages, other corpora, and real shifts.

(a) Every model fitted on the full train split scores the test split after each obfuscation
of :mod:`nlpgd.perturb` at each strength (the share of words changed; seed k's models see the
texts perturbed with seed k, so both members of a pair see the same texts). (b) For each
cross-domain target, the models trained on the main corpus score the target's test split, and
the paired models trained on the target's train split score the main test split. (c) For each
real shift inside SpamAssassin (:mod:`nlpgd.data.shifts`: temporal, difficulty), the paired
models trained on the shift's train side score its own test split and the target side.

A drop is how much worse a model does on the shifted test set than on its own clean test set
(clean minus shifted for a higher-is-better metric). The claim favours the generative member:
it held when the discriminative member drops more.
"""

from __future__ import annotations

from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, MAIN, Plan, shift_set, shift_sources, target_set, text_eval
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.runner import PERTURBATIONS_FILE, Design

NAME = "robustness"
TITLE = "Robustness to shifted data"
CLAIM = "Discriminative models are brittle when the test data differs from the training data: they lose more."


def _obfuscations(d: Design) -> list[tuple[str, float]]:
    rb = d.grid.robustness
    return [(k, s) for k in rb.obfuscations for s in rb.strengths if s > 0]


def plan(d: Design) -> Plan:
    p = Plan()
    evals = [text_eval(("obfuscate", k, s)) for k, s in _obfuscations(d)]
    evals += [text_eval(source=t) for t in d.targets]
    d.add_full_cells(p, evals)
    for t in d.targets:  # the reverse direction: paired models only
        for seed in d.seeds:
            for m in d.paired:
                p.add(target_set(t), m, seed, [text_eval(source=MAIN)])
    for t in d.shifts:  # real shifts: paired models trained on the train side, scored on the target side
        for seed in d.seeds:
            for m in d.paired:
                p.add(shift_set(t), m, seed, [text_eval(source=shift_sources(t)[1])])
    return p


def _scored(store: M.Store, res, cell: str, seeds, split: str, measures) -> dict | None:
    if not store.has(cell, seeds, split):
        return None
    return M.measure(res, store.labels(cell, seeds[0], split), store.log_odds(cell, seeds, split), measures)


def drop(clean: dict, shifted: dict) -> dict:
    """Per metric: how much worse the shifted test set is (positive: worse)."""
    return {k: M.advantage(clean[k], shifted[k], M.better(k)) for k in clean}


def trained_elsewhere(d: Design, store: M.Store, rcell: str, seeds, away: str, res=None) -> tuple | None:
    """``(in-domain, away, drop)`` of a cell trained off the main data: its own test split, and
    the test set ``away`` (scored with ``res``, default fresh resamples of it)."""
    if not (store.has(rcell, seeds, "test") and store.has(rcell, seeds, away)):
        return None
    ry = store.labels(rcell, seeds[0], "test")
    measures = M.curve_measures(store.labels(rcell, seeds[0], "validation"), store.log_odds(rcell, seeds, "validation"))
    own = M.measure(
        M.Resampler(len(ry), len(seeds), d.grid.bootstrap), ry, store.log_odds(rcell, seeds, "test"), measures
    )
    ay = store.labels(rcell, seeds[0], away)
    res = res or M.Resampler(len(ay), len(seeds), d.grid.bootstrap)
    shifted = M.measure(res, ay, store.log_odds(rcell, seeds, away), measures)
    return own, shifted, drop(own, shifted)


def model_drops(d: Design, store: M.Store, m: str) -> dict:
    """Clean and shifted metrics, and drops, of one model: ``{"clean", "draws",
    "obfuscation": {(kind, s): (metrics, drops)}, "forward": {t: ...}, "reverse": {t: ...},
    "shift": {t: ...}}``."""
    seeds, cell = d.seeds_of(m), f"{FULL}/{m}"
    if (tested := M.measure_test(store, cell, seeds, d.grid.bootstrap)) is None:
        return {}
    res, _, measures, clean = tested
    out = {"clean": clean, "draws": res.draws, "obfuscation": {}, "forward": {}, "reverse": {}, "shift": {}}
    for kind, s in _obfuscations(d):
        shifted = _scored(store, res, cell, seeds, text_eval(("obfuscate", kind, s)).name, measures)
        if shifted is not None:
            out["obfuscation"][(kind, s)] = (shifted, drop(clean, shifted))
    for t in d.targets:
        yt = store.labels(cell, seeds[0], f"on-{t}") if store.has(cell, seeds, f"on-{t}") else None
        if yt is not None:
            cross = M.measure(
                M.Resampler(len(yt), len(seeds), d.grid.bootstrap), yt, store.log_odds(cell, seeds, f"on-{t}"), measures
            )
            out["forward"][t] = (clean, cross, drop(clean, cross))
        if m in d.paired and (r := trained_elsewhere(d, store, f"{target_set(t).name}/{m}", seeds, f"on-{MAIN}", res)):
            out["reverse"][t] = r
    for t in d.shifts:
        away = text_eval(source=shift_sources(t)[1]).name
        if m in d.paired and (r := trained_elsewhere(d, store, f"{shift_set(t).name}/{m}", seeds, away)):
            out["shift"][t] = r
    return out


def _condition(d: Design, way: str, t: str) -> tuple[str, str]:
    """``(condition, "trained on ..., tested on ...")`` of a cross-domain direction or a shift."""
    if way == "shift":
        sides = d.shifts[t]
        return f"{t} shift", f"trained on {sides['train']['groups']}, tested on {sides['target']['groups']}"
    cond = f"{d.main_name} to {t}" if way == "forward" else f"{t} to {d.main_name}"
    return cond, f"trained on {cond.replace(' to ', ', tested on ')}"


WAYS = ("forward", "reverse", "shift")


def _pair_findings(d: Design, drops: dict, pair) -> list[dict]:
    g, c = drops.get(pair.generative), drops.get(pair.discriminative)
    if not g or not c:
        return []
    out = []
    top = max((s for _, s in _obfuscations(d)), default=None)
    kinds = [k for k, s in _obfuscations(d) if s == top and (k, s) in g["obfuscation"] and (k, s) in c["obfuscation"]]
    for metric in M.CURVE:
        quantity = f"{M.label(metric)} drop"
        parts = []
        if kinds:
            vg, vc = (M.average([x["obfuscation"][(k, top)][1][metric] for k in kinds]) for x in (g, c))
            parts.append(("obfuscation", f"{quantity} at strength {top:g}, averaged over {', '.join(kinds)}", vg, vc))
        for way in WAYS:
            for t in d.shifts if way == "shift" else d.targets:
                if t in g[way] and t in c[way]:
                    cond, how = _condition(d, way, t)
                    parts.append((cond, f"{quantity}, {how}", g[way][t][2][metric], c[way][t][2][metric]))
        for cond, statistic, vg, vc in parts:
            out.append(M.drop_finding(d.grid, pair, (vg, vc), metric=metric, condition=cond, statistic=statistic))
    return out


def _tables(d: Design, drops: dict, metric: str) -> list[dict]:
    strengths = sorted({s for _, s in _obfuscations(d)})
    values, lost = [], []
    for m, v in drops.items():
        for kind in d.grid.robustness.obfuscations:
            cells = [v["obfuscation"].get((kind, s)) for s in strengths]
            values.append(
                [
                    m,
                    kind,
                    M.text(v["clean"][metric].summary(v["draws"])),
                    *(M.text(x[0][metric].summary(v["draws"])) if x else "n/a" for x in cells),
                ]
            )
            lost.append([m, kind, *(M.text(x[1][metric].summary(v["draws"])) if x else "n/a" for x in cells)])
    cross = []
    for m, v in drops.items():
        for way in WAYS:
            for t, (own, away, dr) in v[way].items():
                cond, how = _condition(d, way, t)
                if way == "shift":
                    cond = f"{cond}: {how.removeprefix('trained on ').replace(', tested on ', ' to ')}"
                cross.append([m, cond, *(M.text(x[metric].summary(v["draws"])) for x in (own, away, dr))])
    label = M.label(metric)
    tables = [
        {
            "title": f"{label} on obfuscated test messages (strength = share of words changed)",
            "headers": ["model", "obfuscation", "clean", *(f"{s:g}" for s in strengths)],
            "rows": values,
        },
        {
            "title": f"Drop in {label} (clean minus obfuscated for higher-is-better metrics; larger = more brittle)",
            "headers": ["model", "obfuscation", *(f"{s:g}" for s in strengths)],
            "rows": lost,
        },
    ]
    if cross:
        tables.append(
            {
                "title": f"Across domains and real shifts: {label} in-domain, shifted, and the drop",
                "headers": ["model", "trained on to tested on", "in-domain", "shifted", "drop"],
                "rows": cross,
            }
        )
    return tables


def shift_tables(shifts: dict[str, dict]) -> list[dict]:
    """What each side of each real shift holds after de-duplication, and what each group is."""
    if not shifts:
        return []
    rows, groups = [], {}
    for name, r in shifts.items():
        groups.update(r["groups"])
        for side in ("train", "target"):
            x = r[side]
            removed = f"{x['duplicates_within']} duplicates within the side"
            if side == "target":
                removed += f", {x['duplicates_of_train']} exact duplicates of train-side messages"
            used = " / ".join(str(n) for n in x["splits"].values()) if side == "train" else str(x["messages"])
            rows.append([name, side, x["groups"], x["messages"], x["ham"], x["spam"], used, removed])
    return [
        {
            "title": "Real shifts: each side after de-duplication (train side used as train / validation / test)",
            "headers": ["shift", "side", "groups", "messages", "ham", "spam", "used", "removed"],
            "rows": rows,
        },
        {
            "title": "SpamAssassin groups",
            "headers": ["group", "what it is"],
            "rows": [[g, w] for g, w in groups.items()],
        },
    ]


def effect_table(store: M.Store, prefixes: tuple[str, ...]) -> dict:
    """The share of words and messages each perturbation (named with one of ``prefixes``) changed."""
    record = store.json(PERTURBATIONS_FILE, {}) or {}
    grouped: dict[str, list] = {}
    for key, eff in record.items():
        if key.startswith(prefixes):
            grouped.setdefault(key.rsplit("/", 1)[0], []).append(eff)
    rows = [
        [
            name,
            f"{sum(e['words_changed_share'] for e in effs) / len(effs):.3f}",
            f"{sum(e['messages_changed_share'] for e in effs) / len(effs):.3f}",
        ]
        for name, effs in sorted(grouped.items())
    ]
    return {
        "title": "What each perturbation did to the test texts (mean over seeds)",
        "headers": ["perturbation", "share of words changed or removed", "share of messages changed"],
        "rows": rows,
    }


def _figures(d: Design, drops: dict, metric: str) -> list[dict]:
    strengths = [0.0] + sorted({s for _, s in _obfuscations(d)})
    panels = []
    for kind in d.grid.robustness.obfuscations:
        lines = []
        for m, v in drops.items():
            pts = [(0.0, v["clean"][metric])]
            pts += [(s, v["obfuscation"][(kind, s)][0][metric]) for s in strengths[1:] if (kind, s) in v["obfuscation"]]
            lines.append(M.series(m, [s for s, _ in pts], [x.summary(v["draws"]) for _, x in pts]))
        panels.append(
            {
                "title": kind,
                "xlabel": "share of words obfuscated",
                "ylabel": M.label(metric),
                "xscale": "linear",
                "series": lines,
            }
        )
    figs = [{"name": "obfuscation", "title": f"{M.label(metric)} on obfuscated test messages", "panels": panels}]
    cross_panels = []
    for way in WAYS:
        for t in d.shifts if way == "shift" else d.targets:
            lines = [
                M.series(
                    m, [0, 1], [v[way][t][0][metric].summary(v["draws"]), v[way][t][1][metric].summary(v["draws"])]
                )
                for m, v in drops.items()
                if t in v[way]
            ]
            if lines:
                cross_panels.append(
                    {
                        "title": _condition(d, way, t)[1],
                        "xlabel": "",
                        "ylabel": M.label(metric),
                        "xticks": [0, 1],
                        "xticklabels": ["in-domain", "shifted" if way == "shift" else "cross-domain"],
                        "series": lines,
                    }
                )
    if cross_panels:
        figs.append(
            {"name": "cross_domain", "title": f"{M.label(metric)} in and across domains", "panels": cross_panels}
        )
    return figs


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    metric = d.grid.robustness.metric
    drops = {m: v for m in d.paired + d.reference if (v := model_drops(d, store, m))}
    findings = [f for pair in d.pairs for f in _pair_findings(d, drops, pair)]
    notes = [n for n in d.notes if n.startswith("cross-domain")]
    if not d.grid.robustness.cross_domain and not d.shifts:
        notes.append("no cross-domain target or real shift is configured (experiment.robustness.cross_domain, .shifts)")
    return M.paired_result(
        d,
        store,
        findings,
        metric=metric,
        key=M.drop_key,
        tables=[*_tables(d, drops, metric), *shift_tables(d.shifts)],
        effects=[effect_table(store, ("obfuscate",))],
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        figures=_figures(d, drops, metric),
        notes=notes,
        method="Obfuscations keep labels and are drawn per message with the model's seed. Drops and their "
        "differences use the same bootstrap resamples of the test messages for both members of a pair; a drop "
        "across domains or a real shift subtracts independent resamples of the two test sets. A real shift trains "
        "on its train side and compares that side's own test split with the target side, from which exact "
        "duplicates of train-side messages were removed. A positive advantage means the generative member dropped "
        "less. " + M.INTERVALS,
    )
