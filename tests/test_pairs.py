"""Matched pairs and capabilities: the continuum pair (one network, two objectives) comes first,
pairing reads each model's declared family and pair kind (never its type name), a new neural
type pairs without an edit to the claims plan, configured pairs are checked, and every pair's
"what differs" table is on the page."""

import json
from pathlib import Path
from typing import Literal

import pytest
import yaml
from typer.testing import CliRunner

from nlpgd.cli import app
from nlpgd.config import ExperimentGrid, PairSpec, load_config
from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims import plan as P
from nlpgd.models.distilbert import DistilBertClassifier
from nlpgd.models.registry import build_model
from nlpgd.params import REGISTRY, DistilBertParams, GPT2Params, NaiveBayesParams, StackParams, register

from conftest import TINY_CFG, TINY_CSV

runner = CliRunner()
GPT2_TINY = {"type": "gpt2", "n_layer": 1, "n_embd": 32, "n_head": 2, "vocab_size": 300, "epochs": 1, "max_length": 32}


def tiny_config(tmp_path: Path, models: dict, **experiment) -> Path:
    cfg = yaml.safe_load(TINY_CFG.read_text())
    cfg["data"]["path"] = str(TINY_CSV)
    cfg["models"] = models
    cfg["seeds"] = [0, 1]  # a claims verdict needs 2 seeds at least
    if experiment:
        cfg["experiment"] = experiment
    path = tmp_path / "pairs.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def continuum_models() -> dict:
    tiny = yaml.safe_load(TINY_CFG.read_text())["models"]
    return {
        "naive_bayes": {},
        "logreg": {},
        "gpt2": dict(GPT2_TINY),
        "distilbert": tiny["distilbert"],
        "gpt2_posterior": {**GPT2_TINY, "generative_weight": 0.0, "discriminative_weight": 1.0},
        "gpt2_hybrid": {**GPT2_TINY, "discriminative_weight": 0.3},
    }


# -- one definition of the family -----------------------------------------------------------


def test_the_gpt2_family_is_its_training_objective():
    assert build_model(GPT2Params()).family == "generative"
    assert build_model(GPT2Params(generative_weight=0, discriminative_weight=1)).family == "discriminative"
    assert build_model(GPT2Params(discriminative_weight=0.3)).family == "hybrid"
    assert GPT2Params(generative_weight=0, discriminative_weight=3).objective == "discriminative"


def test_capabilities_are_read_from_the_configured_instance():
    complement = build_model(NaiveBayesParams(variant="complement"))
    assert complement.family == "discriminative" and not complement.can("prior_replaceable")
    assert complement.can("launchable")  # narrowing the generative capabilities leaves the rest
    stack = build_model(StackParams(members={"naive_bayes": NaiveBayesParams(), "gpt2": GPT2Params()}))
    assert not stack.can("launchable") and stack.family == "hybrid" and stack.pair_kind is None
    assert build_model(GPT2Params()).can("epoch_trained") and not complement.can("epoch_trained")
    assert build_model(DistilBertParams(init="scratch")).pair_kind == "scratch"
    assert build_model(DistilBertParams()).pair_kind == "pretrained"
    assert build_model(GPT2Params(checkpoint="gpt2")).pair_kind == "pretrained"
    assert build_model(GPT2Params(discriminative_weight=0.3)).pair_kind is None


def test_fake_runs_ask_the_registry_for_each_family(tmp_path):
    from nlpgd.testing import make_run

    run = make_run(tmp_path, models=("naive_bayes", "logreg", "distilbert", "gpt2"), seeds=(0,), n_test=50, n_val=50)
    costs = json.loads((run / "costs.json").read_text())
    families = {m: c["seed0"]["family"] for m, c in costs.items()}
    assert families == {
        "naive_bayes": "generative",
        "logreg": "discriminative",
        "distilbert": "discriminative",
        "gpt2": "generative",
    }


# -- the continuum pair -------------------------------------------------------------------


