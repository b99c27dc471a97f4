"""`nlpgd experiment`: every claims experiment end to end on the tiny fixture, resume, the
same numbers from the same config and seed, and bad input as one sentence with exit 2."""

import json
import logging
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from nlpgd import stats
from nlpgd.cli import app
from nlpgd.config import EXPERIMENT_NAMES, ExperimentGrid, PairSpec, load_config
from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims import plan as P
from nlpgd.experiments.claims.runner import Design
from nlpgd.report.verdict import EQUIVALENT, HELD, INCONCLUSIVE, NOT_HELD, VERDICTS, judge, verdict
from nlpgd.runs import read_predictions

from conftest import REPO, TINY_CFG, TINY_CSV

runner = CliRunner()
# a trimmed grid: every experiment in seconds on the 140-message fixture
TRIM = [
    "experiment.learning_curve.sizes=[16, full]",
    "experiment.min_examples_seen=0",
    "experiment.bootstrap=200",
    "experiment.robustness.strengths=[0, 0.4]",
    "experiment.missing_words.dropout=[0.5]",
    "experiment.missing_words.truncation=[5]",
    "experiment.augmentation.real_sizes=[32]",
]


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def linear_config(
    tmp_path: Path, models=("naive_bayes", "logreg"), seeds=(0, 1), extra_models=None, **experiment
) -> Path:
    """The tiny fixture with the linear pair only (seconds per experiment), and a cross-domain
    target (the same fixture, so both directions run); ``extra_models`` adds reference rows."""
    cfg = {
        "name": "claims-test",
        "seeds": list(seeds),
        "data": {"source": "csv", "path": str(TINY_CSV), "validation_size": 0.2, "test_size": 0.2},
        "models": {**{m: {} for m in models}, **(extra_models or {})},
        "experiment": {"robustness": {"cross_domain": {"again": {"data": f"csv:{TINY_CSV}"}}}, **experiment},
    }
    path = tmp_path / "linear.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def run_experiment(name: str, config: Path, out: Path, *extra) -> Path:
    sets = [a for s in TRIM for a in ("--set", s)]
    r = invoke("experiment", name, config, "--output-dir", out, "--quiet", *sets, *extra)
    assert r.exit_code == 0, r.output
    return Path(r.output.strip().splitlines()[-1].removeprefix("run folder: "))


def check_report(folder: Path) -> dict:
    """A finished experiment folder: figures, verdict paragraph, self-contained HTML, results."""
    assert (folder / "verdict.md").read_text().count("Verdict: ") == 1
    pngs = list((folder / "figures").glob("*.png"))
    assert pngs and all(p.read_bytes()[:4] == b"\x89PNG" for p in pngs)
    html = (folder / "report.html").read_text()
    assert "data:image/png;base64," in html and 'src="figures' not in html
    results = json.loads((folder / "results.json").read_text())
    assert all(v in VERDICTS for by in results["verdict"]["by_pair"].values() for v in by.values())
    assert results["claim"].endswith(".")
    # a verdict rests on some metric, unless the run had nothing to compare and says why
    assert results["verdict"]["metric"] or (not results["findings"] and results["notes"]), results["notes"]
    return results


def test_help_lists_all_six_and_claims():
    r = invoke("experiment", "--help")
    assert r.exit_code == 0
    for name in (*EXPERIMENT_NAMES, "claims"):
        assert name in r.output, name


@pytest.mark.parametrize("name", EXPERIMENT_NAMES)
def test_each_experiment_runs_end_to_end(name, tmp_path):
    # hybrids needs a hybrid: the stack of the linear pair (its ends), seconds to fit
    extra = {"stack": {"members": ["naive_bayes", "logreg"], "folds": 2}} if name == "hybrids" else None
    folder = run_experiment(name, linear_config(tmp_path, extra_models=extra), tmp_path / "out")
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "complete" and info["kind"] == name and not folder.name.endswith(".partial")
    results = check_report(folder)
    assert results["pairs"] == [
        {
            "label": "linear pair (same word counts): naive_bayes vs logreg",
            "generative": "naive_bayes",
            "discriminative": "logreg",
        }
    ]
    assert not (folder / "models").exists()  # deleted once every eval of its cell was written
    assert not (folder / "progress.json").exists() and not (folder / "evals.json").exists()
    # every verdict paragraph names its metric and is built from the numbers of its findings
    primary = [f for f in results["findings"] if f["metric"] == results["metric"]]
    for f in primary:
        assert f["verdict"] == judge(f["advantage"]["lo"], f["advantage"]["hi"], f["margin"])
        assert f["metric_label"] in results["verdict"]["text"]


