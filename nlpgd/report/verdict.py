"""Verdicts on claims, in words generated from the numbers (never typed by hand).

The vocabulary, for anyone adding an experiment, a pair or a metric:

- A *finding* (built by :func:`nlpgd.experiments.claims.measure.finding`) compares two models on
  one statistic: the favoured model's advantage (positive when the claim's direction holds), its
  95% interval, the metric's practical-equivalence ``margin`` and two p-values of that interval.
- :func:`judge` is the one place that chooses among the four verdicts, from the interval and the
  margin: ``equivalent`` when the whole interval lies inside ``± margin`` (a difference that
  small does not matter, even when it is real); otherwise ``held`` when it lies above 0, ``did
  not hold`` when it lies below 0, and ``inconclusive`` when it includes 0 (the data cannot tell).
- :func:`verdict`: a claim's verdict from its *primary* findings (one per pair and part of the
  claim, on the claim's metric): a one-line headline listing every pair's verdict (never a bare
  "mixed"), the paragraph with the numbers, where other metrics disagree, and a warning when it
  rests on fewer than 3 seeds.
- :func:`apply_holm`: the Holm correction across the primary findings of a page (family-wise
  5%); each finding records whether its verdict survives it.
- :func:`grid`: the pairs × conditions table of a claim's primary findings.

A finding is a plain dict (it goes to ``results.json``) with at least ``pair``, ``favoured``,
``other``, ``metric``, ``metric_label``, ``statistic``, ``condition`` (the part of the claim, or
None), ``better``, ``favoured_value``, ``other_value``, ``advantage`` (``{"mean", "lo", "hi",
"n_seeds", ...}``), ``margin``, ``p_difference``, ``p_equivalence`` and ``verdict``.
"""

from __future__ import annotations

import re

HELD, NOT_HELD, EQUIVALENT, INCONCLUSIVE = "held", "did not hold", "equivalent", "inconclusive"
VERDICTS = (HELD, NOT_HELD, EQUIVALENT, INCONCLUSIVE)
DECIDED = (HELD, NOT_HELD, EQUIVALENT)
FEW_SEEDS = 3  # a verdict on fewer seeds carries a warning
FAMILY_ALPHA = 0.05


def judge(lo: float | None, hi: float | None, margin: float) -> str:
    """The verdict a 95% interval ``[lo, hi]`` of an advantage supports, with the metric's
    practical-equivalence ``margin`` (> 0): the only function that chooses a verdict."""
    if not margin > 0:
        raise ValueError(f"an equivalence margin must be positive, got {margin}")
    if lo is None or hi is None:
        return INCONCLUSIVE
    if -margin < lo and hi < margin:
        return EQUIVALENT
    if lo > 0:
        return HELD
    if hi < 0:
        return NOT_HELD
    return INCONCLUSIVE


def num(v, digits: int = 4) -> str:
    if v is None:
        return "n/a"
    if v != 0 and abs(v) < 10 ** -(digits - 1):
        return f"{v:.2g}"
    return f"{v:.{digits}f}"


def interval(summary: dict, digits: int = 4) -> str:
    """``[lo, hi]``, and ``(cut at the range)`` when an end was cut to what the quantity can take
    (:func:`nlpgd.intervals.within`)."""
    cut = " (cut at the range)" if summary.get("cut") else ""
    return f"[{num(summary['lo'], digits)}, {num(summary['hi'], digits)}]{cut}"


def signed(v, digits: int = 4) -> str:
    return "n/a" if v is None else ("+" if v >= 0 else "") + num(v, digits)


def effect(f: dict, digits: int = 4) -> str:
    """``+0.0123 [0.0040, 0.0205]``: the favoured member's advantage and its interval."""
    return f"{signed(f['advantage']['mean'], digits)} {interval(f['advantage'], digits)}"


