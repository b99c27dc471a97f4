"""The stacked ensemble (nlpgd.models.stack): cross-fitting on the train split only, member
reuse, config resolution, and the scores it combines."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import nlpgd.models.stack as stack_module
from nlpgd.config import config_from_dict, load_config
from nlpgd.errors import NlpgdError
from nlpgd.experiments.compare import compare
from nlpgd.models.base import FitContext
from nlpgd.models.registry import build_model, load_model
from nlpgd.params import GPT2Params, StackParams

from conftest import TINY_CSV, make_corpus

FAST_MEMBERS = {"naive_bayes": {"alpha": 1.0}, "logreg": {}}


class Spy:
    """Wraps ``build_model`` in the stack module: records every text each member was fitted
    on, given as validation, and scored with, per fit."""

    def __init__(self):
        self.fits: list[dict] = []

    def __call__(self, params):
        model = build_model(params)
        record = {"type": params.type, "fit": [], "validation": None, "scored": []}
        self.fits.append(record)
        fit, scores = model.fit, model.stack_scores

        def spy_fit(texts, labels, ctx=None):
            record["fit"] = list(texts)
            record["validation"] = None if ctx is None or ctx.validation is None else list(ctx.validation[0])
            return fit(texts, labels, ctx)

        def spy_scores(texts):
            record["scored"].append(list(texts))
            return scores(texts)

        model.fit, model.stack_scores = spy_fit, spy_scores
        return model


def _config(tmp_path: Path, **stack) -> dict:
    return {
        "name": "stack-ids",
        "seeds": [0],
        "data": {"source": "csv", "path": str(TINY_CSV), "validation_size": 0.2, "test_size": 0.2},
        "models": {**FAST_MEMBERS, "stack": {"members": ["naive_bayes", "logreg"], "folds": 3, **stack}},
        "output_dir": str(tmp_path / "outputs"),
        "progress": False,
    }


@pytest.fixture(scope="module")
def spied_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("stack")
    spy = Spy()
    mp = pytest.MonkeyPatch()
    mp.setattr(stack_module, "build_model", spy)
    mp.setattr("nlpgd.report.write_report", lambda *a, **k: None)  # the report is not under test here
    try:
        run = compare(config_from_dict(_config(tmp)))
    finally:
        mp.undo()
    return run, spy


def _split_texts(run: Path) -> dict[str, set[str]]:
    """The texts of each split, from what compare wrote (train texts; the ids of the others
    joined back to the prepared data set)."""
    from nlpgd.data import load_splits

    cfg = load_config(run / "config.yaml")
    data = load_splits(cfg.data)
    manifest = json.loads((run / "split_manifest.json").read_text())
    out = {}
    for split in ("train", "validation", "test"):
        ds = data.dataset[split]
        out[split] = dict(zip(ds["text"], ds["id"]))
        assert set(out[split].values()) == {row[0] for row in manifest["splits"][split]}  # the run's own split
    return out


def test_cross_fitting_never_sees_a_test_or_validation_id(spied_run):
    run, spy = spied_run
    ids = _split_texts(run)
    train, validation, test = (set(ids[s].values()) for s in ("train", "validation", "test"))
    assert train and validation and test and not (train & validation) and not (train & test)
    folds = [f for f in spy.fits if f["validation"] is None]
    assert len(folds) == 3 * len(FAST_MEMBERS)  # k folds x members; the full members are the run's own
    out_of_fold: list[str] = []
    for f in folds:
        fit_ids = {ids["train"][t] for t in f["fit"]}  # KeyError: a text that is not a train message
        scored_ids = [ids["train"][t] for batch in f["scored"] for t in batch]
        assert fit_ids <= train and not fit_ids & set(scored_ids), "a fold member scored a message it was fitted on"
        out_of_fold += scored_ids
    # every train message gets exactly one out-of-fold score from each member; nothing else is scored
    assert sorted(out_of_fold) == sorted(list(train) * len(FAST_MEMBERS))
    seen = {t for f in spy.fits for t in f["fit"] + [t for b in f["scored"] for t in b] + (f["validation"] or [])}
    assert not {ids["test"].get(t) for t in seen} - {None}, "a test message reached the stack's fit"


def test_stack_reuses_the_runs_member_fits(spied_run):
    run, spy = spied_run
    assert all(f["validation"] is None for f in spy.fits)  # no full-train member was fitted again
    meta = json.loads((run / "models" / "stack" / "seed0" / "nlpgd_model.json").read_text())
    assert meta["features"] == ["naive_bayes.log_odds", "logreg.log_odds"]
    assert set(meta["validation_log_loss"]) == {repr(c) for c in StackParams(members=["a", "b"]).C_grid}
    assert meta["C"] == float(min(meta["validation_log_loss"], key=meta["validation_log_loss"].get))
    for name in FAST_MEMBERS:  # saved inside the stack: the folder works on its own
        assert (run / "models" / "stack" / "seed0" / "members" / name / "nlpgd_model.json").is_file()


def test_saved_stack_classifies_on_its_own(spied_run, tmp_path):
    import shutil

    run, _ = spied_run
    shutil.copytree(run / "models" / "stack" / "seed0", tmp_path / "stack")
    texts = ["WINNER! claim your free prize now", "see you at lunch"]
    expected = load_model(run / "models" / "stack" / "seed0").predict_proba(texts)
    np.testing.assert_array_equal(load_model(tmp_path / "stack").predict_proba(texts), expected)


def test_a_stack_fitted_alone_fits_its_members_itself(tmp_path):
    texts, labels = make_corpus(20, seed=0)
    val = make_corpus(5, seed=1)
    spy = Spy()
    model = build_model(StackParams(members=FAST_MEMBERS, folds=2))
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(stack_module, "build_model", spy)
        model.fit(texts, labels, FitContext(seed=0, validation=val, progress=False))
    full = [f for f in spy.fits if f["validation"] is not None]
    assert len(full) == len(FAST_MEMBERS) and all(f["fit"] == texts and f["validation"] == val[0] for f in full)
    assert (model.predict(val[0]) == np.array(val[1])).mean() > 0.9


@pytest.mark.parametrize(
    "members, words",
    [
        (["naive_bayes", "nope"], "member 'nope' is not a model of this config"),
        (["naive_bayes", "stack"], "lists itself"),
        (["naive_bayes"], "at least two"),
        (["naive_bayes", "naive_bayes"], "twice"),
        (["naive_bayes", "other"], "is itself a stack"),
    ],
)
def test_bad_members_are_config_errors(members, words, tmp_path):
    cfg = _config(tmp_path)
    cfg["models"]["stack"]["members"] = members
    cfg["models"]["other"] = {"type": "stack", "members": ["naive_bayes", "logreg"]}
    with pytest.raises(NlpgdError, match=words):
        config_from_dict(cfg)


def test_unresolved_member_names_are_one_sentence():
    with pytest.raises(NlpgdError, match="resolved when the stack is part of an experiment config"):
        build_model(StackParams(members=["a", "b"])).fit(*make_corpus(10), FitContext(progress=False))


def test_gpt2_scores_are_the_likelihood_ratio_raw_and_per_token():
    texts, labels = make_corpus(20, seed=0)
    small = dict(n_layer=1, n_embd=32, n_head=2, vocab_size=300, n_positions=32, max_length=32, epochs=1)
    gpt2 = build_model(GPT2Params(**small)).fit(texts, labels, FitContext(progress=False))
    probe = ["free prize call now", "see you at lunch tomorrow"]
    scores = gpt2.stack_scores(probe)
    llr = gpt2.log_likelihood(probe, "spam") - gpt2.log_likelihood(probe, "ham")
    np.testing.assert_allclose(scores["llr"], llr, atol=1e-4)
    n_tokens = [len(gpt2.token_log_likelihoods(t, "spam")) for t in probe]
    np.testing.assert_allclose(scores["llr_per_token"], llr / n_tokens, atol=1e-4)