def test_robustness_runs_both_directions_and_records_the_perturbations(tmp_path):
    folder = run_experiment("robustness", linear_config(tmp_path), tmp_path / "out")
    for cell, split in (
        ("full/logreg", "on-again"),
        ("xd-again/logreg", "on-main"),
        ("full/naive_bayes", "obfuscate-leet-0.4"),
    ):
        for seed in (0, 1):
            assert (folder / "predictions" / cell / f"seed{seed}.{split}.csv").is_file()
    effects = json.loads((folder / "perturbations.json").read_text())
    assert 0.3 < effects["obfuscate-swap-0.4/seed0"]["words_changed_share"] <= 0.42
    conditions = {f["condition"] for f in json.loads((folder / "results.json").read_text())["findings"]}
    assert {"obfuscation", "tiny_spam.csv to again", "again to tiny_spam.csv"} <= conditions


def test_label_shift_replaces_the_prior_inside_a_generative_model(tmp_path):
    folder = run_experiment("label-shift", linear_config(tmp_path), tmp_path / "out")
    record = json.loads((folder / "predictions/full/naive_bayes/seed0.shift.json").read_text())
    assert record["how"] == "prior replaced"
    assert json.loads((folder / "predictions/full/logreg/seed0.shift.json").read_text())["how"] == "adjusted"
    for q in ("0.01", "0.13", "0.5"):
        base = read_predictions(folder / f"predictions/full/naive_bayes/seed0.shift-{q}-train.csv")
        true = read_predictions(folder / f"predictions/full/naive_bayes/seed0.shift-{q}-true.csv")
        assert abs(base["label"].mean() - float(q)) < 0.1 and base["id"] == true["id"]
        # set_prior inside naive Bayes is Bayes' rule on its log-odds, from the prior they assume
        expected = stats.adjust_to_prior(base["log_odds"], record["assumed_prior"], record[q]["prevalence"])
        assert np.allclose(true["log_odds"], expected, atol=1e-6)


def test_augmentation_keeps_the_samples_and_their_quality_report(tmp_path):
    folder = run_experiment("augmentation", linear_config(tmp_path), tmp_path / "out")
    quality = json.loads((folder / "synthetic/n32/naive_bayes/seed0.jsonl.quality.json").read_text())
    assert quality["generator"] == "n32/naive_bayes/seed0"
    for label in ("ham", "spam"):
        f = quality[label]["filter"]
        assert f["generated"] >= f["kept"] > 0 and 0 <= quality[label]["distinct_2"] <= 1
    rows = (folder / "synthetic/n32/naive_bayes/seed0.jsonl").read_text().splitlines()
    assert len(rows) == quality["ham"]["filter"]["kept"] + quality["spam"]["filter"]["kept"]


def _numbers(folder: Path) -> dict:
    """The numbers of an experiment, without the training seconds of the "what differs" table
    (wall time is not a number the config and seed fix)."""
    r = json.loads((folder / "results.json").read_text())
    tables = [
        {**t, "rows": [row for row in t["rows"] if row[1] != "training seconds"]}
        if t["title"].startswith("What differs")
        else t
        for t in r["tables"]
    ]
    return {"findings": r["findings"], "tables": tables, "figures": r["figures"]}


def test_same_config_and_seed_give_the_same_numbers(tmp_path):
    cfg = linear_config(tmp_path)
    a = run_experiment("learning-curve", cfg, tmp_path / "a")
    b = run_experiment("learning-curve", cfg, tmp_path / "b")
    assert _numbers(a) == _numbers(b)


