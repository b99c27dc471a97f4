"""A fake run folder for tests and benchmarks: what `nlpgd compare` writes, without models.

:func:`make_run` fabricates predictions, ``costs.json``, ``data.json``, ``run.json`` and
``metrics.json`` for any models and seeds, so the report can be built and timed without
training anything.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlpgd.io import atomic_write_text, write_json
from nlpgd.runs import write_predictions


def family_of(name: str) -> str | None:
    """The family the registry declares for model type ``name`` at its default settings (None: a
    name that is no registered type). The defaults are not validated: a stack has no default
    members, and its family does not depend on them."""
    from nlpgd.models.registry import build_model
    from nlpgd.params import REGISTRY

    return build_model(REGISTRY[name].params.model_construct()).family if name in REGISTRY else None


def _labels(n: int, spam_every: int) -> np.ndarray:
    # every spam_every-th message is spam: the same sizes always give the same labels
    return (np.arange(n) % spam_every == 0).astype(int)


def _costs(k: int, name: str, seed: int) -> dict:
    return {
        "type": name,
        "family": family_of(name),
        "train_seconds": 2.0 + k + 0.1 * seed,
        "train_examples": 1000,
        "predict_seconds_per_1000": 0.1 * (k + 1),
        "n_parameters": 1000 * 10**k,
        "peak_memory_mb": 250.0 + k,
        "device": "cpu (2 threads)",
    }


def make_run(
    root: Path,
    models=("naive_bayes", "distilbert", "gpt2"),
    seeds=(0, 1, 2),
    n_test: int = 300,
    n_val: int = 300,
    experiment: str = "fixture",
    run_id: str = "20260101-000000",
    status: str = "complete",
    data_seed: int = 0,
    spam_every: int = 7,
    where: str | dict = "data/fixture_spam.csv",
    record_metrics: bool = True,
) -> Path:
    """A run folder ``root/<experiment>/<run_id>`` (``.partial`` unless ``status`` is
    ``complete``) with fabricated predictions and no ``models/``; returns its path.

    Labels depend only on the split sizes (every ``spam_every``-th message is spam), so runs
    of the same sizes share a test set; ``data_seed`` seeds the scores. The k-th model
    separates the classes better than the (k-1)-th. ``where`` goes into ``data.json`` as
    recorded (a path, or split -> path). ``record_metrics`` writes ``metrics.json`` with
    :func:`nlpgd.metrics.compute_metrics` (it imports scikit-learn); otherwise it is ``{}``.
    """
    rng = np.random.default_rng(data_seed)
    run = Path(root) / experiment / (run_id + (".partial" if status != "complete" else ""))
    ids = {s: [f"{s[0]}{i}" for i in range(n)] for s, n in (("validation", n_val), ("test", n_test))}
    y = {s: _labels(len(ids[s]), spam_every) for s in ids}
    if record_metrics:
        from nlpgd.metrics import compute_metrics
    metrics: dict = {}
    costs: dict = {}
    for k, name in enumerate(models):
        for seed in seeds:
            for split in ("validation", "test"):
                z = (1.5 + k) * (2 * y[split] - 1) * 2 + rng.normal(0, 2.0, len(y[split]))
                path = run / "predictions" / name / f"seed{seed}.{split}.csv"
                write_predictions(path, ids[split], y[split], z)
                if record_metrics:
                    metrics.setdefault(name, {}).setdefault(f"seed{seed}", {})[split] = compute_metrics(
                        y[split], log_odds=z
                    )
            costs.setdefault(name, {})[f"seed{seed}"] = _costs(k, name, seed)
    info = {"experiment": experiment, "run_id": run_id, "seeds": list(seeds), "models": list(models)}
    write_json(run / "run.json", {"format": 1, "status": status, **info})
    write_json(run / "metrics.json", metrics)
    write_json(run / "costs.json", costs)
    write_json(run / "split_manifest.json", {"test": ids["test"]})
    atomic_write_text(run / "config.yaml", f"name: {experiment}\n")
    counts = {s: {"spam": int(y[s].sum()), "ham": int(len(y[s]) - y[s].sum())} for s in y}
    data = {
        "source": "csv",
        "where": where,
        "sizes": {"train": 1000, "validation": n_val, "test": n_test},
        "class_counts": counts,
        "duplicates_removed": 3,
        "empty_dropped": 0,
    }
    write_json(run / "data.json", data)
    return run
