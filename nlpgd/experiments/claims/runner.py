"""Carrying out a plan in a run folder, cell by cell, with compare's pieces.

A cell is one :func:`~nlpgd.experiments.compare.fit_and_score` (fit, save, predict validation
and test, metrics and costs, recorded with :func:`~nlpgd.experiments.compare.record_cell`),
then its evals: the same model scored on perturbed or other test sets, on test sets resampled
to another class balance with its prior replaced, or asked to generate training messages.
Finished fits are listed in ``progress.json`` (as compare does) and finished evals in
``evals.json``, so an interrupted run resumes where it stopped. A model is deleted once every
eval of its cell is written (``experiment.keep_models`` keeps it).

Files besides compare's: ``predictions/<cell>/seed<k>.<eval>.csv``, ``perturbations.json``
(what each perturbation did to the test texts), ``predictions/<cell>/seed<k>.shift.json``
(the priors of the label-shift evals) and ``synthetic/<cell>/seed<k>.jsonl`` with its
``.quality.json`` (augmentation).
"""

from __future__ import annotations

import contextlib
import logging
import math
import shutil
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlpgd import stats
from nlpgd.config import DataConfig, ExperimentConfig, ExperimentGrid, dataset_config
from nlpgd.data import load_splits
from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims.plan import FULL, MAIN, Cell, Pair, Plan, TrainSet, shift_sources
from nlpgd.experiments.claims.session import (  # noqa: F401 (runner.X, as before)
    EVALS_FILE,
    PERTURBATIONS_FILE,
    Session,
)
from nlpgd.experiments.claims.training_data import (  # noqa: F401 (runner.X, as before)
    MIN_VALIDATION,
    SEED_SHARE,
    epoch_validation,
    read_synthetic,
    repeat_small,
    seed_share,
    seeds_vary,
    subset_indices,
    synthetic_path,
    training_data,
)
from nlpgd.experiments.compare import Splits, fit_and_score
from nlpgd.experiments.generate import Sampling
from nlpgd.generation import sample_quality
from nlpgd.io import write_json, write_jsonl
from nlpgd.models.base import FitContext
from nlpgd.models.hf_logging import scoring_split
from nlpgd.perturb import perturb_texts, resample_to_prevalence
from nlpgd.runs import quality_path, read_predictions, write_predictions
from nlpgd.sampling import SamplingSettings
from nlpgd.scoring import load_named_model, score_texts

log = logging.getLogger(__name__)


# -- what a run is made of ----------------------------------------------------------------


@dataclass
class Design:
    """Everything the experiments plan and analyse with: config, grid, pairs, the data."""

    cfg: ExperimentConfig
    grid: ExperimentGrid
    pairs: list[Pair]
    reference: list[str]
    data: dict[str, Splits]  # MAIN, every cross-domain target that could be loaded, both sides of each shift
    notes: list[str] = field(default_factory=list)
    shifts: dict[str, dict] = field(default_factory=dict)  # real shifts: name -> what each side holds
    others: list[str] = field(default_factory=list)  # the other corpora of a claims matrix (data keys, not targets)

    @property
    def seeds(self) -> list[int]:
        return list(self.cfg.seeds)

    @property
    def paired(self) -> list[str]:
        return list(dict.fromkeys(m for p in self.pairs for m in p.members))

    @property
    def reference_seeds(self) -> list[int]:
        return list(self.grid.reference_seeds) if self.grid.reference_seeds is not None else self.seeds

    def seeds_of(self, model: str) -> list[int]:
        return self.reference_seeds if model in self.reference else self.seeds

    @property
    def targets(self) -> list[str]:
        """The cross-domain targets (not the sides of the real shifts, nor a matrix's other corpora)."""
        sides = {k for t in self.shifts for k in shift_sources(t)}
        return [t for t in self.data if t != MAIN and t not in sides and t not in self.others]

    @property
    def main_name(self) -> str:
        """The main data set in a few words (a hub name, a file's name, or the source)."""
        data = self.cfg.data
        if data.name:
            return data.name
        if data.path and data.source != "spamassassin":
            return Path(data.path).name
        return data.source

    def add_full_cells(self, plan: Plan, evals=(), reference_evals=None) -> None:
        """Every paired model (all seeds) and reference model (its seeds) on the full train
        split, with ``evals`` (``reference_evals`` for the reference rows, default the same)."""
        for seed in self.seeds:
            for m in self.paired:
                plan.add(TrainSet(FULL), m, seed, evals)
        for m in self.reference:
            for seed in self.reference_seeds:
                plan.add(TrainSet(FULL), m, seed, evals if reference_evals is None else reference_evals)

    def usable_sizes(self, sizes: list, what: str, key: str) -> tuple[list, list[str]]:
        """``sizes`` without those larger than the main train split, and a note for each left
        out; an error when none is left."""
        n = len(self.data[MAIN].texts["train"])
        kept = [s for s in sizes if s == FULL or s <= n]
        notes = [f"{what} {s} is larger than the train split ({n} messages): skipped" for s in sizes if s not in kept]
        if not kept:
            raise NlpgdError(
                f"config key '{key}': every {what} ({', '.join(map(str, sizes))}) is larger than the train "
                f"split ({n} messages)"
            )
        return kept, notes