def test_an_interrupted_run_resumes_cell_by_cell(tmp_path, monkeypatch):
    from nlpgd.experiments.claims import runner

    cfg = linear_config(tmp_path)
    whole = run_experiment("learning-curve", cfg, tmp_path / "whole")
    calls = {"n": 0}
    real_fit = runner.fit_cell

    def flaky(s, cell):
        if not s.done.get(cell.key):
            calls["n"] += 1
            if calls["n"] == 3:
                raise KeyboardInterrupt
        return real_fit(s, cell)

    monkeypatch.setattr(runner, "fit_cell", flaky)
    sets = [a for s in TRIM for a in ("--set", s)]
    r = invoke("experiment", "learning-curve", cfg, "--output-dir", tmp_path / "out", "--quiet", *sets)
    assert r.exit_code == 130 and "2 of 8 fits are saved" in r.output and "--resume" in r.output
    partial = next((tmp_path / "out" / "claims-test" / "learning-curve").glob("*.partial"))
    assert json.loads((partial / "run.json").read_text())["status"] == "running"
    monkeypatch.setattr(runner, "fit_cell", real_fit)
    resumed = run_experiment("learning-curve", cfg, tmp_path / "out", "--resume", partial)
    assert resumed == partial.with_name(partial.name.removesuffix(".partial"))
    assert _numbers(resumed) == _numbers(whole)


def _no_finished_run(out: Path) -> bool:
    return not [p for p in out.rglob("run.json") if '"complete"' in p.read_text()] if out.exists() else True


@pytest.mark.parametrize(
    "name, overrides, message",
    [
        ("learning-curves", [], "unknown experiment 'learning-curves'; choose one of learning-curve"),
        ("missing-words", ["experiment.missing_words.dropout=[0.2, 1.0]"], "dropout rate 1 is out of range"),
        ("label-shift", ["experiment.label_shift.prevalences=[0, 0.5]"], "prevalence 0 is out of range"),
        ("learning-curve", ["experiment.learning_curve.sizes=[0, 16]"], "training size 0 is out of range"),
        ("learning-curve", ["experiment.learning_curve.sizes=[5000]"], "every training size (5000) is larger"),
        ("robustness", ["experiment.robustness.cross_domain.x.data=csv:/no/such.csv"], "cannot be loaded"),
        ("augmentation", ["experiment.augmentation.generator=logreg"], "model 'logreg' cannot generate"),
        ("robustness", ["experiment.margins.roc_auc=0"], "'experiment.margins.roc_auc': margin 0 is out of range"),
        ("calibration", ["experiment.margins.cost=-0.1"], "'experiment.margins.cost': margin -0.1 is out of range"),
        ("learning-curve", ["seeds=[0]"], "config key 'seeds': a claims verdict needs at least 2 seeds"),
    ],
)
def test_bad_input_is_one_sentence_and_exit_2(tmp_path, name, overrides, message):
    out = tmp_path / "out"
    sets = [a for s in overrides for a in ("--set", s)]
    r = invoke("experiment", name, linear_config(tmp_path), "--output-dir", out, "--quiet", *sets)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    assert _no_finished_run(out) and not out.exists()  # nothing is written before the input is checked


def test_augmentation_without_a_generative_model_is_an_error(tmp_path):
    cfg = linear_config(tmp_path, models=("logreg",))
    r = invoke("experiment", "augmentation", cfg, "--output-dir", tmp_path / "out", "--quiet")
    assert r.exit_code == 2 and "augmentation needs a generative model that can generate text" in r.stderr
    assert not (tmp_path / "out").exists()


def test_a_size_larger_than_the_train_split_is_skipped_with_a_note(tmp_path):
    folder = run_experiment(
        "learning-curve",
        linear_config(tmp_path),
        tmp_path / "out",
        "--set",
        "experiment.learning_curve.sizes=[16, 5000]",
    )
    notes = json.loads((folder / "results.json").read_text())["notes"]
    assert any("training size 5000 is larger than the train split" in n for n in notes)


