"""A stacked ensemble: the ensemble hybrid of the generative and discriminative arms.

Each member arm turns a message into one or more scores (:meth:`Classifier.stack_scores`:
naive Bayes its log-odds, GPT-2 its log-likelihood ratio raw and per token, the encoder its
logit); scikit-learn's ``LogisticRegression`` on the standardised scores combines them.

No message is scored by a member that saw it in training (Wolpert 1992): the logistic
regression is fitted on out-of-fold scores of the train split, from k-fold cross-fitting of
the members on the train split alone (stratified folds; the fold fits get no validation
split). The members that score new messages are fitted on the whole train split (or taken
from the same run and seed when ``compare`` has fitted them already, ``ctx.extra["fitted"]``)
and saved inside the stack's folder, so the folder is self-contained for ``classify`` and
``evaluate``. The validation split only selects: the members' best epoch, and the
logistic regression's ``C`` by validation log loss. The test split is never touched.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import log_loss
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from nlpgd.errors import NlpgdError
from nlpgd.io import read_json, write_json
from nlpgd.models.base import Capabilities, Classifier, FitContext, data_hash, read_model_meta
from nlpgd.models.registry import build_model, load_model
from nlpgd.params import ModelParams, StackParams
from nlpgd.safe_load import inside, load_errors

log = logging.getLogger(__name__)
STATE_FILE = "stack_state.json"
MEMBERS_DIR = "members"
CLIP = 50.0  # scores beyond +-50 nats are certain either way; clipped so one long message cannot set the scale


class StackClassifier(Classifier):
    """Logistic regression over the member arms' out-of-fold scores."""

    params_class = StackParams
    params: StackParams
    # launchable False: its members' Trainer fits would wait on processes that never join
    capabilities = Capabilities(launchable=False)

    @property
    def family(self) -> str:
        return "hybrid"

    def combines(self) -> list[str]:
        return list(self.params.members)

    # -- fitting ----------------------------------------------------------------------
    def _members(self) -> dict[str, ModelParams]:
        members = self.params.members
        if not isinstance(members, dict):
            raise NlpgdError(
                f"stack members {members} name other config entries; they are resolved when the stack is part of an "
                "experiment config (or give {name: settings})"
            )
        return members

    def _fit(self, texts: list[str], labels: list[str], ctx: FitContext) -> None:
        members = self._members()
        if len(self.classes_) != 2:
            raise NlpgdError(f"a stack combines two-class log-odds; the training data has {len(self.classes_)} classes")
        y = (np.asarray(labels) == self.classes_[1]).astype(int)
        oof = self._cross_fit(texts, labels, y, ctx, members)
        self.members_ = {name: self._full_member(name, p, texts, labels, ctx) for name, p in members.items()}
        names, X = self._feature_matrix(oof)
        self.feature_names_ = names
        self.scaler_ = StandardScaler().fit(X)
        Z = self.scaler_.transform(X)
        self.C_, self.selection_ = self._choose_C(Z, y, ctx)
        self.lr_ = LogisticRegression(C=self.C_, max_iter=1000).fit(Z, y)

    def _cross_fit(self, texts, labels, y, ctx: FitContext, members: dict) -> dict[str, dict[str, np.ndarray]]:
        """Out-of-fold scores of every member on the train split: ``{member: {score: (n,)}}``."""
        folds = StratifiedKFold(n_splits=self.params.folds, shuffle=True, random_state=ctx.seed)
        if min(np.bincount(y)) < self.params.folds:
            raise NlpgdError(f"a stack with {self.params.folds} folds needs at least that many messages of each class")
        oof: dict[str, dict[str, np.ndarray]] = {}
        for k, (fit_idx, held_idx) in enumerate(folds.split(np.zeros(len(y)), y)):
            for name, params in members.items():
                sub = FitContext(
                    seed=ctx.seed,
                    validation=None,  # the fold fits see the train split only
                    work_dir=None if ctx.work_dir is None else Path(ctx.work_dir) / name / f"fold{k}",
                    resume=ctx.resume,
                    progress=ctx.progress,
                    name=f"{ctx.name or 'stack'}/{name}/fold{k}",
                )
                model = build_model(params).fit([texts[i] for i in fit_idx], [labels[i] for i in fit_idx], sub)
                for score, values in model.stack_scores([texts[i] for i in held_idx]).items():
                    oof.setdefault(name, {}).setdefault(score, np.full(len(y), np.nan))[held_idx] = values
        return oof

    def _full_member(self, name: str, params: ModelParams, texts, labels, ctx: FitContext) -> Classifier:
        """The member fitted on the whole train split: the run's own fit of it when it matches
        (same settings, seed and training data), else fitted here."""
        folder = (ctx.extra.get("fitted") or {}).get(name)
        if folder is not None and Path(folder, "nlpgd_model.json").is_file():
            meta = read_model_meta(Path(folder))
            same = meta.get("params") == params.model_dump(mode="json") and meta.get("seed") == ctx.seed
            if same and meta.get("train_data_sha256") == data_hash(texts, labels):
                log.info("stack member %s: reusing %s", name, folder)
                return load_model(Path(folder))
        sub = FitContext(
            seed=ctx.seed,
            validation=ctx.validation,
            work_dir=None if ctx.work_dir is None else Path(ctx.work_dir) / name / "full",
            resume=ctx.resume,
            progress=ctx.progress,
            name=f"{ctx.name or 'stack'}/{name}",
        )
        return build_model(params).fit(texts, labels, sub)

    def _choose_C(self, Z: np.ndarray, y: np.ndarray, ctx: FitContext) -> tuple[float, dict[str, float]]:
        """The grid's C with the lowest validation log loss (``params.C`` without validation)."""
        if ctx.validation is None or not len(ctx.validation[0]):
            return float(self.params.C), {}
        val_texts, val_labels = ctx.validation
        Zv = self.scaler_.transform(self._features(val_texts))
        yv = (np.asarray([str(v) for v in val_labels]) == self.classes_[1]).astype(int)
        losses = {}
        for C in self.params.C_grid:
            p = LogisticRegression(C=C, max_iter=1000).fit(Z, y).predict_proba(Zv)[:, 1]
            losses[repr(float(C))] = float(log_loss(yv, p, labels=[0, 1]))
        best = min(losses, key=losses.get)
        return float(best), losses

    # -- scoring ----------------------------------------------------------------------
    @staticmethod
    def _feature_matrix(scores: dict[str, dict[str, np.ndarray]]) -> tuple[list[str], np.ndarray]:
        names = [f"{m}.{s}" for m in scores for s in scores[m]]
        X = np.column_stack([scores[m][s] for m in scores for s in scores[m]]).astype(np.float64)
        return names, np.clip(np.nan_to_num(X, nan=0.0, posinf=CLIP, neginf=-CLIP), -CLIP, CLIP)

    def _features(self, texts: list[str]) -> np.ndarray:
        for member in self.members_.values():  # the members' scoring bars follow the stack's switch
            member.progress = self.progress
        scores = {name: m.stack_scores(texts) for name, m in self.members_.items()}
        names, X = self._feature_matrix(scores)
        if names != self.feature_names_:
            raise NlpgdError(f"stack members give the scores {names}, the stack was fitted on {self.feature_names_}")
        return X

    def _predict_proba(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros((0, 2))
        p = self.lr_.predict_proba(self.scaler_.transform(self._features(texts)))[:, 1]
        return np.column_stack([1.0 - p, p])

    def _predict_log_odds(self, texts: list[str]) -> np.ndarray:
        if not texts:
            return np.zeros(0)
        return self.lr_.decision_function(self.scaler_.transform(self._features(texts)))

    def n_parameters(self) -> int | None:
        own = int(self.lr_.coef_.size + self.lr_.intercept_.size)
        return own + sum(m.n_parameters() or 0 for m in self.members_.values())

    # -- persistence ------------------------------------------------------------------
    def _meta_extra(self) -> dict[str, Any]:
        return {"features": self.feature_names_, "C": self.C_, "validation_log_loss": self.selection_}

    def _save(self, path: Path) -> None:
        for name, member in self.members_.items():
            member.save(path / MEMBERS_DIR / name)
        write_json(
            path / STATE_FILE,
            {
                "members": list(self.members_),
                "features": self.feature_names_,
                "mean": self.scaler_.mean_.tolist(),
                "scale": self.scaler_.scale_.tolist(),
                "coef": self.lr_.coef_.ravel().tolist(),
                "intercept": float(self.lr_.intercept_[0]),
                "C": self.C_,
                "validation_log_loss": self.selection_,
            },
        )

    def _load(self, path: Path, meta: dict) -> None:
        state = read_json(path / STATE_FILE, "stack state")
        with load_errors(path / STATE_FILE, "the stack state"):
            names = [str(n) for n in state["members"]]
            self.feature_names_ = [str(f) for f in state["features"]]
            k = len(self.feature_names_)
            mean, scale, coef = (np.asarray(state[key], dtype=np.float64) for key in ("mean", "scale", "coef"))
            if names != list(self._members()) or not (mean.shape == scale.shape == coef.shape == (k,)):
                raise NlpgdError(f"{path / STATE_FILE} does not match the stack's members and scores")
            self.C_, self.selection_ = float(state["C"]), dict(state.get("validation_log_loss") or {})
            self.scaler_ = StandardScaler()
            self.scaler_.mean_, self.scaler_.scale_, self.scaler_.n_features_in_ = mean, scale, k
            self.lr_ = LogisticRegression(C=self.C_)
            self.lr_.coef_, self.lr_.intercept_ = coef[None, :], np.array([float(state["intercept"])])
            self.lr_.classes_, self.lr_.n_features_in_ = np.array([0, 1]), k
        self.members_ = {}
        for name in names:
            folder = inside(path, f"{MEMBERS_DIR}/{name}", f"{STATE_FILE} member '{name}'")
            member = load_model(folder)
            if member.type_name != self._members()[name].type:
                raise NlpgdError(f"{folder} holds a '{member.type_name}' model, not the member's '{name}' type")
            self.members_[name] = member
