"""nlpgd.report / `nlpgd report`: the report is rebuilt from fabricated prediction files
alone (no model anywhere, runs from :func:`nlpgd.testing.make_run`), and bad run folders or
output paths fail in one sentence."""

from __future__ import annotations

import errno
import json
import os
import re
import tempfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nlpgd.cli import app
from nlpgd.io import write_json
from nlpgd.report import analyse, load_run_predictions, render_markdown, write_comparison, write_report
from nlpgd.report.sections import run_blocks
from nlpgd.testing import make_run

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
FIGURE_NAMES = ("roc", "pr", "reliability", "confusion", "scores")
RESAMPLES = 200  # enough for the checks, light on 2 cores
runner = CliRunner()


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """One 3 models x 3 seeds run with its report, shared by the read-only checks below."""
    run = make_run(tmp_path_factory.mktemp("outputs"))
    md = write_report(run, n_resamples=RESAMPLES)
    return run, md


# -- the report of one run ----------------------------------------------------------------


def test_report_builds_from_predictions_alone(built):
    run, md = built
    assert not (run / "models").exists()
    assert md == run / "report.md"
    for f in ("report.md", "report.html", "results.json"):
        assert (run / f).is_file() and (run / f).stat().st_size > 500, f
    text = md.read_text()
    for heading in ("Test metrics", "Operating points", "Calibration", "McNemar", "Costs", "Figures"):
        assert heading in text
    for name in ("naive_bayes", "distilbert", "gpt2"):
        assert name in text
    # the main table: model, family, accuracy, F1, MCC, ROC-AUC with mean ± sd [CI]
    assert "| model | family | accuracy | F1 | MCC | ROC-AUC |" in text
    assert "Data: csv:fixture_spam.csv (data/fixture_spam.csv); train 1000, validation 300" in text
    assert re.search(
        r"\| naive_bayes \(naive_bayes\) \| generative \| 0\.\d{4} ± 0\.\d{4} \[0\.\d{4}, 0\.\d{4}\]", text
    )


def test_every_plot_is_a_real_png(built):
    run, md = built
    text = md.read_text()
    for name in FIGURE_NAMES:
        png = run / "figures" / f"{name}.png"
        assert png.is_file(), name
        data = png.read_bytes()
        assert data[:8] == PNG_SIGNATURE, name
        assert len(data) > 10_000, (name, len(data))
        assert f"(figures/{name}.png)" in text  # linked from report.md


def test_html_is_self_contained(built):
    run, _ = built
    page = (run / "report.html").read_text()
    assert "http:" not in page and "https:" not in page
    assert "<link" not in page and "<script" not in page and "url(" not in page
    srcs = re.findall(r'src="([^"]*)"', page)
    assert len(srcs) == len(FIGURE_NAMES)
    assert all(s.startswith("data:image/png;base64,") for s in srcs)
    assert "<table>" in page and "McNemar" in page


