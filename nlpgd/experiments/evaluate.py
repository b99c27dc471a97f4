"""evaluate: score a finished run's saved models on another data set."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from nlpgd import LABELS
from nlpgd.config import DataConfig
from nlpgd.data import load_splits
from nlpgd.errors import NlpgdError
from nlpgd.io import write_json
from nlpgd.metrics import evaluate_predictions
from nlpgd.models.base import apply_prior
from nlpgd.runs import now_iso, open_run, write_predictions
from nlpgd.scoring import load_run_models, score_model

log = logging.getLogger(__name__)
SPLIT_CHOICES = ("train", "validation", "test", "all")


def evaluate_run(
    run_dir: Path, data_cfg: DataConfig, *, split: str = "test", name: str = "eval", prior: dict | None = None
) -> tuple[Path, dict]:
    """Score every saved model of ``run_dir`` on a data set; ``prior`` replaces the class
    prior of the generative models (label shift). Results go to ``evaluations/<name>/``."""
    if split not in SPLIT_CHOICES:
        raise NlpgdError(f"unknown split '{split}'; choose one of {', '.join(SPLIT_CHOICES)}")
    run = open_run(run_dir)
    data = load_splits(data_cfg)  # bad data fails before any model is loaded
    models = load_run_models(run.path)
    unchanged = apply_prior(models, prior)
    if unchanged:
        log.warning("the prior applies to generative models only; unchanged: %s", ", ".join(unchanged))
    splits = ("train", "validation", "test") if split == "all" else (split,)
    ids = [i for s in splits for i in data.dataset[s]["id"]]
    texts = [t for s in splits for t in data.texts(s)]
    y = np.array([v for s in splits for v in data.dataset[s]["label"]])
    final = run.path / "evaluations" / name
    tmp = final.with_name(name + ".partial")
    shutil.rmtree(tmp, ignore_errors=True)
    results = {}
    for key, model in models.items():
        p, secs = score_model(model, texts)
        mname, seed = key.split("/")
        write_predictions(tmp / "predictions" / mname / f"{seed}.{split}.csv", ids, y, p, (p > 0.5).astype(int))
        results[key] = {**evaluate_predictions(y, p), "seconds": secs}
    write_json(tmp / "metrics.json", results)
    write_json(
        tmp / "evaluation.json",
        {
            "data": data_cfg.model_dump(mode="json"),
            "split": split,
            "summary": data.summary,
            "n": len(texts),
            "prior": prior,
            "prior_not_applied_to": unchanged,
            "class_counts": {c: int((y == i).sum()) for i, c in enumerate(LABELS)},
            "finished": now_iso(),
        },
    )
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    return final, results