def test_an_optional_target_that_cannot_be_loaded_is_skipped_with_a_note(tmp_path, caplog):
    cfg = linear_config(tmp_path)
    data = yaml.safe_load(cfg.read_text())
    data["experiment"]["robustness"]["cross_domain"] = {
        "sms": {"data": {"source": "hub", "name": "ucirvine/sms_spam", "text_column": "sms"}, "optional": True}
    }
    cfg.write_text(yaml.safe_dump(data))
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        folder = run_experiment("robustness", cfg, tmp_path / "out")
    notes = json.loads((folder / "results.json").read_text())["notes"]
    assert any(n.startswith("cross-domain target 'sms' skipped") for n in notes)
    said = [r.getMessage() for r in caplog.records if "cross-domain target 'sms' skipped" in r.getMessage()]
    assert len(said) == 1, said  # said once in the log, not as a warning and again as a note


def test_augmentation_with_the_gpt2_generator(tmp_path):
    """The neural generator path (fit, save, reload, sample, filter by its own posterior) at toy size."""
    cfg = linear_config(tmp_path, models=("gpt2", "logreg"), seeds=(0, 1))
    smoke = ["n_layer=1", "n_embd=32", "n_head=2", "vocab_size=300", "n_positions=32", "max_length=32", "epochs=1"]
    sets = [a for s in smoke for a in ("--set", f"models.gpt2.{s}")]
    folder = run_experiment(
        "augmentation", cfg, tmp_path / "out", *sets, "--set", "experiment.augmentation.max_new_tokens=16"
    )
    quality = json.loads((folder / "synthetic/n32/gpt2/seed0.jsonl.quality.json").read_text())
    assert quality["sampling"]["max_new_tokens"] == 16 and quality["spam"]["filter"]["kept"] > 0
    assert "generator: gpt2; classifiers: logreg" in json.loads((folder / "results.json").read_text())["notes"]


# -- every model type, all six at once: the claims page (slow: ~40 s of CPU) ---------------


@pytest.fixture(scope="module")
def claims_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("claims")
    return run_experiment("claims", TINY_CFG, out, "--set", f"data.path={TINY_CSV}", "--set", "seeds=[0, 1]")


@pytest.mark.slow
def test_claims_writes_one_page_with_every_verdict(claims_run):
    page = (claims_run / "claims.md").read_text()
    summary = json.loads((claims_run / "results.json").read_text())
    assert [c["experiment"] for c in summary["claims"]] == list(EXPERIMENT_NAMES)
    for c in summary["claims"]:
        assert c["verdict"]["headline"] in page and f"#claim-{c['experiment']}" in page
        assert c["claim"] in page and c["wall_seconds"] is not None
        check_report(claims_run / c["experiment"])
    assert page.count("![") == len(EXPERIMENT_NAMES)  # one figure per claim
    assert "data:image/png;base64," in (claims_run / "claims.html").read_text()


@pytest.mark.slow
def test_claims_share_fits_between_experiments(claims_run):
    costs = json.loads((claims_run / "costs.json").read_text())
    # learning curve, calibration, robustness, missing words and label shift share the full fits
    assert set(costs) >= {"full/gpt2", "full/distilbert", "n16/gpt2", "n32/gpt2", "aug-r32-mix/distilbert"}
    assert all(len(by_seed) == 2 for by_seed in costs.values())  # one fit per cell and seed
    # the generator of the augmentation is the GPT-2 arm, and the GPT-2 prior is replaced in the model
    assert json.loads((claims_run / "predictions/full/gpt2/seed0.shift.json").read_text())["how"] == "prior replaced"
    assert (claims_run / "synthetic/n32/gpt2/seed0.jsonl").is_file()
    table = (claims_run / "learning-curve" / "report.md").read_text()
    assert "neural pair, from scratch: gpt2 vs distilbert" in table and "within 20%" in table


@pytest.mark.slow
def test_claims_give_the_same_numbers_again(claims_run, tmp_path):
    again = run_experiment("claims", TINY_CFG, tmp_path, "--set", f"data.path={TINY_CSV}", "--set", "seeds=[0, 1]")
    for name in EXPERIMENT_NAMES:
        if name == "compute":  # its numbers are measured seconds and throughput: wall time, not fixed by the seed
            continue
        assert _numbers(claims_run / name) == _numbers(again / name), name


