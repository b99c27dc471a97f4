"""The model card (``README.md``) of a saved model folder, in the Hugging Face format.

A YAML header (``library_name``, ``tags``, ``datasets``, ``metrics``, and with test scores a
``model-index``) then Markdown: what the model is, the data it was trained on, its settings,
its metrics with 95% bootstrap intervals, and how to load it with nlpgd. ``save`` writes a
card from the model's self-description alone; ``compare`` and the experiments rewrite it
once the model is scored, with the data summary and the metrics.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml

from nlpgd.io import atomic_write_text
from nlpgd.metrics import METRIC_NAMES
from nlpgd.stats import N_RESAMPLES

CARD = "README.md"
CARD_METRICS = METRIC_NAMES  # a card shows every metric of nlpgd.metrics.compute_metrics, in its order
LOWER_IS_BETTER = ("log_loss", "brier", "ece")


def write_card(folder: Path, meta: dict, *, data: dict | None = None, metrics: dict | None = None) -> Path:
    """Write ``folder/README.md`` for the model described by ``meta`` (its ``nlpgd_model.json``).

    ``data`` is a run's data summary (``data.json``); ``metrics`` is ``{split: {metric: value or
    {"point", "ci_low", "ci_high"}}}``."""
    path = Path(folder) / CARD
    atomic_write_text(path, card_text(meta, data=data, metrics=metrics))
    return path


def card_text(meta: dict, *, data: dict | None = None, metrics: dict | None = None) -> str:
    header = yaml.safe_dump(_front_matter(meta, data, metrics), sort_keys=False, allow_unicode=True)
    sections = [
        f"# {meta['type']} spam classifier ({meta.get('family', 'discriminative')})",
        _summary(meta),
        "## Data\n\n" + _data(meta, data),
        "## Settings\n\n" + _settings(meta),
        "## Metrics\n\n" + _metrics(metrics),
        "## How to load it\n\n" + _loading(meta),
    ]
    return f"---\n{header}---\n\n" + "\n\n".join(sections) + "\n"


def _dataset_name(data: dict | None) -> str | None:
    if not data:
        return None
    where, source = data.get("where"), str(data.get("source") or "")
    if not isinstance(where, str) or source == "spamassassin":
        return source or None
    if source == "hub":  # "hub data set 'ucirvine/sms_spam'": the hub id
        return where.split("'")[1] if where.count("'") >= 2 else source
    return f"{source}:{Path(where).name}" if ", " not in where else source  # one file: its name


def _front_matter(meta: dict, data: dict | None, metrics: dict | None) -> dict[str, Any]:
    test = (metrics or {}).get("test") or {}
    names = [m for m in CARD_METRICS if _point(test.get(m)) is not None]
    out: dict[str, Any] = {
        "library_name": "nlpgd",
        "pipeline_tag": "text-classification",
        "tags": ["nlpgd", "text-classification", "spam-detection", str(meta["type"]), str(meta.get("family", ""))],
    }
    dataset = _dataset_name(data)
    if dataset:
        out["datasets"] = [dataset]
    out["metrics"] = names
    if names:
        out["model-index"] = [
            {
                "name": f"nlpgd-{meta['type']}",
                "results": [
                    {
                        "task": {"type": "text-classification", "name": "spam detection"},
                        "dataset": {"name": dataset or "unknown", "type": dataset or "unknown", "split": "test"},
                        "metrics": [{"type": m, "name": m, "value": round(float(_point(test[m])), 6)} for m in names],
                    }
                ],
            }
        ]
    return out


def _summary(meta: dict) -> str:
    classes = ", ".join(str(c) for c in meta.get("classes", []))
    kind = (
        "models P(text | class) and classifies by Bayes' rule"
        if meta.get("family") == "generative"
        else ("models P(class | text) directly")
    )
    n = meta.get("n_parameters")
    size = f" It has {n:,} learned parameters." if isinstance(n, int) else ""
    return (
        f"An nlpgd `{meta['type']}` classifier over the classes {classes}: "
        f"a {meta.get('family', 'discriminative')} model (it {kind}).{size}"
    )


def _data(meta: dict, data: dict | None) -> str:
    lines = [f"- trained on {meta.get('n_train', '?')} messages (seed {meta.get('seed', '?')})"]
    if meta.get("train_data_sha256"):
        lines.append(
            f"- training data hash (SHA-256 of texts and labels, first 16 hex digits): `{meta['train_data_sha256']}`"
        )
    if data:
        where = data.get("where")
        where = where if isinstance(where, str) else json.dumps(where)
        lines.append(f"- source: {data.get('source')} ({where})")
        for split, n in (data.get("sizes") or {}).items():
            counts = (data.get("class_counts") or {}).get(split, {})
            spread = ", ".join(f"{c} {k}" for c, k in sorted(counts.items()))
            lines.append(f"- {split}: {n} messages ({spread})")
    return "\n".join(lines)


def _settings(meta: dict) -> str:
    rows = ["| setting | value |", "| --- | --- |"]
    for key, value in sorted((meta.get("params") or {}).items()):
        text = json.dumps(value) if not isinstance(value, str) else value
        rows.append(f"| {key} | `{text.replace('|', '/')}` |")
    return "\n".join(rows)


def _point(value: Any) -> float | None:
    if isinstance(value, dict):
        value = value.get("point")
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _cell(value: Any) -> str:
    point = _point(value)
    if point is None:
        return "n/a"
    if isinstance(value, dict) and value.get("ci_low") is not None and value.get("ci_high") is not None:
        return f"{point:.4f} [{value['ci_low']:.4f}, {value['ci_high']:.4f}]"
    return f"{point:.4f}"


def _metrics(metrics: dict | None) -> str:
    if not metrics:
        return "Not scored yet: `nlpgd compare` writes the validation and test metrics here once it scores the model."
    splits = [s for s in ("test", "validation") if s in metrics]
    rows = [f"| metric | {' | '.join(splits)} |", "| --- |" + " --- |" * len(splits)]
    for m in CARD_METRICS:
        better = "lower is better" if m in LOWER_IS_BETTER else "higher is better"
        rows.append(f"| {m} ({better}) | " + " | ".join(_cell(metrics[s].get(m)) for s in splits) + " |")
    n = {s: metrics[s].get("n") for s in splits}
    note = (
        "Spam is the positive class; a message is spam when P(spam) > 0.5. Brackets: 95% percentile "
        f"intervals from a bootstrap over the test messages ({N_RESAMPLES} resamples)"
        + "".join(f"; {s}: {n[s]} messages" for s in splits if _point(n[s]) is not None)
        + "."
    )
    return "\n".join(rows) + "\n\n" + note


def _loading(meta: dict) -> str:
    return (
        "```python\n"
        "from nlpgd.models.registry import load_model\n\n"
        'model = load_model("path/to/this/folder")  # never runs code from the folder\n'
        'print(model.classes_, model.predict_proba(["WINNER! Claim your free prize now"]))\n'
        "```\n\n"
        'A run folder\'s models are also used by `nlpgd classify RUN_DIR "message"` and '
        "`nlpgd evaluate RUN_DIR --dataset SPEC`; loading needs the nlpgd package that saved it"
        + (" (with its `lora` extra: the folder holds LoRA adapters)" if (meta.get("params") or {}).get("lora") else "")
        + "."
    )
