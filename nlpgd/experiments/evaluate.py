"""evaluate: score a finished run's saved models on another data set."""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import numpy as np

from nlpgd import LABELS
from nlpgd.config import DataConfig
from nlpgd.data import data_notes, load_splits
from nlpgd.errors import NlpgdError
from nlpgd.io import (
    atomic_write_text,
    check_name,
    check_owned_folder,
    check_writable,
    ensure_dir,
    remove_owned_folder,
    write_error,
    write_json,
)
from nlpgd.metrics import evaluate_predictions
from nlpgd.models.base import apply_prior
from nlpgd.runs import now_iso, open_run, write_predictions, writing
from nlpgd.scoring import load_run_models, score_texts

log = logging.getLogger(__name__)
SPLIT_CHOICES = ("train", "validation", "test", "all")
# written first into every evaluation folder: only a folder holding it is ever removed (by a
# later evaluation of the same name), so no name can make nlpgd delete something it did not write
MARKER = ".nlpgd-evaluation"


def evaluate_run(
    run_dir: Path,
    data_cfg: DataConfig,
    *,
    split: str = "test",
    name: str = "eval",
    prior: dict | None = None,
    progress: bool = True,
) -> tuple[Path, dict]:
    """Score every saved model of ``run_dir`` on a data set; ``prior`` replaces the class
    prior of the generative models (label shift). Results go to ``evaluations/<name>/``,
    written as ``<name>.partial`` and renamed once complete; a failure leaves neither.
    Data with one class only is accepted: the metrics it leaves undefined are noted."""
    if split not in SPLIT_CHOICES:
        raise NlpgdError(f"unknown split '{split}'; choose one of {', '.join(SPLIT_CHOICES)}")
    check_name(name, "evaluation name")
    run = open_run(run_dir)
    owner = run.path / "evaluations"
    final = owner / name
    with writing(run.path):  # one writer per run folder: a second one stops here, having changed nothing
        check_writable(final.parent)  # a read-only run folder fails before any work
        return _evaluate_into(run.path, owner, name, data_cfg, split, prior, progress)


def _evaluate_into(
    run_path: Path, owner: Path, name: str, data_cfg: DataConfig, split: str, prior, progress: bool
) -> tuple[Path, dict]:
    """:func:`evaluate_run` once the run folder is this process's to write."""
    final = owner / name
    tmp = final.with_name(name + ".partial")
    remove_owned_folder(tmp, owner, MARKER)  # a crashed earlier evaluation's leftovers
    check_owned_folder(final, owner, MARKER)  # an earlier evaluation of this name: refused now, not after scoring
    data = load_splits(data_cfg, need_both_classes=False)  # bad data fails before any model is loaded
    for note in data_notes(data.summary):
        log.info("data: %s", note)
    splits = ("train", "validation", "test") if split == "all" else (split,)
    if not sum(len(data.dataset[s]) for s in splits):  # a file of one or two messages leaves splits empty
        n = sum(len(data.dataset[s]) for s in ("train", "validation", "test"))
        raise NlpgdError(
            f"the {split} split of {data_cfg.path or data_cfg.source} is empty ({n} messages in all); use --split all"
        )
    models = load_run_models(run_path, progress=progress)
    unchanged = apply_prior(models, prior)
    if unchanged:
        log.warning("the prior applies to generative models only; unchanged: %s", ", ".join(unchanged))
    ids = [i for s in splits for i in data.dataset[s]["id"]]
    texts = [t for s in splits for t in data.texts(s)]
    y = np.array([v for s in splits for v in data.dataset[s]["label"]])
    try:
        ensure_dir(tmp)
        atomic_write_text(tmp / MARKER, "written by nlpgd evaluate\n")
        results = _score_all(models, ids, texts, y, tmp, split)
        info = {
            "data": data_cfg.model_dump(mode="json"),
            "split": split,
            "summary": data.summary,
            "n": len(texts),
            "prior": prior,
            "prior_not_applied_to": unchanged,
            "class_counts": {c: int((y == i).sum()) for i, c in enumerate(LABELS)},
            "notes": sorted({n for r in results.values() for n in r["notes"]}),
            "finished": now_iso(),
        }
        write_json(tmp / "evaluation.json", info)
        _replace_folder(tmp, final, owner)
    except BaseException:
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, results


def _score_all(models: dict, ids: list, texts: list[str], y: np.ndarray, out: Path, split: str) -> dict:
    """Each model's predictions (written under ``out/predictions``) and metrics (``out/metrics.json``)."""
    results = {}
    for key, model in models.items():
        scores = score_texts(model, texts)
        mname, seed = key.split("/")
        write_predictions(out / "predictions" / mname / f"{seed}.{split}.csv", ids, y, scores.log_odds, scores.log_lik)
        results[key] = {**evaluate_predictions(y, scores.log_odds), "seconds": scores.seconds}
    write_json(out / "metrics.json", results)
    return results


def _replace_folder(new: Path, final: Path, owner: Path) -> None:
    """``new`` takes the place of ``final`` (an earlier evaluation of the same name goes, and
    only if an evaluation wrote it)."""
    remove_owned_folder(final, owner, MARKER)
    try:
        os.replace(new, final)
    except OSError as exc:
        raise write_error(final, exc) from None