# -- pieces -------------------------------------------------------------------------------


def test_pairs_are_found_by_type_and_the_rest_are_reference_rows():
    cfg = load_config(TINY_CFG)
    pairs, reference, notes = P.resolve_pairs(cfg, ExperimentGrid())
    assert [(p.generative, p.discriminative, p.kind) for p in pairs] == [
        ("naive_bayes", "logreg", "linear"),
        ("gpt2", "distilbert", "scratch"),
    ]
    assert reference == ["stack"] and not notes
    default = load_config(REPO / "configs" / "default.yaml")
    pairs, reference, _ = P.resolve_pairs(default, ExperimentGrid())
    assert [p.kind for p in pairs] == ["linear"] and reference == ["distilbert", "gpt2", "gpt2_hybrid"]


def test_a_hybrid_is_never_a_pair_member():
    cfg = load_config(TINY_CFG, ["models.gpt2.discriminative_weight=1.0"])
    pairs, reference, _ = P.resolve_pairs(cfg, ExperimentGrid())
    assert [p.kind for p in pairs] == ["linear"] and "gpt2" in reference
    with pytest.raises(NlpgdError, match="model 'gpt2' is a hybrid"):
        P.resolve_pairs(cfg, ExperimentGrid(pairs=[PairSpec(generative="gpt2", discriminative="distilbert")]))


def test_a_configured_pair_must_name_a_generative_and_a_discriminative_model():
    cfg = load_config(TINY_CFG)
    with pytest.raises(NlpgdError, match="'experiment.pairs.0.generative': model 'logreg' is discriminative"):
        P.resolve_pairs(cfg, ExperimentGrid(pairs=[PairSpec(generative="logreg", discriminative="naive_bayes")]))
    with pytest.raises(NlpgdError, match="no model 'bert'"):
        P.resolve_pairs(cfg, ExperimentGrid(pairs=[PairSpec(generative="gpt2", discriminative="bert")]))


def test_cells_asked_for_twice_are_one_fit_with_both_evals():
    a, b = P.Plan(), P.Plan()
    a.add(P.size_set("full"), "gpt2", 0, [P.text_eval(("dropout", 0.5))])
    b.add(P.size_set("full"), "gpt2", 0, [P.shift_eval([0.5])])
    b.add(P.synthetic_set(32, "mix", "gpt2"), "logreg", 0)
    b.add(P.size_set(32), "gpt2", 0, [P.GENERATE])
    merged = P.Plan().merge(a).merge(b)
    assert len(merged) == 3 and set(merged.cells["full/gpt2/seed0"].evals) == {"dropout-0.5", "shift"}
    order = [c.key for c in merged.ordered()]
    assert order.index("n32/gpt2/seed0") < order.index("aug-r32-mix/logreg/seed0")


def test_verdicts_from_intervals():
    m = 0.005
    assert judge(0.01, 0.2, m) == HELD and judge(-0.3, -0.01, m) == NOT_HELD and judge(-0.1, 0.1, m) == INCONCLUSIVE
    assert judge(-0.004, 0.003, m) == EQUIVALENT and judge(0.001, 0.004, m) == EQUIVALENT
    assert judge(0.001, 0.006, m) == HELD and judge(-0.003, 0.006, m) == INCONCLUSIVE
    assert judge(None, None, m) == INCONCLUSIVE
    with pytest.raises(ValueError, match="margin must be positive"):
        judge(0.01, 0.2, 0.0)

    def f(metric, lo, hi):
        adv = {"mean": (lo + hi) / 2, "lo": lo, "hi": hi, "n_seeds": 5}
        return {
            "pair": "linear pair (same word counts): a vs b",
            "favoured": "a",
            "other": "b",
            "metric": metric,
            "metric_label": metric.upper(),
            "statistic": "s",
            "better": "higher",
            "favoured_value": {"mean": 0.9},
            "other_value": {"mean": 0.8},
            "advantage": adv,
            "margin": m,
            "verdict": judge(lo, hi, m),
            "condition": None,
        }

    v = verdict([f("f1", 0.01, 0.2)], [f("roc_auc", -0.2, -0.01)])
    assert v["headline"] == "held for the linear pair" and "on F1" in v["text"]
    assert "Metrics disagree for linear pair" in v["text"] and "did not hold on ROC_AUC" in v["text"]
    assert v["warning"] is None
    assert verdict([])["headline"].startswith(INCONCLUSIVE)


