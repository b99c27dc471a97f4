"""The cross-corpus matrix of a run on several corpora: train on corpus A, test on corpus B.

For every matched pair and every ordered pair of corpora (A, B), each member fitted on A's full
train split is measured on B's test split (the diagonal: on A's own test split, in-domain). The
drop of A -> B is the in-domain score minus the score on B (the robustness experiment's
cross-domain drop, :func:`~nlpgd.experiments.claims.robustness.trained_elsewhere`), and the
robustness claim's finding compares the members' drops: it held when the discriminative member
drops more. Pure: the corpora's saved predictions in, numbers, findings, tables and heat-map
data out (drawn by :mod:`nlpgd.report.corpora`).
"""

from __future__ import annotations

from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL
from nlpgd.experiments.claims.robustness import CLAIM, trained_elsewhere
from nlpgd.experiments.claims.runner import Design

METHOD = (
    "Each member of a pair, fitted on corpus A's full train split (the fits the claims share), is scored on its "
    "own test split (the diagonal) and on the test split of every other corpus B. The drop from A to B is the "
    "in-domain score minus the score on B (larger = more brittle); the two test sets are resampled "
    "independently, the members of a pair with the same resamples. A positive advantage means the generative "
    "member dropped less. A model near chance in-domain has little to drop: read each drop beside the scores "
    "(the heat map's first two panels). " + M.INTERVALS
)


def _member(parts: dict[str, tuple[Design, M.Store]], a: str, m: str, metric: str) -> dict[str, tuple]:
    """``{b: (score on b, drop or None)}`` of model ``m`` fitted on corpus ``a`` (the drop is
    None on the diagonal); empty when its fits are missing."""
    from nlpgd.experiments.claims.corpora import corpus_key

    d, store = parts[a]
    cell, seeds = f"{FULL}/{m}", d.seeds_of(m)
    out: dict[str, tuple] = {}
    for b in parts:
        if b == a:
            continue
        found = trained_elsewhere(d, store, cell, seeds, f"on-{corpus_key(b)}")
        if found is not None:
            own, away, drop = found
            out[a] = (own[metric], None)
            out[b] = (away[metric], drop[metric])
    return out


def _pair(parts: dict[str, tuple[Design, M.Store]], pair, metric: str) -> dict:
    """One pair's matrix: each member's scores (mean and interval per trained-on × tested-on)
    and a finding per off-diagonal cell."""
    names = list(parts)
    scores = {m: {a: _member(parts, a, m, metric) for a in names} for m in pair.members}
    findings = []
    for a in names:
        g, c = scores[pair.generative][a], scores[pair.discriminative][a]
        for b in names:
            if b == a or b not in g or b not in c:
                continue
            findings.append(
                M.drop_finding(
                    parts[a][0].grid,
                    pair,
                    (g[b][1], c[b][1]),
                    metric=metric,
                    condition=f"{a} to {b}",
                    statistic=f"{M.label(metric)} drop, trained on {a}, tested on {b}",
                )
            )
    summaries = {
        m: [[v[b][0].summary() if b in v else None for b in names] for v in by_a.values()] for m, by_a in scores.items()
    }
    by_condition = {f["condition"]: f["advantage"]["mean"] for f in findings}
    advantage = [[by_condition.get(f"{a} to {b}") for b in names] for a in names]
    return {**pair.as_dict(), "scores": summaries, "advantage": advantage, "findings": findings}


def analyse(parts: dict[str, tuple[Design, M.Store]]) -> dict:
    """The matrix of every pair over the corpora (``{name: (design, store)}``, in the config's
    order): ``{"corpora", "metric", "metric_label", "claim", "method", "pairs": [...]}``."""
    first = next(iter(parts.values()))[0]
    metric = first.grid.robustness.metric
    return {
        "corpora": list(parts),
        "metric": metric,
        "metric_label": M.label(metric),
        "claim": CLAIM,
        "method": METHOD,
        "pairs": [_pair(parts, pair, metric) for pair in first.pairs] if len(parts) > 1 else [],
    }


def tables(found: dict) -> list[dict]:
    """Per pair: each member's scores (trained on × tested on) and the drops with the finding."""
    from nlpgd.report.verdict import effect

    names, label, out = found["corpora"], found["metric_label"], []
    for p in found["pairs"]:
        rows = [
            [m, a, *(M.text(s) for s in row)]
            for m in (p["generative"], p["discriminative"])
            for a, row in zip(names, p["scores"][m])
        ]
        out.append(
            {
                "title": f"{p['label']}: {label} trained on one corpus (rows), tested on each (columns)",
                "headers": ["model", "trained on", *(f"tested on {b}" for b in names)],
                "rows": rows,
            }
        )
        drops = [
            [f["condition"], M.text(f["favoured_value"]), M.text(f["other_value"]), effect(f), f["verdict"]]
            for f in p["findings"]
        ]
        out.append(
            {
                "title": f"{p['label']}: drop in {label} from in-domain to the other corpus (larger = more brittle)",
                "headers": [
                    "trained on to tested on",
                    f"{p['generative']}: drop",
                    f"{p['discriminative']}: drop",
                    f"advantage of {p['generative']}",
                    "verdict",
                ],
                "rows": drops,
            }
        )
    return out