def test_the_continuum_pair_comes_first_and_the_hybrids_stay_reference_rows(tmp_path):
    cfg = load_config(tiny_config(tmp_path, continuum_models()))
    pairs, reference, notes = P.resolve_pairs(cfg, ExperimentGrid())
    assert [(p.kind, p.generative, p.discriminative) for p in pairs] == [
        ("continuum", "gpt2", "gpt2_posterior"),
        ("linear", "naive_bayes", "logreg"),
        ("scratch", "gpt2", "distilbert"),
    ]
    assert reference == ["gpt2_hybrid"] and not notes


def test_a_continuum_pair_needs_everything_but_the_objective_equal(tmp_path):
    models = continuum_models()
    models["gpt2_posterior"]["epochs"] = 2  # a different schedule: no longer the objective alone
    cfg = load_config(tiny_config(tmp_path, models))
    pairs, reference, _ = P.resolve_pairs(cfg, ExperimentGrid())
    assert "continuum" not in [p.kind for p in pairs] and "gpt2_posterior" in reference


def test_a_configured_pair_may_be_the_continuum_pair(tmp_path):
    cfg = load_config(tiny_config(tmp_path, continuum_models()))
    grid = ExperimentGrid(pairs=[PairSpec(generative="gpt2", discriminative="gpt2_posterior")])
    pairs, reference, _ = P.resolve_pairs(cfg, grid)
    assert [p.members for p in pairs] == [("gpt2", "gpt2_posterior")] and "gpt2_hybrid" in reference
    with pytest.raises(NlpgdError, match="model 'gpt2_hybrid' is a hybrid"):
        P.resolve_pairs(cfg, ExperimentGrid(pairs=[PairSpec(generative="gpt2_hybrid", discriminative="logreg")]))


# -- pairs on identical data ----------------------------------------------------------------


def test_members_that_differ_in_data_are_not_paired(tmp_path):
    models = continuum_models()
    models["gpt2"]["max_train_per_class"] = 20
    cfg = load_config(tiny_config(tmp_path, models))
    pairs, _, notes = P.resolve_pairs(cfg, ExperimentGrid())
    assert "scratch" not in [p.kind for p in pairs]
    assert any("gpt2 and distilbert train on different data" in n and "max_train_per_class 20" in n for n in notes)
    with pytest.raises(NlpgdError, match=r"'experiment.pairs.0': the members train on different data"):
        P.resolve_pairs(cfg, ExperimentGrid(pairs=[PairSpec(generative="gpt2", discriminative="distilbert")]))


@pytest.mark.parametrize(
    "pair, message",
    [
        (
            {"generative": "gpt2", "discriminative": "bert"},
            "config key 'experiment.pairs.0.discriminative': no model 'bert' in models",
        ),
        ({"generative": "gpt2", "discriminative": "distilbert"}, "the members train on different data"),
    ],
)
def test_a_bad_configured_pair_is_one_sentence_and_exit_2(tmp_path, pair, message):
    models = continuum_models()
    models["gpt2"]["max_train_per_class"] = 20
    path = tiny_config(tmp_path, models, pairs=[pair])
    out = tmp_path / "out"
    r = runner.invoke(app, ["experiment", "learning-curve", str(path), "--output-dir", str(out), "--quiet"])
    assert r.exit_code == 2, r.output
    assert message in r.stderr and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert not out.exists()


# -- a new neural type pairs with no edit to the plan -----------------------------------------


class TinyEncoderParams(DistilBertParams):
    type: Literal["tiny_encoder"] = "tiny_encoder"


class TinyEncoderClassifier(DistilBertClassifier):
    """A new discriminative neural type, defined and registered only here."""

    params_class = TinyEncoderParams


@pytest.fixture
def tiny_encoder(monkeypatch):
    monkeypatch.setitem(REGISTRY, "tiny_encoder", REGISTRY["distilbert"])  # replaced by register() below
    register(TinyEncoderParams, f"{__name__}:TinyEncoderClassifier")
    return TinyEncoderParams(**{**TinyEncoderParams.smoke, "epochs": 1})


