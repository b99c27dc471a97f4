"""Hybrids: does combining the two families bring the strengths of both?

Every model whose family is ``hybrid`` (the GPT-2 continuum points with both a generative and
a discriminative term, and a stack) is set against the two ends it combines: for a continuum
point, the continuum pair (the same network with the generative term alone and with the
discriminative term alone); for an ensemble, its generative and its discriminative member.
On each measure the hybrid is compared with the *better* end there (by the point estimates):
in-domain ROC-AUC and F1, the ROC-AUC drop on every cross-domain target, the ROC-AUC drop at
a word-dropout rate, and, for models that can generate, the label fidelity of their samples:
``experiment.hybrids.samples`` messages of each class sampled with the augmentation grid's
settings, and the share that naive Bayes fitted on the same training data calls the class they
were asked for (its bootstrap resamples the samples). Each comparison is a finding whose
verdict comes from the one verdict function; the table lists, per hybrid, whether any of its
comparisons did not hold. All members of one comparison are measured on the hybrid's seeds
(the reference seeds), so the intervals pair the same training runs.
"""

from __future__ import annotations

import numpy as np

from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims import measure as M
from nlpgd.experiments.claims.plan import FULL, Eval, Plan, describe, size_set, text_eval
from nlpgd.experiments.claims.result import ExperimentResult
from nlpgd.experiments.claims.robustness import drop
from nlpgd.experiments.claims.runner import EVAL_RUNNERS, Design, Session, prefix_name, training_data
from nlpgd.experiments.generate import Sampling
from nlpgd.models.registry import build_model
from nlpgd.params import NaiveBayesParams
from nlpgd.report.verdict import EQUIVALENT, HELD, NOT_HELD, verdict
from nlpgd.runs import write_predictions
from nlpgd.sampling import SamplingSettings
from nlpgd.scoring import score_texts

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


FIDELITY = "fidelity"


def _evals(d: Design, m: str) -> list:
    rate = dropout_rate(d)
    out = ([text_eval(("dropout", rate))] if rate else []) + [text_eval(source=t) for t in d.targets]
    if d.grid.hybrids.samples and describe(d.cfg.models[m]).can("can_generate"):
        out.append(Eval(FIDELITY, FIDELITY, transform=(d.grid.hybrids.samples,)))
    return out


def _fidelity_eval(s: Session, cell, model, ev) -> None:
    """``n`` samples of each class from the model, scored by naive Bayes fitted on the cell's
    training data: written as ``predictions/<cell>/seed<k>.fidelity.csv`` (the label asked for,
    the judge's P(spam)), so label fidelity is the judge's accuracy on them."""
    texts, labels = training_data(s, cell.trainset, cell.seed)
    judge = build_model(NaiveBayesParams()).fit(texts, labels)
    options = Sampling(SamplingSettings.of(s.design.grid.augmentation), progress=s.progress).for_model(model, cell.key)
    samples, asked = [], []
    for label in ("ham", "spam"):
        got = model.generate(label, int(ev.transform[0]), seed=cell.seed, **options)[: int(ev.transform[0])]
        samples += got
        asked += [int(label == "spam")] * len(got)
    if not samples:
        raise NlpgdError(f"{cell.key} produced no samples, so the label fidelity of its samples cannot be measured")
    scores = score_texts(judge, samples)
    ids = [f"sample{i}" for i in range(len(samples))]
    write_predictions(
        s.run.predictions_path(cell.name, cell.seed, FIDELITY), ids, np.array(asked), scores.log_odds, scores.log_lik
    )


EVAL_RUNNERS[FIDELITY] = _fidelity_eval


def plan(d: Design) -> Plan:
    p = Plan()
    for h in hybrids(d):
        members = ends(d, h)
        for seed in d.seeds_of(h):
            for m in (h, *(members or ())):
                p.add(size_set(FULL), m, seed, _evals(d, m))
    return p


def _measures(d: Design, store: M.Store, m: str, seeds: list[int]) -> dict | None:
    """``{measure label: Stat}`` of one model on ``seeds`` (None without its full-split cells)."""
    cell = f"{FULL}/{m}"
    if not store.has(cell, seeds, "test"):
        return None
    y = store.labels(cell, seeds[0], "test")
    res = M.Resampler(len(y), len(seeds), d.grid.bootstrap)
    measures = M.curve_measures(store.labels(cell, seeds[0], "validation"), store.log_odds(cell, seeds, "validation"))
    clean = M.measure(res, y, store.log_odds(cell, seeds, "test"), measures)
    out = {"in-domain ROC-AUC": clean["roc_auc"], "in-domain F1": clean["f1"], "draws": res.draws}
    rate = dropout_rate(d)
    name = text_eval(("dropout", rate)).name if rate else None
    if name and store.has(cell, seeds, prefix_name(name)):  # the missing-words verdict's variant
        name = prefix_name(name)
    if name and store.has(cell, seeds, name):
        shifted = M.measure(res, y, store.log_odds(cell, seeds, name), measures)
        out[f"ROC-AUC drop at {rate:g} word dropout"] = drop(clean, shifted)["roc_auc"]
    if store.has(cell, seeds, FIDELITY):
        out[FIDELITY_LABEL] = fidelity(d, store, cell, seeds)
    for t in d.targets:
        if store.has(cell, seeds, f"on-{t}"):
            yt = store.labels(cell, seeds[0], f"on-{t}")
            rt = M.Resampler(len(yt), len(seeds), d.grid.bootstrap)
            cross = M.measure(rt, yt, store.log_odds(cell, seeds, f"on-{t}"), measures)
            out[f"ROC-AUC drop on {t}"] = drop(clean, cross)["roc_auc"]
    return out