def load_targets(cfg: ExperimentConfig, grid: ExperimentGrid, notes: list[str]) -> dict[str, Splits]:
    """The cross-domain targets of the robustness grid, loaded before any work: one that cannot
    be loaded is an error, or a note when it is marked optional. A target without its own
    ``max_train_samples`` trains on at most as many messages as the main data."""
    out = {}
    for name, target in grid.robustness.cross_domain.items():
        key = f"experiment.robustness.cross_domain.{name}.data"
        try:
            dcfg = target.data if isinstance(target.data, DataConfig) else dataset_config(target.data)
            if dcfg.max_train_samples is None and cfg.data.max_train_samples is not None:
                dcfg = dcfg.model_copy(update={"max_train_samples": cfg.data.max_train_samples})
            out[name] = Splits.of(load_splits(dcfg))
        except NlpgdError as exc:
            if not target.optional:
                raise NlpgdError(f"config key '{key}': the target data set cannot be loaded: {exc}") from None
            notes.append(f"cross-domain target '{name}' skipped: {exc}")  # logged once, with the design
    return out


def load_shifts(cfg: ExperimentConfig, grid: ExperimentGrid) -> tuple[dict[str, Splits], dict[str, dict]]:
    """Both sides of every real shift of the robustness grid (data keys from
    :func:`~nlpgd.experiments.claims.plan.shift_sources`), with the main data's settings, and
    what each side holds; a side that is empty after de-duplication is an error."""
    from nlpgd import LABELS
    from nlpgd.data.shifts import load_shift

    data, reports = {}, {}
    for name in grid.robustness.shifts:
        shift = load_shift(name, cfg.data)
        train_key, target_key = shift_sources(name)
        if train_key in grid.robustness.cross_domain or target_key in grid.robustness.cross_domain:
            raise NlpgdError(
                f"config key 'experiment.robustness.cross_domain': the name '{train_key}' is taken by a shift"
            )
        data[train_key] = Splits.of(shift.train)
        rows = shift.target
        data[target_key] = Splits(
            texts={"test": [r["text"] for r in rows]},
            labels={"test": [r["label"] for r in rows]},
            ids={"test": [r["id"] for r in rows]},
            y={"test": np.asarray([LABELS.index(r["label"]) for r in rows])},
        )
        reports[name] = shift.report
    return data, reports


# -- one cell -----------------------------------------------------------------------------


def fit_cell(s: Session, cell: Cell) -> None:
    """Fit, save and score one cell unless it is done already."""
    if s.done.get(cell.key):
        return
    texts, labels = training_data(s, cell.trainset, cell.seed, cell.model)
    params = s.design.cfg.models[cell.model]
    fit_texts, fit_labels, repeats = repeat_small(params, texts, labels, s.design.grid.min_examples_seen)
    sp = s.design.data[cell.trainset.source]
    validation = epoch_validation(s, cell, len(texts))
    ctx = FitContext(
        seed=cell.seed,
        validation=validation,
        work_dir=s.run.work_dir(cell.name, cell.seed),
        resume=s.resume,
        progress=s.progress,
        name=cell.key,
    )
    t0, cpu0 = time.perf_counter(), time.process_time()
    metrics, cost = fit_and_score(s.run, cell.name, params, ctx, sp, train=(fit_texts, fit_labels))
    cost.update(
        trainset=cell.trainset.name,
        train_messages=len(texts),
        train_spam_share=labels.count("spam") / len(labels),
        repeats=repeats,
        epoch_validation_messages=len(validation[0]),
        cell_seconds=time.perf_counter() - t0,
        cell_cpu_seconds=time.process_time() - cpu0,  # this process's threads: what a busy machine does not inflate
    )
    s.record_fit(cell, metrics, cost)
    shutil.rmtree(ctx.work_dir, ignore_errors=True)
    auc, f1 = metrics["test"]["roc_auc"], metrics["test"]["f1"]
    log.info("%s: test ROC-AUC %s, F1 %.4f (%.1f s)", cell.key, _fmt(auc), f1, cost["cell_seconds"])