def test_a_new_neural_type_pairs_in_the_claims_plan_and_runs_in_compare(tmp_path, tiny_encoder):
    from nlpgd.experiments.claims.learning_curve import plan as lc_plan
    from nlpgd.experiments.claims.runner import Design
    from nlpgd.experiments.compare import compare

    base = load_config(tiny_config(tmp_path, {"naive_bayes": {}, "gpt2": dict(GPT2_TINY)}))
    cfg = base.model_copy(update={"models": {**base.models, "encoder": tiny_encoder}})
    pairs, reference, _ = P.resolve_pairs(cfg, ExperimentGrid())
    assert [(p.kind, p.generative, p.discriminative) for p in pairs] == [("scratch", "gpt2", "encoder")]
    assert reference == ["naive_bayes"]
    d = Design(cfg, ExperimentGrid(), pairs, reference, {"main": None})
    d.usable_sizes = lambda sizes, what, key: (sizes, [])  # no data needed to plan
    assert "n16/encoder/seed0" in lc_plan(d).cells
    run = compare(
        cfg.model_copy(update={"models": {"encoder": tiny_encoder}, "output_dir": str(tmp_path)}), progress=False
    )
    costs = json.loads((run / "costs.json").read_text())
    assert costs["encoder"]["seed0"]["family"] == "discriminative"


# -- the compute and hybrids claims -----------------------------------------------------------


def _design(tmp_path, models, seeds=(0, 1, 2)):
    from nlpgd.experiments.claims.runner import Design

    cfg = load_config(tiny_config(tmp_path, models)).model_copy(update={"seeds": list(seeds)})
    grid = ExperimentGrid(reference_seeds=[0])
    pairs, reference, notes = P.resolve_pairs(cfg, grid)
    return Design(cfg, grid, pairs, reference, {"main": None}, notes)


@pytest.mark.parametrize("gen_seconds, expected", [(9.0, "held"), (0.01, "did not hold"), (1.02, "equivalent")])
def test_compute_favours_the_member_that_trains_in_fewer_seconds(tmp_path, gen_seconds, expected):
    from nlpgd.experiments.claims import compute
    from nlpgd.experiments.claims.measure import Store

    d = _design(tmp_path, {"naive_bayes": {}, "logreg": {}})
    costs = {
        f"full/{m}": {f"seed{s}": {"train_seconds": sec + 0.01 * s, "predict_seconds_per_1000": 0.1} for s in d.seeds}
        for m, sec in (("naive_bayes", gen_seconds), ("logreg", 1.0))
    }
    (tmp_path / "costs.json").write_text(json.dumps(costs))
    found = compute._findings(d, Store(tmp_path))
    seconds = [f for f in found if f["metric"] == "train_seconds"]
    assert len(seconds) == 1 and seconds[0]["favoured"] == "logreg" and seconds[0]["verdict"] == expected


def test_hybrids_are_set_against_the_ends_they_combine(tmp_path):
    from nlpgd.experiments.claims import hybrids

    models = {**continuum_models(), "stack": {"members": ["naive_bayes", "logreg"], "folds": 2}}
    d = _design(tmp_path, models)
    assert hybrids.hybrids(d) == ["gpt2_hybrid", "stack"]
    assert hybrids.ends(d, "gpt2_hybrid") == ("gpt2", "gpt2_posterior")
    assert hybrids.ends(d, "stack") == ("naive_bayes", "logreg")
    cells = hybrids.plan(d).cells
    assert {"full/gpt2_hybrid/seed0", "full/gpt2/seed0", "full/gpt2_posterior/seed0", "full/stack/seed0"} <= set(cells)
    assert "full/gpt2_hybrid/seed1" not in cells  # a hybrid is a reference row: its seeds only
    assert "dropout-0.5" in cells["full/gpt2/seed0"].evals
    # label fidelity: samples from every model of the continuum, none from the stack (it cannot generate)
    assert {"fidelity"} <= set(cells["full/gpt2_posterior/seed0"].evals) and "fidelity" in cells[
        "full/gpt2/seed0"
    ].evals
    assert "fidelity" not in cells["full/stack/seed0"].evals


def test_fake_runs_of_every_registered_type_have_its_family(tmp_path):
    from nlpgd.testing import make_run

    run = make_run(tmp_path, models=("stack", "gpt2"), seeds=(0,), n_test=30, n_val=30, record_metrics=False)
    costs = json.loads((run / "costs.json").read_text())
    assert costs["stack"]["seed0"]["family"] == "hybrid" and costs["gpt2"]["seed0"]["family"] == "generative"