def finding_sentence(f: dict) -> str:
    """One finding in words: the statistic, both values, the advantage with its interval, and
    the verdict it supports."""
    way = "higher" if f["better"] == "higher" else "lower"
    return (
        f"{f['pair']}: {f['statistic']}, {f['favoured']} {num(f['favoured_value']['mean'])} vs "
        f"{f['other']} {num(f['other_value']['mean'])} ({way} is better); {f['favoured']}'s advantage "
        f"{effect(f)}, {_outcome(f)}."
    )


def _outcome(f: dict) -> str:
    m = num(f["margin"])
    return {
        EQUIVALENT: f"inside ± {m}, so the two are equivalent in practice",
        INCONCLUSIVE: f"so it is inconclusive (the interval includes 0 and reaches beyond ± {m})",
    }.get(f["verdict"], f"so the claim {f['verdict']}")


_SHORT = {HELD: "held", NOT_HELD: "did not hold", EQUIVALENT: "was equivalent", INCONCLUSIVE: "was inconclusive"}


def _grouped(findings: list[dict]) -> str:
    by: dict[str, list[str]] = {}
    for f in findings:
        by.setdefault(f["verdict"], []).append(f"{f['metric_label']} ({num(f['advantage']['mean'])})")
    return "; ".join(f"{_SHORT[v]} on {', '.join(ms)}" for v, ms in by.items())


def disagreements(primary: list[dict], others: list[dict]) -> list[str]:
    """For each primary finding, the other metrics' findings on the same pair and condition
    that reach another verdict, in one sentence per pair and condition."""
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
                + f": on {f['metric_label']} it {_SHORT[f['verdict']]}, "
                f"while it {_grouped(differ)} (advantage of {f['favoured']} in brackets)."
            )
    return out


# -- a claim's verdict --------------------------------------------------------------------


def short_pair(label: str) -> str:
    """``linear pair (same word counts): naive_bayes vs logreg`` -> ``linear pair``."""
    head = label.split(":", 1)[0].strip() if ":" in label else label
    return re.sub(r"\s*\([^)]*\)$", "", head) or label


def _named(label: str) -> str:
    name = short_pair(label)
    return f"the {name}" if re.search(r"\bpair\b", name) and not name.startswith("the ") else name


def column(f: dict) -> str:
    """The part of the claim a finding belongs to (its condition, else its statistic)."""
    return f.get("condition") or f["statistic"]


def by_pair(primary: list[dict]) -> dict[str, dict[str, str]]:
    """``{pair: {condition: verdict}}`` in the order the findings come."""
    out: dict[str, dict[str, str]] = {}
    for f in primary:
        out.setdefault(f["pair"], {})[column(f)] = f["verdict"]
    return out


def headline(primary: list[dict]) -> str:
    """One line listing each pair's verdict: ``held for the linear pair; inconclusive for the
    scratch pair``, and a pair whose conditions differ part by part."""
    if not primary:
        return "inconclusive: there is no matched pair to compare"
    parts = []
    for pair, conds in by_pair(primary).items():
        words = list(dict.fromkeys(conds.values()))
        if len(words) == 1:
            parts.append(f"{words[0]} for {_named(pair)}")
            continue
        split = [f"{w} on {' and '.join(c for c, v in conds.items() if v == w)}" for w in words]
        parts.append(f"for {_named(pair)}: {', '.join(split)}")
    return "; ".join(parts)


def seed_warning(primary: list[dict]) -> str | None:
    """One sentence when a verdict rests on fewer than :data:`FEW_SEEDS` seeds."""
    counts = [f["advantage"].get("n_seeds") for f in primary if f["advantage"].get("n_seeds") is not None]
    if not counts or min(counts) >= FEW_SEEDS:
        return None
    n = min(counts)
    return (
        f"Warning: this verdict rests on {n} seed{'s' if n != 1 else ''}, too few to say how much training "
        "varies, so its interval is wide and one unusual run can move it (the claims configs use 5)."
    )


