"""Hybrids: does combining the two families bring the strengths of both?

Every model whose family is ``hybrid`` (the GPT-2 continuum points with both a generative and
a discriminative term, and a stack) is set against the two ends it combines: for a continuum
point, the continuum pair (the same network with the generative term alone and with the
discriminative term alone); for an ensemble, its generative and its discriminative member.
On each measure the hybrid is compared with the *better* end there (by the point estimates):
in-domain ROC-AUC and F1, the ROC-AUC drop on every cross-domain target, and the ROC-AUC drop
at a word-dropout rate (the label fidelity of samples needs samples from every continuum
point, which this run does not draw: the page says so). Each comparison is a finding whose
verdict comes from the one verdict function; the table lists, per hybrid, whether any of its
comparisons did not hold. All members of one comparison are measured on the hybrid's seeds
(the reference seeds), so the intervals pair the same training runs.
"""

from __future__ import annotations

from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, Plan, describe, size_set, text_eval
from nlpgd.experiments.claims.robustness import drop
from nlpgd.experiments.claims.runner import Design
from nlpgd.report.verdict import NOT_HELD, verdict

NAME = "hybrids"
TITLE = "Hybrids (the continuum and the stack against both ends)"
CLAIM = "Combining generative and discriminative training brings the strengths of both."


def hybrids(d: Design) -> list[str]:
    return [m for m in d.cfg.models if describe(d.cfg.models[m]).family == "hybrid"]


def ends(d: Design, hybrid: str) -> tuple[str, str] | None:
    """``(generative end, discriminative end)`` of ``hybrid``, or None when the config has none."""
    model = describe(d.cfg.models[hybrid])
    if model.combines():
        fam = {m: describe(d.cfg.models[m]).family for m in model.combines() if m in d.cfg.models}
        gen = [m for m, f in fam.items() if f == "generative"]
        disc = [m for m, f in fam.items() if f == "discriminative"]
        return (gen[0], disc[0]) if gen and disc else None
    for pair in d.pairs:
        if pair.kind == "continuum" and describe(d.cfg.models[pair.generative]).objective_free_settings() == (
            model.objective_free_settings()
        ):
            return pair.generative, pair.discriminative
    return None


def dropout_rate(d: Design) -> float | None:
    rates = [r for r in d.grid.missing_words.dropout if r > 0]
    return d.grid.hybrids.dropout if d.grid.hybrids.dropout is not None else (max(rates) if rates else None)


def _evals(d: Design) -> list:
    rate = dropout_rate(d)
    return ([text_eval(("dropout", rate))] if rate else []) + [text_eval(source=t) for t in d.targets]


def plan(d: Design) -> Plan:
    p = Plan()
    for h in hybrids(d):
        members = ends(d, h)
        for seed in d.seeds_of(h):
            for m in (h, *(members or ())):
                p.add(size_set(FULL), m, seed, _evals(d))
    return p


def _measures(d: Design, store: M.Store, m: str, seeds: list[int]) -> dict | None:
    """``{measure label: Stat}`` of one model on ``seeds`` (None without its full-split cells)."""
    cell = f"{FULL}/{m}"
    if not store.has(cell, seeds, "test"):
        return None
    y = store.labels(cell, seeds[0], "test")
    res = M.Resampler(len(y), len(seeds), d.grid.bootstrap)
    measures = M.curve_measures(store.labels(cell, seeds[0], "validation"), store.probs(cell, seeds, "validation"))
    clean = M.measure(res, y, store.probs(cell, seeds, "test"), measures)
    out = {"in-domain ROC-AUC": clean["roc_auc"], "in-domain F1": clean["f1"], "draws": res.draws}
    rate = dropout_rate(d)
    name = text_eval(("dropout", rate)).name if rate else None
    if name and store.has(cell, seeds, name):
        shifted = M.measure(res, y, store.probs(cell, seeds, name), measures)
        out[f"ROC-AUC drop at {rate:g} word dropout"] = drop(clean, shifted)["roc_auc"]
    for t in d.targets:
        if store.has(cell, seeds, f"on-{t}"):
            yt = store.labels(cell, seeds[0], f"on-{t}")
            rt = M.Resampler(len(yt), len(seeds), d.grid.bootstrap)
            cross = M.measure(rt, yt, store.probs(cell, seeds, f"on-{t}"), measures)
            out[f"ROC-AUC drop on {t}"] = drop(clean, cross)["roc_auc"]
    return out