def _fmt(v) -> str:
    return "n/a" if v is None else f"{v:.4f}"


def evaluate_cell(s: Session, cell: Cell, names) -> None:
    """Run the evals ``names`` of ``cell`` that are not written yet (loading its saved model)."""
    todo = [cell.evals[n] for n in names if n in cell.evals and not s.eval_done(cell, n)]
    if not todo:
        return
    t0 = time.perf_counter()
    model = load_named_model(cell.key, s.run.model_dir(cell.name, cell.seed))
    model.progress = s.progress
    with scoring_split("evaluation"):  # one line for the texts cut to the model's length, not one per eval
        for ev in todo:
            EVAL_RUNNERS[ev.kind](s, cell, model, ev)
            s.mark_eval(cell, ev.name)
    s.record_eval_seconds(cell, time.perf_counter() - t0)
    log.info("%s: %d evals in %.1f s", cell.key, len(todo), time.perf_counter() - t0)


def cleanup(s: Session, plan: Plan, prune: bool = True) -> None:
    """Delete the saved model of every fitted cell whose evals are all written (and, with
    ``prune``, the folders above it left empty: not while workers may be making them)."""
    if s.design.grid.keep_models:
        return
    for cell in plan.cells.values():
        if s.done.get(cell.key) and all(s.eval_done(cell, n) for n in cell.evals):
            folder = s.run.model_dir(cell.name, cell.seed)
            if folder.exists():
                shutil.rmtree(folder, ignore_errors=True)
                parents = (folder.parent, folder.parent.parent, folder.parent.parent.parent) if prune else ()
                for parent in parents:
                    with contextlib.suppress(OSError):
                        parent.rmdir()  # only when empty


# -- evals --------------------------------------------------------------------------------


def _texts_eval(s: Session, cell: Cell, model, ev) -> None:
    sp = s.design.data[ev.source]
    texts, effect = perturb_texts(sp.texts["test"], ev.transform, cell.seed)
    scores = score_texts(model, texts)
    path = s.run.predictions_path(cell.name, cell.seed, ev.name)
    write_predictions(path, sp.ids["test"], sp.y["test"], scores.log_odds, scores.log_lik)
    if ev.transform and ev.transform[0] in SHORTENING:
        z, ll = _prefix_scores(model, sp.texts["test"], texts, scores)
        write_predictions(
            s.run.predictions_path(cell.name, cell.seed, prefix_name(ev.name)), sp.ids["test"], sp.y["test"], z, ll
        )
    if ev.transform:
        s.record_perturbation(f"{ev.name}/seed{cell.seed}", effect)


SHORTENING = ("truncate", "dropout")  # perturbations that leave a message shorter than it was


def prefix_name(eval_name: str) -> str:
    """The eval whose shortened messages are scored as prefixes (no end-of-message term)."""
    return f"{eval_name}-prefix"


def _prefix_scores(model, original: list[str], texts: list[str], scores) -> tuple:
    """The scores of ``texts`` with every message the perturbation changed scored as the
    beginning of a message (no end token: it did not end there as written); unchanged messages,
    and every message of a model without an end-of-message term, keep ``scores``."""
    z = scores.log_odds.copy()
    ll = None if scores.log_lik is None else scores.log_lik.copy()
    changed = [i for i, (a, b) in enumerate(zip(original, texts)) if a != b]
    if not changed or not model.can("prefix_scores"):
        return z, ll
    again = score_texts(model, [texts[i] for i in changed], prefix=True)
    z[changed] = again.log_odds
    if ll is not None and again.log_lik is not None:
        ll[changed] = again.log_lik
    return z, ll


def _prior_scores(model, texts: list[str], z: np.ndarray, assumed: float, prior: float) -> np.ndarray:
    """Log-odds under ``prior``: a generative model's prior is replaced inside the model (and
    restored); a discriminative model's log-odds move from the prior its outputs assume
    (``assumed``) to ``prior`` by Bayes' rule."""
    if model.can("prior_replaceable"):
        model.set_prior({"spam": float(prior), "ham": 1.0 - float(prior)})
        try:
            return score_texts(model, texts).log_odds
        finally:
            model.set_prior(None)
    return stats.adjust_to_prior(z, assumed, prior)


def assumed_spam_prior(model, key: str) -> float:
    """P(spam) the model's outputs assume (recorded in its saved state), or one sentence when it
    is unknown (a model saved before nlpgd recorded it)."""
    prior = model.output_prior()
    if prior is None or "spam" not in prior:
        raise NlpgdError(
            f"{key}: the class prior this model's outputs assume is not recorded in its saved state "
            "(saved by an older nlpgd), so its outputs cannot be corrected for label shift; refit it"
        )
    return float(prior["spam"])


