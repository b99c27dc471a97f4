"""Verdicts on claims, in words generated from the numbers (never typed by hand).

A *finding* (built by the experiments) compares two models on one statistic: the favoured
model's advantage (positive when the claim's direction holds) and its 95% interval. From it:

- :func:`judge`: ``held`` when the interval lies above 0, ``did not hold`` when it lies below,
  ``inconclusive`` when it includes 0 (the two models cannot be told apart);
- :func:`combine`: a claim's verdict from all its findings: unanimous, or ``mixed``;
- :func:`verdict`: the verdict and its paragraph: which metric it rests on, the numbers of each
  finding, and every pair whose other metrics disagree with it.
"""

from __future__ import annotations

HELD, NOT_HELD, MIXED, INCONCLUSIVE = "held", "did not hold", "mixed", "inconclusive"
VERDICTS = (HELD, NOT_HELD, MIXED, INCONCLUSIVE)


def judge(lo: float | None, hi: float | None) -> str:
    """The verdict a 95% interval of an advantage supports."""
    if lo is None or hi is None:
        return INCONCLUSIVE
    if lo > 0:
        return HELD
    if hi < 0:
        return NOT_HELD
    return INCONCLUSIVE


def combine(labels: list[str]) -> str:
    """One verdict from several: the common one when they all agree, else ``mixed``;
    ``inconclusive`` when there is nothing to judge."""
    if not labels:
        return INCONCLUSIVE
    return labels[0] if len(set(labels)) == 1 else MIXED


def num(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if v != 0 and abs(v) < 10 ** -(digits - 1):
        return f"{v:.2g}"
    return f"{v:.{digits}f}"


def interval(summary: dict, digits: int = 4) -> str:
    return f"[{num(summary['lo'], digits)}, {num(summary['hi'], digits)}]"


def finding_sentence(f: dict) -> str:
    """One finding in words: the statistic, both values, the advantage with its interval, and
    the verdict it supports."""
    adv = f["advantage"]
    sign = "" if adv["mean"] is None or adv["mean"] < 0 else "+"
    way = "higher" if f["better"] == "higher" else "lower"
    return (
        f"{f['pair']}: {f['statistic']}, {f['favoured']} {num(f['favoured_value']['mean'])} vs "
        f"{f['other']} {num(f['other_value']['mean'])} ({way} is better); {f['favoured']}'s advantage "
        f"{sign}{num(adv['mean'])} {interval(adv)}, {_outcome(f['verdict'])}."
    )


def _outcome(v: str) -> str:
    if v == INCONCLUSIVE:
        return "so it is inconclusive (the interval includes 0)"
    return f"so the claim {v}"


def _grouped(findings: list[dict]) -> str:
    by: dict[str, list[str]] = {}
    for f in findings:
        by.setdefault(f["verdict"], []).append(f"{f['metric_label']} ({num(f['advantage']['mean'])})")
    words = {HELD: "held on", NOT_HELD: "did not hold on", INCONCLUSIVE: "was inconclusive on"}
    return "; ".join(f"{words[v]} {', '.join(ms)}" for v, ms in by.items())


def _short(v: str) -> str:
    return {HELD: "held", NOT_HELD: "did not hold", INCONCLUSIVE: "was inconclusive"}[v]


def disagreements(primary: list[dict], others: list[dict]) -> list[str]:
    """For each primary finding, the other metrics' findings on the same pair and statistic
    that reach another verdict (when one of the two is decisive), in one sentence per pair."""
    out = []
    for f in primary:
        same = [
            o
            for o in others
            if o["pair"] == f["pair"] and o.get("condition") == f.get("condition") and o["metric"] != f["metric"]
        ]
        differ = [o for o in same if o["verdict"] != f["verdict"]]
        if differ:
            out.append(
                f"Metrics disagree for {f['pair']}"
                + (f" ({f['condition']})" if f.get("condition") else "")
                + f": on {f['metric_label']} it {_short(f['verdict'])}, "
                f"while it {_grouped(differ)} (advantage of {f['favoured']} in brackets)."
            )
    return out


def verdict(primary: list[dict], others: list[dict] | None = None, notes: list[str] | None = None) -> dict:
    """The claim's verdict from its ``primary`` findings (one per pair and part of the claim),
    and the paragraph saying it: the metric, each finding's numbers, where other metrics
    disagree, and ``notes`` (e.g. a pair that is not size-matched)."""
    label = combine([f["verdict"] for f in primary])
    metrics = sorted({f["metric_label"] for f in primary})
    if not primary:
        text = "Verdict: inconclusive: there is no matched pair to compare."
    else:
        text = f"Verdict: {label}, on {' and '.join(metrics)}. " + " ".join(finding_sentence(f) for f in primary)
    extra = disagreements(primary, others or [])
    text = " ".join([text, *extra, *(notes or [])])
    return {"label": label, "metric": metrics, "text": text, "disagreements": extra}