FIDELITY_LABEL = "label fidelity of samples"
DIRECTION = {"in-domain ROC-AUC": "higher", "in-domain F1": "higher", FIDELITY_LABEL: "higher"}  # drops: lower


def fidelity(d: Design, store: M.Store, cell: str, seeds: list[int]) -> M.Stat:
    """The judge's accuracy on the samples (each seed's own samples, cut to the fewest any
    seed has, so the bootstrap resamples samples alike)."""
    preds = [store.preds(cell, s, FIDELITY) for s in seeds]
    n = min(len(p["label"]) for p in preds)
    res = M.Resampler(n, len(seeds), d.grid.bootstrap)
    ys, ps = [p["label"][:n] for p in preds], [p["log_odds"][:n] for p in preds]
    return M.measure(res, ys, ps, [M.Measure("accuracy", "accuracy")])["accuracy"]


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
        metric = "accuracy" if label == FIDELITY_LABEL else "roc_auc" if "ROC-AUC" in label else "f1"
        found.append(
            M.finding(
                f"{h} vs the better end ({members[0]} | {members[1]})",
                h,
                better,
                (got[h][label], got[better][label]),
                got[h]["draws"],
                metric=metric,
                statistic=label,
                margin=M.margin(d.grid, metric),
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
        good = [f for f in own if f["verdict"] in (HELD, EQUIVALENT)]
        worse = [f["condition"] for f in own if f["verdict"] == NOT_HELD]
        rows.append([h, " | ".join(members), f"{len(good)} of {len(own)}", "; ".join(worse) or "none"])
    return {
        "title": "Each hybrid against the better end on every measure",
        "headers": [
            "hybrid",
            "ends (generative | discriminative)",
            f"measures at least as good ('{HELD}' or '{EQUIVALENT}')",
            f"'{NOT_HELD}' on",
        ],
        "rows": rows,
    }


def answer(d: Design, findings: list[dict]) -> str | None:
    """The claim's question in one sentence: is some hybrid at least as good as the better end
    on every measure (each of its findings held or equivalent)? None when nothing was compared."""
    compared = [h for h in hybrids(d) if any(f["favoured"] == h for f in findings)]
    if not compared:
        return None
    every = [h for h in compared if all(f["verdict"] in (HELD, EQUIVALENT) for f in findings if f["favoured"] == h)]
    if every:
        return f"At least as good as the better end on every measure (held or equivalent on each): {', '.join(every)}."
    return (
        "No hybrid is shown at least as good as the better end on every measure: each has a measure that did not "
        "hold or is inconclusive."
    )


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


def _notes(d: Design) -> list[str]:
    notes = [] if hybrids(d) else ["the config has no hybrid (a continuum point with both terms, or a stack)"]
    endless = [h for h in hybrids(d) if ends(d, h) is None]
    if endless and len(endless) == len(hybrids(d)):
        notes.append(
            f"no hybrid has both ends in this config ({', '.join(endless)}): a stack needs a generative and a "
            "discriminative member, a continuum point the pure generative and the pure discriminative GPT-2"
        )
    if not d.grid.hybrids.samples:
        notes.append("Label fidelity of samples is not measured (experiment.hybrids.samples is 0).")
    return notes


def analyse(d: Design, store: M.Store) -> ExperimentResult:
    findings = [f for h in hybrids(d) for f in hybrid_findings(d, store, h)]
    said = answer(d, findings)
    return ExperimentResult(
        experiment=NAME,
        title=TITLE,
        claim=CLAIM,
        metric="roc_auc",
        verdict=verdict(findings, [], [said] if said else []),
        findings=findings,
        key_numbers="; ".join(
            f"{f['favoured']} vs {f['other']} on {f['condition']}: {M.text(f['advantage'])}" for f in findings
        )
        or "no hybrid with both ends fitted",
        tables=[_table(d, findings), M.findings_table(findings)],
        figures=[_figure(d, store)],
        notes=_notes(d),
        method="Each hybrid is compared with the better of its two ends (by the point estimate) on in-domain "
        "ROC-AUC and F1, the ROC-AUC drop on each cross-domain target and the ROC-AUC drop at the word-dropout "
        "rate; a positive advantage means the hybrid is better (higher score, smaller drop). Every model of "
        "one comparison is measured on the hybrid's seeds with the same bootstrap resamples.",
    )
