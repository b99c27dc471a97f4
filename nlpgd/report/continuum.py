"""The report's parts beyond one model: what generating models sample, the points of the
generative-discriminative continuum, and each stack against its best member."""

from __future__ import annotations

import numpy as np

from nlpgd import stats
from nlpgd.generation import JUDGE, OVERLAP_N, SELF
from nlpgd.report.load import RunPredictions
from nlpgd.report.over_seeds import summarise
from nlpgd.report.verdict import judge

WEIGHTS = ("generative_weight", "discriminative_weight")
CONTINUUM_METRICS = ("f1", "log_loss", "ece")
GENERATION_METRICS = ("distinct_1", "distinct_2", "copy_share", f"overlap_{OVERLAP_N}gram_share")


def generation_summary(rp: RunPredictions) -> dict:
    """Per model that sampled (``generation:`` in the config): label fidelity under the judge
    (naive Bayes on the real train split) and under the generator itself, diversity and
    copies, each as a summary over seeds."""
    out = {}
    for m in rp.models:
        reports = [rp.generation.get(m, {}).get(s) for s in rp.seeds]
        if not any(reports):
            continue
        fidelity = [(r or {}).get("label_fidelity") or {} for r in reports]
        first = next(r for r in reports if r)
        out[m] = {
            "label": first.get("label"),
            "n_samples": summarise([(r or {}).get("n_samples") for r in reports], rp.seeds),
            "judge_fidelity": summarise([f.get(JUDGE) for f in fidelity], rp.seeds),
            "self_fidelity": summarise([f.get(SELF) for f in fidelity], rp.seeds),
            **{k: summarise([(r or {}).get(k) for r in reports], rp.seeds) for k in GENERATION_METRICS},
        }
    return out


def _weights(params: dict) -> tuple[float, float] | None:
    vals = [params.get(k) for k in WEIGHTS]
    if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
        return float(vals[0]), float(vals[1])
    return None


def continuum(rp: RunPredictions, models: dict, generation: dict) -> dict | None:
    """The models trained with a blend of the generative and discriminative objectives, in
    order of the discriminative share ``dw / (gw + dw)`` of the loss (0: the pure language
    model, 1: the posterior alone); None unless at least two of them differ in the weights."""
    points = []
    for m in rp.models:
        weights = _weights(rp.model_params.get(m, {}))
        if weights is None or sum(weights) <= 0:
            continue
        gen = generation.get(m, {})
        points.append(
            {
                "model": m,
                "generative_weight": weights[0],
                "discriminative_weight": weights[1],
                "share": weights[1] / sum(weights),
                **{k: models[m]["metrics"][k] for k in CONTINUUM_METRICS},
                "label_fidelity": gen.get("judge_fidelity"),
                "distinct_2": gen.get("distinct_2"),
            }
        )
    if len({(p["generative_weight"], p["discriminative_weight"]) for p in points}) < 2:
        return None
    points.sort(key=lambda p: (p["share"], p["discriminative_weight"]))
    settings = [{k: v for k, v in rp.model_params[p["model"]].items() if k not in WEIGHTS} for p in points]
    other = sorted({k for s in settings for k in s if any(t.get(k) != s.get(k) for t in settings)})
    return {"points": points, "other_differences": other, "label": next(iter(generation.values()), {}).get("label")}


def stack_margin(rp: RunPredictions) -> float:
    """The F1 equivalence margin of the run's config (``experiment.margins.f1``), else the default."""
    from nlpgd.config_grids import MarginGrid

    given = rp.margins.get("f1")
    return float(given) if isinstance(given, (int, float)) and given > 0 else MarginGrid().f1


def validation_f1(rp: RunPredictions, m: str) -> float:
    """Model ``m``'s F1 on the validation split at P(spam) 0.5, averaged over seeds."""
    yv = rp.labels["validation"]
    ones = np.ones((1, len(yv)))
    return float(np.mean([stats.resample_metrics(ones, yv, z, ("f1",))["f1"][0] for z in rp.log_odds["validation"][m]]))


def stack_verdicts(rp: RunPredictions, models: dict, dists: dict, level: float) -> list[dict]:
    """For each stack (a model whose settings list ``members``): its test F1 against the best
    single arm of the run (the highest mean validation F1 among the models that are not stacks:
    chosen on validation, so that test does not favour it), with the paired bootstrap interval
    of the difference on test, and the verdict on "the stack beats the best single arm" from
    :func:`nlpgd.report.verdict.judge` with the F1 margin."""
    stacks = [m for m in rp.models if "members" in rp.model_params.get(m, {})]
    singles = [m for m in rp.models if m not in stacks and models[m]["metrics"]["f1"]["mean"] is not None]
    chosen_by = {m: validation_f1(rp, m) for m in singles}
    margin = stack_margin(rp)
    out = []
    for s in stacks if singles else []:
        best = max(singles, key=chosen_by.__getitem__)  # ties: the first in the run's order
        mean = models[s]["metrics"]["f1"]["mean"]
        delta = None if mean is None else mean - models[best]["metrics"]["f1"]["mean"]
        lo, hi = stats.percentile_ci(dists[s]["raw"]["f1"] - dists[best]["raw"]["f1"], level)
        out.append(
            {
                "stack": s,
                "members": list(rp.model_params[s]["members"]),
                "best_single": best,
                "best_single_validation_f1": chosen_by[best],
                "stack_f1": models[s]["metrics"]["f1"],
                "best_single_f1": models[best]["metrics"]["f1"],
                "f1_difference": {"mean": delta, "ci_low": lo, "ci_high": hi, "level": level},
                "margin": margin,
                "verdict": judge(None if delta is None else lo, hi, margin),  # no F1: inconclusive
            }
        )
    return out