def test_small_training_sets_are_repeated_for_trainer_models_only():
    from nlpgd.experiments.claims.runner import repeat_small
    from nlpgd.params import GPT2Params, NaiveBayesParams

    texts, labels = ["a", "b"] * 8, ["ham", "spam"] * 8
    assert repeat_small(NaiveBayesParams(), texts, labels, 1600)[2] == 1
    t, y, r = repeat_small(GPT2Params(epochs=2), texts, labels, 1600)
    assert r == 50 and len(t) == len(y) == 800


def test_subsets_differ_per_seed_and_are_stratified():
    from nlpgd.experiments.claims.runner import subset_indices

    labels = ["spam"] * 30 + ["ham"] * 70
    a, b = subset_indices(labels, 20, 0), subset_indices(labels, 20, 1)
    assert a == subset_indices(labels, 20, 0) and a != b and len(a) == 20
    assert sum(labels[i] == "spam" for i in a) == 6


def test_shipped_claims_configs_load():
    for name in ("claims.yaml", "claims_sms.yaml", "claims_full.yaml"):
        cfg = load_config(REPO / "configs" / name)
        assert cfg.experiment is not None and len(cfg.seeds) >= 3


def test_deterministic_members_train_on_their_own_90_percent_per_seed():
    """Naive Bayes and logistic regression are functions of their data: on a whole train split
    each seed draws its own stratified 90% (the same for both members of the pair); a pair of
    seed-dependent models trains on all of it."""
    from types import SimpleNamespace

    from nlpgd.experiments.claims.runner import seed_share, training_data
    from nlpgd.experiments.compare import Splits

    cfg = load_config(TINY_CFG, ["seeds=[0, 1]"])
    pairs, reference, _ = P.resolve_pairs(cfg, ExperimentGrid())
    labels = ["spam"] * 30 + ["ham"] * 70
    texts = [f"message {i}" for i in range(100)]
    data = {P.MAIN: Splits(texts={"train": texts}, labels={"train": labels}, ids={}, y={})}
    d = Design(cfg, ExperimentGrid(), pairs, reference, data)
    assert seed_share(d, "logreg") == seed_share(d, "naive_bayes") == 0.9
    assert seed_share(d, "gpt2") == seed_share(d, "distilbert") == 1.0
    s = SimpleNamespace(design=d)
    full = P.TrainSet(P.FULL)
    a, la = training_data(s, full, 0, "logreg")
    assert len(a) == 90 and la.count("spam") == 27
    assert training_data(s, full, 0, "naive_bayes") == (a, la)
    assert training_data(s, full, 1, "logreg")[0] != a
    assert len(training_data(s, full, 0, "gpt2")[0]) == 100
    assert len(training_data(s, P.size_set(32), 0, "logreg")[0]) == 32


def test_a_cells_evals_say_once_how_many_texts_were_cut_naming_the_cell(tmp_path, caplog):
    """The robustness evals score each cell's model on several sets: one line per cell, naming
    the cell, for the texts cut to the model's length (it was one unnamed line per set)."""
    tiny = yaml.safe_load(TINY_CFG.read_text())["models"]["distilbert"]
    cfg = linear_config(tmp_path, extra_models={"distilbert": {**tiny, "max_length": 12, "epochs": 1}})
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        run_experiment("robustness", cfg, tmp_path / "out")
    said = [r.getMessage() for r in caplog.records if "truncated" in r.getMessage() and "distilbert" in r.getMessage()]
    evals = [line for line in said if " evaluation texts " in line]
    assert not [line for line in said if " scored texts " in line], said
    assert [line.split(":")[0] for line in evals] == ["full/distilbert/seed0", "full/distilbert/seed1"], said