def test_results_json_holds_the_tables(built):
    run, _ = built
    res = json.loads((run / "results.json").read_text())
    assert set(res["models"]) == {"naive_bayes", "distilbert", "gpt2"}
    assert res["run"]["seeds"] == [0, 1, 2]
    assert res["data"]["n_test"] == 300 and res["data"]["n_validation"] == 300
    assert "fixture" in res["context"] and "test 300" in res["context"] and "seeds 0, 1, 2" in res["context"]
    assert res["method"]["bootstrap"]["resamples"] == RESAMPLES
    assert "scipy" in res["method"]["mcnemar"]["library"] and "numpy" in res["method"]["bootstrap"]["library"]
    metrics = json.loads((run / "metrics.json").read_text())
    for name, r in res["models"].items():
        for m in ("accuracy", "f1", "mcc", "roc_auc", "pr_auc", "precision", "recall", "log_loss", "brier", "ece"):
            st = r["metrics"][m]
            assert st["std"] is not None and st["std"] >= 0
            assert st["ci_low"] <= st["ci_high"]
            if m != "ece":  # binned ECE is biased upwards under resampling; its interval may sit above it
                assert st["ci_low"] - 1e-9 <= st["mean"] <= st["ci_high"] + 1e-9, (name, m, st)
            # the point estimates agree with what compare recorded
            recorded = [metrics[name][f"seed{s}"]["test"][m] for s in (0, 1, 2)]
            assert st["mean"] == pytest.approx(np.mean(recorded), abs=1e-10)
        cal = r["calibration"]
        assert len(cal["temperature"]["per_seed"]) == 3
        for k in ("ece", "brier", "log_loss"):
            assert cal["before"][k]["mean"] is not None and cal["after"][k]["mean"] is not None
        targets = [op["target_ham_blocked"] for op in r["operating_points"]]
        assert targets == [0.001, 0.01]
        for op in r["operating_points"]:
            assert 0 <= op["spam_caught"]["mean"] <= 1 and 0 <= op["ham_blocked"]["mean"] <= 1
            # on validation the rule holds by construction
            assert op["validation_ham_blocked"]["mean"] <= op["target_ham_blocked"] + 1e-12
        assert r["costs"]["n_parameters"] > 0 and r["costs"]["device"] == "cpu (2 threads)"
        assert r["costs"]["train_seconds"]["mean"] > 0
    pairs = {(p["model_a"], p["model_b"]) for p in res["mcnemar"]}
    assert pairs == {("naive_bayes", "distilbert"), ("naive_bayes", "gpt2"), ("distilbert", "gpt2")}
    for p in res["mcnemar"]:
        assert set(p["per_seed"]) == {"seed0", "seed1", "seed2"}
        assert p["max_p_value"] == max(v["p_value"] for v in p["per_seed"].values())
    assert set(res["figures"]) == set(FIGURE_NAMES)


