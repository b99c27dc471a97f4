"""What a claims cell trains on: the subset of its size drawn with its seed, the per-seed 90%
subsample of a model whose fit the seed would not change, generated messages for
augmentation, small sets repeated to a minimum of examples seen, and the validation subset
its epoch is chosen on. Moved out of :mod:`~nlpgd.experiments.claims.runner` (which
re-exports every name)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import TYPE_CHECKING

from nlpgd.data.prepare import subsample
from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims.plan import Cell, TrainSet
from nlpgd.models.registry import build_model
from nlpgd.runs import Run

if TYPE_CHECKING:
    from nlpgd.experiments.claims.runner import Design, Session


# -- training data ------------------------------------------------------------------------


def subset_indices(labels: list[str], size: int, seed: int) -> list[int]:
    """A stratified subset of ``size`` messages, drawn with ``seed``: the same for every model
    and experiment, different for every seed."""
    records = [{"i": i, "label": y} for i, y in enumerate(labels)]
    return [r["i"] for r in subsample(records, size, seed)]


def synthetic_path(run: Run, generator_cell: str, seed: int) -> Path:
    return run.path / "synthetic" / generator_cell / f"seed{seed}.jsonl"


def read_synthetic(path: Path) -> tuple[list[str], list[str]]:
    if not path.is_file():
        raise NlpgdError(f"generated training messages {path} are missing (the generator's cell did not finish)")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["text"] for r in rows], [r["label"] for r in rows]


SEED_SHARE = 0.9


def seeds_vary(params) -> bool:
    """Whether a model's fit depends on the seed. Naive Bayes and logistic regression on counts
    declare ``seed_free``: they are functions of their data alone."""
    return not build_model(params).can("seed_free")


def seed_share(d: Design, model: str) -> float:
    """The share of a whole train split a cell of ``model`` trains on: :data:`SEED_SHARE` (a
    stratified subsample drawn with the cell's seed) when seeds would not vary the model or its
    pair partner, so that every seed is a different training run and both members of a pair
    still see identical data; else 1."""
    group = next((p.members for p in d.pairs if model in p.members), (model,))
    return 1.0 if all(seeds_vary(d.cfg.models[m]) for m in group) else SEED_SHARE


def full_size(d: Design, model: str, n: int) -> int:
    """How many messages a cell of ``model`` on a whole train split of ``n`` trains on: ``n``, or
    its per-seed subsample (:func:`seed_share`)."""
    share = seed_share(d, model)
    return n if share >= 1 else max(2, round(share * n))


def training_data(s: Session, ts: TrainSet, seed: int, model: str | None = None) -> tuple[list[str], list[str]]:
    """The texts and labels a cell of ``model`` is fitted on (before any repetition): a whole
    train split is subsampled per seed for models whose fit the seed would not change."""
    sp = s.design.data[ts.source]
    texts, labels = sp.texts["train"], sp.labels["train"]
    size = ts.size
    if size is None and ts.synthetic is None and model is not None and seed_share(s.design, model) < 1:
        size = full_size(s.design, model, len(labels))
    if size is not None:
        idx = subset_indices(labels, size, seed)
        texts, labels = [texts[i] for i in idx], [labels[i] for i in idx]
    if ts.synthetic is None:
        return texts, labels
    syn_texts, syn_labels = read_synthetic(synthetic_path(s.run, f"n{ts.size}/{ts.generator}", seed))
    if ts.synthetic == "syn":
        return syn_texts, syn_labels
    return texts + syn_texts, labels + syn_labels


def repeat_small(params, texts: list[str], labels: list[str], min_seen: int) -> tuple[list, list, int]:
    """A model trained in epochs (``epoch_trained``) sees at least ``min_seen`` examples: a small
    training set is repeated within each epoch (its epochs, validation and checkpoints stay as
    configured)."""
    if not build_model(params).can("epoch_trained") or not texts or params.epochs == 0:  # epochs 0: nothing trains
        return texts, labels, 1
    r = max(1, math.ceil(min_seen / (len(texts) * params.epochs)))
    return texts * r, labels * r, r


MIN_VALIDATION = 16


def epoch_validation(s: Session, cell: Cell, n_train: int) -> tuple[list[str], list[str]]:
    """The validation messages a fit chooses its epoch on: a stratified subset (drawn with the
    cell's seed) as large as the training set, at least :data:`MIN_VALIDATION`, at most the
    validation split, so a small training set is not selected on a much larger validation set."""
    sp = s.design.data[cell.trainset.source]
    texts, labels = sp.texts["validation"], sp.labels["validation"]
    n = min(len(texts), max(MIN_VALIDATION, n_train))
    if n >= len(texts):
        return texts, labels
    idx = subset_indices(labels, n, cell.seed)
    return [texts[i] for i in idx], [labels[i] for i in idx]