DIRECTION = {"in-domain ROC-AUC": "higher", "in-domain F1": "higher"}  # drops: lower is better


def hybrid_findings(d: Design, store: M.Store, h: str) -> list[dict]:
    """The hybrid against the better end on every measure both have."""
    members = ends(d, h)
    if members is None:
        return []
    seeds = d.seeds_of(h)
    got = {m: _measures(d, store, m, seeds) for m in (h, *members)}
    if any(v is None for v in got.values()):
        return []
    found = []
    for label in got[h]:
        if label == "draws" or any(label not in got[m] for m in members):
            continue
        direction = DIRECTION.get(label, "lower")
        gen, disc = (got[m][label].summary(got[m]["draws"])["mean"] for m in members)
        better = members[0] if (gen > disc) == (direction == "higher") else members[1]
        found.append(
            M.finding(
                f"{h} vs the better end ({members[0]} | {members[1]})",
                h,
                better,
                (got[h][label], got[better][label]),
                got[h]["draws"],
                metric="roc_auc" if "ROC-AUC" in label else "f1",
                statistic=label,
                direction=direction,
                quantity=label,
                metric_label=label,
                condition=label,
            )
        )
    return found


def _table(d: Design, findings: list[dict]) -> dict:
    rows = []
    for h in hybrids(d):
        own = [f for f in findings if f["favoured"] == h]
        members = ends(d, h)
        if not own:
            why = "no ends in this config" if members is None else "not fitted in this run"
            rows.append([h, "n/a", why, ""])
            continue
        worse = [f["condition"] for f in own if f["verdict"] == NOT_HELD]
        rows.append([h, " | ".join(members), f"{len(own) - len(worse)} of {len(own)}", "; ".join(worse) or "none"])
    return {
        "title": "Each hybrid against the better end on every measure",
        "headers": ["hybrid", "ends (generative | discriminative)", f"measures not '{NOT_HELD}'", f"'{NOT_HELD}' on"],
        "rows": rows,
    }


def _figure(d: Design, store: M.Store) -> dict:
    """In-domain ROC-AUC of every model of a continuum or ensemble, with the ends."""
    names = list(dict.fromkeys(m for h in hybrids(d) for m in (h, *(ends(d, h) or ()))))
    points = []
    for i, m in enumerate(names):
        got = _measures(d, store, m, d.seeds_of(m))
        if got is not None:
            points.append(M.series(m, [i], [got["in-domain ROC-AUC"].summary(got["draws"])], style="o"))
    panel = {
        "title": "in-domain ROC-AUC",
        "xlabel": "model (hybrids and their ends)",
        "ylabel": "ROC-AUC",
        "series": points,
    }
    return {"name": "hybrids", "title": "Hybrids and their ends: in-domain ROC-AUC (95% interval)", "panels": [panel]}


def analyse(d: Design, store: M.Store) -> dict:
    findings = [f for h in hybrids(d) for f in hybrid_findings(d, store, h)]
    notes = [] if hybrids(d) else ["the config has no hybrid (a continuum point with both terms, or a stack)"]
    notes.append(
        "Label fidelity of samples is not measured here: it needs samples from every continuum point "
        "(the augmentation experiment samples from its generator only)."
    )
    return {
        "experiment": NAME,
        "title": TITLE,
        "claim": CLAIM,
        "metric": "roc_auc",
        "verdict": verdict(findings, []),
        "findings": findings,
        "key_numbers": "; ".join(
            f"{f['favoured']} vs {f['other']} on {f['condition']}: {M.text(f['advantage'])}" for f in findings
        )
        or "no hybrid with both ends fitted",
        "tables": [_table(d, findings), M.findings_table(findings)],
        "figures": [_figure(d, store)],
        "notes": notes,
        "method": "Each hybrid is compared with the better of its two ends (by the point estimate) on in-domain "
        "ROC-AUC and F1, the ROC-AUC drop on each cross-domain target and the ROC-AUC drop at the word-dropout "
        "rate; a positive advantage means the hybrid is better (higher score, smaller drop). Every model of "
        "one comparison is measured on the hybrid's seeds with the same bootstrap resamples.",
    }