def test_one_seed_works_and_says_so(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes", "gpt2"), seeds=(0,), n_test=120, n_val=120)
    write_report(run, n_resamples=RESAMPLES)
    res = json.loads((run / "results.json").read_text())
    acc = res["models"]["gpt2"]["metrics"]["accuracy"]
    assert acc["std"] is None and acc["ci_low"] is not None and acc["ci_high"] is not None
    assert any("no across-seed spread" in n and "a verdict needs at least 2 seeds" in n for n in res["notes"])
    assert any("only 120 messages" in n for n in res["notes"])  # small test set flagged
    text = (run / "report.md").read_text()
    assert "no across-seed spread" in text and "±" not in text.split("## Test metrics")[1].split("##")[0]


def test_partial_run_is_reported_when_compare_asks(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes",), seeds=(0,), n_test=80, n_val=80, status="running")
    assert run.name.endswith(".partial")
    md = write_report(run, partial_ok=True, n_resamples=RESAMPLES)
    assert md == run / "report.md" and md.is_file()
    res = json.loads((run / "results.json").read_text())
    assert res["run"]["run_id"] == "20260101-000000"
    assert res["mcnemar"] == []


def test_plots_carry_labels_legend_and_context(tmp_path):
    from nlpgd.report import figures as plots

    rp = load_run_predictions(make_run(tmp_path, models=("a", "b"), seeds=(0, 1), n_test=100, n_val=100))
    probs = rp.probs["test"]
    ctx = "fixture | csv:fixture_spam.csv | test 100 (15 spam, 85 ham), validation 100 | seeds 0, 1"
    y = rp.labels["test"]
    figs = {
        "roc": plots.roc_figure(y, probs, rp.seeds, ctx),
        "pr": plots.pr_figure(y, probs, rp.seeds, ctx),
        "reliability": plots.reliability_figure(y, probs, probs, rp.seeds, ctx),
        "confusion": plots.confusion_figure(y, probs, rp.seeds, ctx),
        "scores": plots.score_histogram_figure(y, probs, rp.seeds, ctx),
    }
    for name, fig in figs.items():
        assert ctx in fig._suptitle.get_text(), name
        for ax in [a for a in fig.axes if a.get_visible()]:
            assert ax.get_xlabel() and ax.get_ylabel(), name
            if name != "confusion":
                assert ax.get_legend() is not None, name
        plots.save_png(fig, tmp_path / "figs" / f"{name}.png")
    # roc and pr: every model on one axis
    labels = [t.get_text() for t in figs["roc"].axes[0].get_legend().get_texts()]
    assert any(t.startswith("a ") for t in labels) and any(t.startswith("b ") for t in labels)
    png = (tmp_path / "figs" / "roc.png").read_bytes()
    assert png[:8] == PNG_SIGNATURE and b"matplotlib.org" not in png


FILES = {"train": "data/a.csv", "test": "data/b.csv"}


@pytest.mark.parametrize("where", [FILES, str(FILES)], ids=["mapping", "str-of-mapping"])
def test_data_line_names_one_file_per_split(tmp_path, where):
    # data.json's where is a mapping for data.files configs; older runs stored its str()
    run = make_run(tmp_path, models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50, where=where)
    res = analyse(load_run_predictions(run), n_resamples=100)
    assert res["data"]["name"] == "csv"
    text = render_markdown(run_blocks(res, {}))
    assert "Data: csv (train: data/a.csv, test: data/b.csv); train 1000, validation 50" in text
    assert "{" not in text and "'" not in text.split("Data: ")[1].split("\n")[0]
    assert res["context"].startswith("fixture | csv | test 50")


# -- several runs -------------------------------------------------------------------------


def test_comparison_of_two_runs(tmp_path):
    r1 = make_run(
        tmp_path / "o",
        models=("naive_bayes", "gpt2"),
        seeds=(0, 1),
        n_test=100,
        n_val=100,
        experiment="sms",
        run_id="r1",
    )
    r2 = make_run(
        tmp_path / "o",
        models=("distilbert",),
        seeds=(0, 1),
        n_test=100,
        n_val=100,
        experiment="sms",
        run_id="r2",
        data_seed=1,
    )
    out = tmp_path / "cmp"
    md = write_comparison([r1, r2], out, n_resamples=RESAMPLES)
    assert md == out / "report.md"
    res = json.loads((out / "results.json").read_text())
    assert [r["label"] for r in res["runs"]] == ["sms_r1", "sms_r2"]
    assert res["same_test_set"] is True  # same ids and labels: models of both runs are paired
    assert {(p["model_a"], p["model_b"]) for p in res["cross_run_mcnemar"]} == {
        ("sms_r1/naive_bayes", "sms_r2/distilbert"),
        ("sms_r1/gpt2", "sms_r2/distilbert"),
    }
    for label in ("sms_r1", "sms_r2"):
        for name in FIGURE_NAMES:
            assert (out / "figures" / label / f"{name}.png").read_bytes()[:8] == PNG_SIGNATURE
    text = md.read_text()
    assert "Comparison of 2 runs" in text and "sms_r1" in text and "sms_r2" in text
    page = (out / "report.html").read_text()
    assert "http:" not in page and "https:" not in page
    assert all(s.startswith("data:") for s in re.findall(r'src="([^"]*)"', page))
    assert len(re.findall(r'src="', page)) == 2 * len(FIGURE_NAMES)
    # the runs' own folders are untouched
    assert not (r1 / "report.md").exists() and not (r2 / "report.md").exists()


# -- the CLI ------------------------------------------------------------------------------


def test_cli_rewrites_one_run_in_place(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes", "gpt2"), seeds=(0, 1), n_test=100, n_val=100)
    r = invoke("report", run, "--resamples", RESAMPLES)
    assert r.exit_code == 0, r.output
    assert f"report: {run / 'report.md'}" in r.stdout
    for f in ("report.md", "report.html", "results.json", *(f"figures/{n}.png" for n in FIGURE_NAMES)):
        assert (run / f).is_file(), f


def test_cli_puts_runs_side_by_side(tmp_path):
    r1 = make_run(tmp_path / "o", models=("naive_bayes",), seeds=(0,), n_test=100, n_val=100, run_id="r1")
    r2 = make_run(tmp_path / "o", models=("gpt2",), seeds=(0,), n_test=150, n_val=100, run_id="r2")
    out = tmp_path / "side"
    r = invoke("report", r1, r2, "--out", out, "--resamples", RESAMPLES, "-q")
    assert r.exit_code == 0, r.output
    assert (out / "report.md").is_file() and (out / "report.html").is_file()
    res = json.loads((out / "results.json").read_text())
    assert res["same_test_set"] is False and res["cross_run_mcnemar"] == []
    assert "do not share one test set" in (out / "report.md").read_text()


def _one_line_error(r, *fragments):
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr
    for f in fragments:
        assert f in r.stderr, r.stderr
    assert "Traceback" not in r.output


def test_cli_names_missing_prediction_file(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes", "gpt2"), seeds=(0, 1), n_test=50, n_val=50)
    (run / "predictions" / "gpt2" / "seed1.test.csv").unlink()
    _one_line_error(invoke("report", run), "incomplete", "predictions/gpt2/seed1.test.csv")
    assert not (run / "report.md").exists()


def test_cli_names_missing_costs(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50)
    (run / "costs.json").unlink()
    _one_line_error(invoke("report", run), "missing costs.json")


def test_cli_refuses_older_format(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50)
    info = json.loads((run / "run.json").read_text())
    write_json(run / "run.json", {**info, "format": 0})
    _one_line_error(invoke("report", run), "another nlpgd format")


def test_cli_refuses_unfinished_run(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50, status="running")
    _one_line_error(invoke("report", run), "unfinished run")


def test_cli_refuses_mismatched_test_sets(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes", "gpt2"), seeds=(0,), n_test=50, n_val=50)
    path = run / "predictions" / "gpt2" / "seed0.test.csv"
    path.write_text(path.read_text().replace("t3,", "x3,"))
    _one_line_error(invoke("report", run), "predictions/gpt2/seed0.test.csv", "same test messages")


def test_cli_several_runs_need_out(tmp_path):
    r1 = make_run(tmp_path / "o", models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50, run_id="r1")
    r2 = make_run(tmp_path / "o", models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50, run_id="r2")
    _one_line_error(invoke("report", r1, r2), "--out")
    _one_line_error(invoke("report", r1, tmp_path / "nope", "--out", tmp_path / "x"), "run folder not found")


# -- output that cannot be written ---------------------------------------------------------


def _no_temp_files(*roots):
    return [p for root in roots for p in Path(root).rglob("*") if p.name.endswith(".tmp")]


def test_cli_report_into_an_existing_file(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50)
    target = tmp_path / "taken.txt"
    target.write_text("keep me\n")
    _one_line_error(invoke("report", run, "--out", target, "--resamples", 100), f"{target}:", "not a folder")
    other = make_run(tmp_path, models=("gpt2",), seeds=(0,), n_test=50, n_val=50, run_id="r2")
    _one_line_error(invoke("report", run, other, "--out", target, "--resamples", 100), f"{target}:", "not a folder")
    assert target.read_text() == "keep me\n"
    assert not _no_temp_files(tmp_path)


@pytest.mark.skipif(not Path("/proc/self").is_dir(), reason="needs /proc")
@pytest.mark.parametrize("out", [f"/proc/nlpgd-report-{os.getpid()}", "/proc"])
def test_cli_report_under_proc(tmp_path, out):
    run = make_run(tmp_path, models=("naive_bayes",), seeds=(0,), n_test=50, n_val=50)
    _one_line_error(invoke("report", run, "--out", out, "--resamples", 100), f"cannot write {out}")
    assert not _no_temp_files(tmp_path)


@pytest.mark.parametrize("refused", ["os.replace", "tempfile.mkstemp"])
def test_cli_report_on_a_read_only_run(tmp_path, monkeypatch, refused):
    # tests run as root, for whom permissions are not enforced: the system's refusal is simulated
    run = make_run(tmp_path, models=("naive_bayes", "gpt2"), seeds=(0,), n_test=50, n_val=50)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system")

    module, name = refused.split(".")
    monkeypatch.setattr({"os": os, "tempfile": tempfile}[module], name, refuse)
    r = invoke("report", run, "--resamples", 100)
    monkeypatch.undo()
    _one_line_error(r, f"cannot write {run / 'figures' / 'roc.png'}: Read-only file system")
    assert not _no_temp_files(tmp_path)
    assert not (run / "report.md").exists() and not list(run.rglob("*.png"))


# -- the continuum, generated samples and the stack (issue 11) ----------------------------


def _with_settings(run: Path, params: dict, fidelity: dict | None = None) -> Path:
    """Give a fabricated run the config.json compare writes (each model's settings) and, for
    the models in ``fidelity``, sample quality reports ({model: judge fidelity per seed})."""
    from nlpgd.generation import JUDGE, SELF
    from nlpgd.runs import Run, quality_path

    config = {"models": params}
    if fidelity:
        config["generation"] = {"label": "spam", "n": 10}
    write_json(run / "config.json", config)
    for model, per_seed in (fidelity or {}).items():
        for seed, share in enumerate(per_seed):
            report = {"label": "spam", "n_samples": 10, "label_fidelity": {JUDGE: share, SELF: 1.0}}
            report |= {"distinct_1": 0.5, "distinct_2": 0.8 + seed / 100, "copy_share": 0.0, "overlap_8gram_share": 0.1}
            write_json(quality_path(Run(run).generated_path(model, seed, "spam")), report)
    return run


def _gpt2(gw: float, dw: float, **kw) -> dict:
    return {"type": "gpt2", "generative_weight": gw, "discriminative_weight": dw, "epochs": 4, **kw}


def test_continuum_figure_and_tables_for_gpt2_models_differing_in_the_weights(tmp_path):
    models = ("naive_bayes", "gpt2_disc", "gpt2", "gpt2_hybrid")
    run = make_run(tmp_path, models=models, seeds=(0, 1))
    params = {"naive_bayes": {"type": "naive_bayes"}, "gpt2_disc": _gpt2(0, 1), "gpt2": _gpt2(1, 0)}
    params["gpt2_hybrid"] = _gpt2(1, 1, epochs=6)
    _with_settings(run, params, {"gpt2": [0.9, 0.95], "gpt2_hybrid": [0.8, 0.7]})
    md = write_report(run, n_resamples=RESAMPLES)
    res = json.loads((run / "results.json").read_text())
    cont = res["continuum"]
    assert [p["model"] for p in cont["points"]] == ["gpt2", "gpt2_hybrid", "gpt2_disc"]  # by discriminative share
    assert [p["share"] for p in cont["points"]] == [0.0, 0.5, 1.0]
    assert cont["points"][1]["f1"] == res["models"]["gpt2_hybrid"]["metrics"]["f1"]
    assert cont["points"][0]["label_fidelity"]["mean"] == pytest.approx(0.925)
    assert cont["points"][2]["label_fidelity"] is None  # it sampled nothing
    assert cont["other_differences"] == ["epochs"]
    assert res["generation"]["gpt2_hybrid"]["distinct_2"]["per_seed"] == {"seed0": 0.8, "seed1": 0.81}
    text = md.read_text()
    assert "Generative-discriminative continuum" in text and "also differ in: epochs" in text
    assert "| gpt2 | 10 ± 0 | 92.50% ± 3.54% | 100.00% ± 0.00%" in text  # the generated-samples table
    assert (run / "figures" / "continuum.png").read_bytes().startswith(PNG_SIGNATURE)
    assert "figures/continuum.png" in text


def test_no_continuum_without_two_weight_settings(tmp_path):
    run = make_run(tmp_path, models=("naive_bayes", "gpt2"), seeds=(0,))
    _with_settings(run, {"naive_bayes": {"type": "naive_bayes"}, "gpt2": _gpt2(1, 0)})
    write_report(run, n_resamples=RESAMPLES)
    res = json.loads((run / "results.json").read_text())
    assert res["continuum"] is None and res["generation"] == {} and res["stack"] == []
    assert not (run / "figures" / "continuum.png").exists()
    assert "continuum" not in (run / "report.md").read_text().lower()


@pytest.mark.parametrize(
    "order, verdicts", [("last", {"held", "equivalent", "inconclusive"}), ("first", {"did not hold", "inconclusive"})]
)
def test_stack_verdict_against_the_best_single_arm(tmp_path, order, verdicts):
    """The stack's verdict is one of the four words, chosen by report/verdict.judge from the
    interval of the F1 difference and the F1 margin."""
    from nlpgd.report.verdict import judge

    singles = ("naive_bayes", "gpt2")  # make_run: a later model separates the classes better
    models = (*singles, "stack") if order == "last" else ("stack", *singles)
    run = make_run(tmp_path, models=models, seeds=(0, 1))
    stack = {"type": "stack", "members": {m: {"type": m} for m in singles}, "folds": 5}
    _with_settings(run, {"naive_bayes": {"type": "naive_bayes"}, "gpt2": _gpt2(1, 0), "stack": stack})
    write_report(run, n_resamples=RESAMPLES)
    res = json.loads((run / "results.json").read_text())
    (v,) = res["stack"]
    assert v["best_single"] == "gpt2" and v["members"] == list(singles)
    assert v["verdict"] in verdicts
    d = v["f1_difference"]
    assert d["mean"] == pytest.approx(v["stack_f1"]["mean"] - v["best_single_f1"]["mean"])
    assert d["ci_low"] <= d["ci_high"]
    assert v["margin"] == 0.01 and v["verdict"] == judge(d["ci_low"], d["ci_high"], 0.01)
    text = (run / "report.md").read_text()
    assert (
        "Stack against the best single arm" in text and f"stack (members: naive_bayes, gpt2): {v['verdict']}; " in text
    )


def test_the_best_single_arm_is_chosen_on_validation_not_on_test(tmp_path):
    """gpt2 is the better arm on test (make_run: a later model separates better), naive_bayes on
    validation: the stack is compared with naive_bayes, and the page says how it was chosen."""
    from nlpgd.runs import read_predictions, write_predictions

    run = make_run(tmp_path, models=("naive_bayes", "gpt2", "stack"), seeds=(0, 1))
    stack = {"type": "stack", "members": {m: {"type": m} for m in ("naive_bayes", "gpt2")}, "folds": 5}
    _with_settings(run, {"naive_bayes": {"type": "naive_bayes"}, "gpt2": _gpt2(1, 0), "stack": stack})
    for seed in (0, 1):
        path = run / "predictions" / "naive_bayes" / f"seed{seed}.validation.csv"
        pr = read_predictions(path)
        write_predictions(path, pr["id"], pr["label"], 20.0 * (2 * np.asarray(pr["label"]) - 1))  # perfect
    write_report(run, n_resamples=RESAMPLES)
    res = json.loads((run / "results.json").read_text())
    assert res["models"]["gpt2"]["metrics"]["f1"]["mean"] > res["models"]["naive_bayes"]["metrics"]["f1"]["mean"]
    (v,) = res["stack"]
    assert v["best_single"] == "naive_bayes" and v["best_single_validation_f1"] == 1.0
    assert v["best_single_f1"] == res["models"]["naive_bayes"]["metrics"]["f1"]
    text = (run / "report.md").read_text()
    assert "highest mean validation F1" in text and "chosen by its validation F1, 1.0000" in text
    assert "chosen on test" not in text