def _shift_eval(s: Session, cell: Cell, model, ev) -> None:
    """Label shift: for each prevalence, the test split resampled to it (with the cell's seed),
    scored with the prior the outputs assume, the true prevalence and the EM estimate; the
    BBSE estimate (from the validation decisions) is recorded beside EM's."""
    sp = s.design.data[MAIN]
    saved = read_predictions(s.run.predictions_path(cell.name, cell.seed, "test"))
    val = read_predictions(s.run.predictions_path(cell.name, cell.seed, "validation"))
    texts, y = sp.texts["test"], sp.y["test"]
    assumed = assumed_spam_prior(model, cell.key)
    train_prior = float(s.cost(cell)["train_spam_share"])
    record = {
        "train_prior": train_prior,
        "assumed_prior": assumed,
        "how": "prior replaced" if model.can("prior_replaceable") else "adjusted",
    }
    for q in ev.transform:
        idx = resample_to_prevalence(y, q, cell.seed)
        z = saved["log_odds"][idx]
        true = float(y[idx].mean())
        estimate, iterations = stats.em_prior(z, assumed)
        sub = [texts[i] for i in idx]
        for mode, prior in (("train", None), ("true", true), ("em", estimate)):
            out = z if prior is None else _prior_scores(model, sub, z, assumed, prior)
            path = s.run.predictions_path(cell.name, cell.seed, f"shift-{q:g}-{mode}")
            write_predictions(path, [sp.ids["test"][i] for i in idx], y[idx], out)
        bbse = float(stats.bbse_prior(val["label"], val["log_odds"], z)[0])
        record[f"{q:g}"] = {
            "prevalence": true,
            "n": len(idx),
            "em_estimate": estimate,
            "em_iterations": iterations,
            "bbse_estimate": None if np.isnan(bbse) else bbse,
        }
    write_json(s.run.predictions_path(cell.name, cell.seed, "shift").with_suffix(".json"), record)


def _generate_eval(s: Session, cell: Cell, model, ev) -> None:
    """LAMBADA: the generator, fitted on the real subset, samples ``oversample`` times what is
    kept of each class; its own posterior keeps the most confident; the quality report is kept."""
    aug = s.design.grid.augmentation
    texts, labels = training_data(s, cell.trainset, cell.seed)
    sampling = Sampling(SamplingSettings.of(aug), progress=s.progress)
    options = sampling.for_model(model, cell.key)
    rows, quality = [], {}
    for j, label in enumerate(str(c) for c in model.classes_):
        real = [t for t, y in zip(texts, labels) if y == label]
        keep = math.ceil(aug.synthetic_ratio * len(real))
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            samples = model.generate(label, math.ceil(aug.oversample * keep), seed=cell.seed, **options)
        if not samples:
            raise NlpgdError(f"generator {cell.key} produced no usable '{label}' messages; augmentation cannot go on")
        confidence = np.asarray(model.predict_proba(samples), dtype=np.float64)[:, j]
        order = np.argsort(-confidence, kind="stable")[:keep]
        kept = [samples[i] for i in order]
        rows += [{"text": t, "label": label, "confidence": float(confidence[i])} for t, i in zip(kept, order)]
        report = sample_quality(kept, texts, real, {cell.model: model}, label)
        report["notes"] += [str(w.message) for w in caught]
        report["filter"] = {
            "generated": len(samples),
            "kept": len(kept),
            "share_called_label": float(np.mean(confidence > 0.5)),
            "mean_confidence_generated": float(confidence.mean()),
            "mean_confidence_kept": float(confidence[order].mean()),
            "min_confidence_kept": float(confidence[order].min()),
        }
        quality[label] = report
    path = synthetic_path(s.run, cell.name, cell.seed)
    write_jsonl(path, rows)
    write_json(quality_path(path), {"generator": cell.key, "sampling": options, **quality})


EVAL_RUNNERS = {"texts": _texts_eval, "shift": _shift_eval, "generate": _generate_eval}


# -- a phase ------------------------------------------------------------------------------


def execute(s: Session, plan: Plan, merged: Plan, bar=None) -> None:
    """Fit every cell of ``plan`` (as one cell of ``merged``), run ``plan``'s evals of it, and
    delete the models whose cells are complete."""
    for own in plan.ordered():
        cell = merged.cells[own.key]
        if bar is not None:
            bar.set_postfix_str(cell.key)
        fit_cell(s, cell)
        evaluate_cell(s, cell, list(own.evals))
        cleanup(s, merged)
        if bar is not None:
            bar.update(1)