def verdict(primary: list[dict], others: list[dict] | None = None, notes: list[str] | None = None) -> dict:
    """The claim's verdict from its ``primary`` findings (one per pair and part of the claim):
    ``headline`` (also ``label``), ``by_pair``, the ``metric`` labels, the paragraph ``text``
    (each finding's numbers, where other metrics disagree, ``notes``), the ``disagreements`` and
    a ``warning`` when it rests on fewer than 3 seeds."""
    line = headline(primary)
    metrics = sorted({f["metric_label"] for f in primary})
    if not primary:
        text = "In detail: there is no matched pair to compare."
    else:
        text = f"In detail, on {' and '.join(metrics)}: " + " ".join(finding_sentence(f) for f in primary)
    extra = disagreements(primary, others or [])
    warning = seed_warning(primary)
    text = " ".join([text, *extra, *(notes or []), *([warning] if warning else [])])
    return {
        "label": line,
        "headline": line,
        "by_pair": by_pair(primary),
        "metric": metrics,
        "text": text,
        "disagreements": extra,
        "warning": warning,
    }


def primary_of(result: dict) -> list[dict]:
    """The findings an experiment's verdict rests on: those on its ``metric``."""
    return [f for f in result.get("findings", []) if f["metric"] == result["metric"]]


def grid(primary: list[dict]) -> tuple[list[str], list[tuple[str, list[dict | None]]]]:
    """The verdict table of a claim: its conditions (columns) and, per pair, the finding of
    each condition (None where there is none)."""
    columns = list(dict.fromkeys(column(f) for f in primary))
    rows: dict[str, list] = {}
    for f in primary:
        rows.setdefault(f["pair"], [None] * len(columns))[columns.index(column(f))] = f
    return columns, list(rows.items())


# -- multiple comparisons -----------------------------------------------------------------


def apply_holm(results: list[dict], alpha: float = FAMILY_ALPHA) -> dict:
    """The Holm correction across the primary findings of every result (a page).

    Each primary finding brings two hypotheses: *no difference* (rejected: held or did not
    hold) and *a difference of at least the margin* (rejected: equivalent), so the family has
    two per finding, whichever verdict the data gave. Each finding gets ``holm``: the adjusted
    p-values and whether its verdict ``survives`` (None for inconclusive). Returns a summary
    with the one-paragraph ``text`` the page prints."""
    from nlpgd import intervals

    found = [(r, f) for r in results for f in primary_of(r)]
    adjusted = intervals.holm([p for _, f in found for p in (f.get("p_difference"), f.get("p_equivalence"))])
    kept, lost = [], []
    for i, (r, f) in enumerate(found):
        pd, pe = adjusted[2 * i], adjusted[2 * i + 1]
        tested = pd if f["verdict"] in (HELD, NOT_HELD) else pe if f["verdict"] == EQUIVALENT else None
        survives = None if tested is None else bool(tested < alpha)
        f["holm"] = {"p_difference": pd, "p_equivalence": pe, "survives": survives}
        if survives is not None:
            name = f"{r['title']}, {short_pair(f['pair'])}" + (f" ({f['condition']})" if f.get("condition") else "")
            (kept if survives else lost).append(f"{name}: {f['verdict']}")
    m = sum(p is not None for p in adjusted)
    text = (
        f"Multiple comparisons: Holm correction across the {len(found)} primary findings of this page ({m} "
        f"hypotheses: no difference, and a difference beyond the margin, for each; family-wise {alpha:.0%}). "
        f"{len(kept)} of the {len(kept) + len(lost)} decided findings (held, did not hold, equivalent) survive it"
        + (f"; these do not (marked †): {'; '.join(lost)}." if lost else ".")
    )
    return {
        "alpha": alpha,
        "findings": len(found),
        "hypotheses": m,
        "survive": kept,
        "do_not_survive": lost,
        "text": text,
    }
