"""What differs between the members of each pair: the "what differs" table of the claims page.

A pair is meant to differ in the family alone; whatever else differs (the architecture of the
scratch pair, a tokenizer, a schedule) is listed row by row, with the members' values side by
side and whether they are the same, so a reader sees what each verdict may also be measuring.
Rows: parameters, tokenizer or features, training data, epochs, schedule, oversampling, init,
selection rule, tuning budget (what is chosen on validation) and training seconds. Everything
but the fitted facts (parameters, seconds, messages) comes from the models' own declarations
(:meth:`~nlpgd.models.base.Classifier.training_summary`, ``input_settings``,
``training_data_settings``), never from a type name.
"""

from __future__ import annotations

import numpy as np

from nlpgd.experiments.claims.measure import Store
from nlpgd.experiments.claims.plan import FULL, Pair, describe

HEADERS = ["pair", "what", "generative member", "discriminative member", "same"]
SUMMARY_ROWS = ("epochs", "schedule", "oversampling", "init", "selection rule", "tuning budget")
#: why a row may differ by design, shown in the table (keyed by pair kind and row)
WHY = {
    ("linear", "parameters"): "naive Bayes keeps a count per class and word, logistic regression a weight per word",
    ("continuum", "selection rule"): "each member selects on its own training objective",
    ("scratch", "parameters"): "two architectures sized alike (within 20%)",
    ("scratch", "tokenizer / features"): "each architecture's own tokenizer, learned on the same train split",
    ("scratch", "init"): "each architecture's default init at this width",
    ("scratch", "selection rule"): "each member selects on its own training objective",
    ("pretrained", "parameters"): "two pretrained checkpoints",
    ("pretrained", "tokenizer / features"): "each checkpoint's own tokenizer",
    ("pretrained", "init"): "two pretrained checkpoints",
    ("pretrained", "selection rule"): "each member selects on its own training objective",
}


def _fitted(store: Store, cell: str, seeds: list[int], key: str) -> float | None:
    found = [store.cost(cell, s).get(key) for s in seeds]
    found = [float(v) for v in found if v is not None]
    return float(np.mean(found)) if found else None


def _settings(d: dict) -> str:
    keys = sorted(d, key=lambda k: (k != "tokenizer", k))  # the same order for every member
    return ", ".join(f"{k} {d[k]}" for k in keys) or "default"


def _num(v: float | None, fmt: str) -> str:
    return "n/a" if v is None else format(v, fmt)


def member_rows(cfg, store: Store, model: str, seeds: list[int]) -> dict[str, str]:
    """Every row of the table for one model: declared settings and what its full-size fits recorded."""
    m = describe(cfg.models[model])
    cell = f"{FULL}/{model}"
    data = m.training_data_settings()
    messages = _fitted(store, cell, seeds, "train_messages")
    rows = {
        "parameters": _num(_fitted(store, cell, seeds, "n_parameters"), ",.0f"),
        "tokenizer / features": _settings(m.input_settings()),
        "training data": f"{_num(messages, ',.0f')} messages"
        + (f" ({_settings(data)})" if any(v is not None for v in data.values()) else ""),
    }
    summary = m.training_summary()
    rows.update({k: summary.get(k, "n/a") for k in SUMMARY_ROWS})
    rows["training seconds"] = _num(_fitted(store, cell, seeds, "train_seconds"), ".1f")
    return rows


def pair_rows(cfg, store: Store, pair: Pair, seeds: list[int]) -> list[list[str]]:
    g, c = member_rows(cfg, store, pair.generative, seeds), member_rows(cfg, store, pair.discriminative, seeds)
    out = []
    for what in g:
        same = g[what] == c[what]
        note = "yes" if same else "no" + (f": {WHY[(pair.kind, what)]}" if (pair.kind, what) in WHY else "")
        if what == "training seconds":
            note = "n/a (what each fit took)"
        out.append([pair.label, what, g[what], c[what], note])
    return out


def differs_table(cfg, store: Store, pairs: list[Pair], seeds: list[int]) -> dict:
    """The "what differs" table of every pair (fitted facts from the full-size cells)."""
    rows = [r for p in pairs for r in pair_rows(cfg, store, p, seeds)]
    return {
        "title": "What differs within each pair (besides the family)",
        "headers": HEADERS,
        "rows": rows,
    }
