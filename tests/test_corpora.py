"""Several corpora on one claims page (`corpora:` in the config): each corpus's verdicts are
those of a run on it alone, the cross-corpus matrix scores the shared fits on the other
corpora's test splits, and bad input is one sentence with exit 2."""

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import yaml
from test_claims import TRIM, _numbers, run_experiment

from nlpgd.config import EXPERIMENT_NAMES
from nlpgd.runs import read_predictions

from conftest import REPO, TINY_CSV, invoke, one_sentence


def _data(path: Path) -> dict:
    return {"source": "csv", "path": str(path), "validation_size": 0.2, "test_size": 0.2}


@pytest.fixture
def corpora(tmp_path, tiny_corpus) -> dict[str, Path]:
    """Configs of two tiny corpora (the fixture CSV and the generated tiny corpus): both at
    once (``both``) and each alone, with the same models, seeds and grid."""
    texts, labels = tiny_corpus
    second = tmp_path / "second.csv"
    with second.open("w", newline="") as f:
        csv.writer(f).writerows([("text", "label"), *zip(texts, labels)])
    base = {"name": "matrix-test", "seeds": [0, 1], "models": {"naive_bayes": {}, "logreg": {}}}
    sources = {"fixture": TINY_CSV, "second": second}
    configs = {"both": {**base, "corpora": [{"name": n, "data": _data(p)} for n, p in sources.items()]}}
    configs.update({n: {**base, "data": _data(p)} for n, p in sources.items()})
    out = {}
    for name, cfg in configs.items():
        out[name] = tmp_path / f"{name}.yaml"
        out[name].write_text(yaml.safe_dump(cfg))
    return out


def _check_matrix(folder: Path, singles: dict[str, Path]) -> dict:
    """The page's matrix: the diagonal is each single run's own test score, every off-diagonal
    cell was scored from the shared full fits, and every pair has its heat map."""
    summary = json.loads((folder / "results.json").read_text())
    found = summary["matrix"]
    assert found["corpora"] == ["fixture", "second"] and len(found["pairs"]) == 1
    pair = found["pairs"][0]
    for m in ("naive_bayes", "logreg"):
        for i, name in enumerate(found["corpora"]):
            metrics = json.loads((singles[name] / "metrics.json").read_text())[f"full/{m}"]
            alone = np.mean([metrics[f"seed{s}"]["test"]["roc_auc"] for s in (0, 1)])
            assert pair["scores"][m][i][i]["mean"] == pytest.approx(alone, abs=1e-12)
    # a fit on one corpus scored on the other's test split: the very messages of that corpus's own run
    away = read_predictions(folder / "corpora/fixture/predictions/full/logreg/seed1.on-corpus-second.csv")
    theirs = read_predictions(singles["second"] / "predictions/full/logreg/seed1.test.csv")
    assert away["id"] == theirs["id"] and list(away["label"]) == list(theirs["label"])
    assert [f["condition"] for f in pair["findings"]] == ["fixture to second", "second to fixture"]
    assert (folder / "figures" / "matrix-1.png").read_bytes()[:4] == b"\x89PNG"
    page = (folder / "claims.md").read_text()
    assert "Across corpora" in page and "| trained on to tested on |" in page
    return summary


def _same_cells(summary: dict, names: list[str], folder: Path, singles: dict[str, Path], page: bool) -> None:
    """Every claim × corpus cell of the page, and the corpus's whole analysis, equal the run on that corpus alone."""
    cells = {(c["experiment"], c["corpus"]): c for c in summary["claims"]}
    assert list(cells) == [(n, c) for n in names for c in ("fixture", "second")]
    for (name, corpus), c in cells.items():
        alone = singles[corpus] / name if page else singles[corpus]
        mine = folder / "corpora" / corpus / name if page else folder / "corpora" / corpus
        if name == "compute":  # its numbers are measured seconds: wall time, not fixed by the seed
            continue
        assert _numbers(mine) == _numbers(alone), (name, corpus)
        single = json.loads((alone / "results.json").read_text())
        assert c["verdict"] == single["verdict"] and c["key_numbers"] == single["key_numbers"], (name, corpus)


def test_robustness_on_two_corpora_equals_the_single_corpus_runs(corpora, tmp_path):
    folder = run_experiment("robustness", corpora["both"], tmp_path / "both")
    singles = {n: run_experiment("robustness", corpora[n], tmp_path / n) for n in ("fixture", "second")}
    info = json.loads((folder / "run.json").read_text())
    assert info["status"] == "complete" and info["corpora"] == ["fixture", "second"]
    summary = _check_matrix(folder, singles)
    _same_cells(summary, ["robustness"], folder, singles, page=False)
    for corpus in ("fixture", "second"):  # nothing of an unfinished run is left in a corpus's folder
        sub = folder / "corpora" / corpus
        assert json.loads((sub / "run.json").read_text())["status"] == "complete"
        assert not (sub / "progress.json").exists() and not (sub / "models").exists()


@pytest.mark.slow
def test_claims_on_two_corpora_equal_the_single_corpus_runs(corpora, tmp_path):
    folder = run_experiment("claims", corpora["both"], tmp_path / "both")
    singles = {n: run_experiment("claims", corpora[n], tmp_path / n) for n in ("fixture", "second")}
    summary = _check_matrix(folder, singles)
    _same_cells(summary, list(EXPERIMENT_NAMES), folder, singles, page=True)
    page = (folder / "claims.md").read_text()
    assert all(f"#claim-{n}" in page for n in EXPERIMENT_NAMES)
    assert "data:image/png;base64," in (folder / "claims.html").read_text()


def test_an_interrupted_matrix_resumes_in_the_corpus_it_stopped_in(corpora, tmp_path, monkeypatch):
    from nlpgd.experiments.claims import runner

    whole = run_experiment("robustness", corpora["both"], tmp_path / "whole")
    calls = {"n": 0}
    real_fit = runner.fit_cell

    def flaky(s, cell):
        if not s.done.get(cell.key):
            calls["n"] += 1
            if calls["n"] == 6:  # the second corpus's second fit
                raise KeyboardInterrupt
        return real_fit(s, cell)

    monkeypatch.setattr(runner, "fit_cell", flaky)
    sets = [a for s in TRIM for a in ("--set", s)]
    r = invoke("experiment", "robustness", corpora["both"], "--output-dir", tmp_path / "out", "--quiet", *sets)
    partial = next((tmp_path / "out" / "matrix-test" / "robustness").glob("*.partial"))
    # the count covers the whole run: the first corpus's 4 fits and the second's first
    assert r.exit_code == 130 and f"5 of 8 fits are saved in {partial}" in r.output, r.output
    assert f"--resume {partial}" in r.output
    monkeypatch.setattr(runner, "fit_cell", real_fit)
    resumed = run_experiment("robustness", corpora["both"], tmp_path / "out", "--resume", partial)
    mine, again = (json.loads((f / "results.json").read_text()) for f in (whole, resumed))
    assert mine["matrix"]["pairs"] == again["matrix"]["pairs"]
    for corpus in ("fixture", "second"):
        assert _numbers(whole / "corpora" / corpus) == _numbers(resumed / "corpora" / corpus)


def test_two_corpora_with_the_same_name_are_one_sentence(corpora, tmp_path):
    cfg = yaml.safe_load(corpora["both"].read_text())
    cfg["corpora"][1]["name"] = "fixture"
    corpora["both"].write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    r = invoke("experiment", "claims", corpora["both"], "--output-dir", out, "--quiet")
    one_sentence(r, "config key 'corpora'", "two corpora are named 'fixture'")
    assert not out.exists()


@pytest.mark.parametrize(
    "change, fragments",
    [
        (lambda c: c.update(data=c["corpora"][0]["data"]), ["give 'data' (one corpus) or 'corpora'"]),
        (lambda c: c["corpora"][1].update(data="csv:/no/such.csv"), ["corpus 'second'", "/no/such.csv"]),
        (lambda c: c["corpora"][1].update(name="a b"), ["corpus name 'a b' may only use letters"]),
    ],
)
def test_bad_corpora_are_one_sentence(corpora, tmp_path, change, fragments):
    cfg = yaml.safe_load(corpora["both"].read_text())
    change(cfg)
    corpora["both"].write_text(yaml.safe_dump(cfg))
    out = tmp_path / "out"
    one_sentence(invoke("experiment", "robustness", corpora["both"], "--output-dir", out, "--quiet"), *fragments)
    assert not out.exists()


def test_compare_refuses_a_config_of_several_corpora(corpora, tmp_path):
    r = invoke("compare", corpora["both"], "--output-dir", tmp_path / "out", "--quiet")
    one_sentence(r, "'corpora' list and no 'data' section", "only `nlpgd experiment`")


def test_shipped_matrix_configs_name_their_corpora():
    from nlpgd.config import load_config

    sms = load_config(REPO / "configs" / "claims_sms.yaml", ["corpora.0.data.path=/elsewhere/SMSSpamCollection"])
    assert [(c.name, c.data.source) for c in sms.corpora] == [("sms", "uci_sms"), ("spamassassin", "spamassassin")]
    assert sms.corpora[0].data.path == "/elsewhere/SMSSpamCollection" and sms.data is None
    hub = load_config(REPO / "configs" / "claims_hub.yaml")
    assert [(c.name, c.data.name) for c in hub.corpora] == [
        ("sms", "ucirvine/sms_spam"),
        ("enron", "SetFit/enron_spam"),
        ("spamassassin", None),
    ]
    assert hub.corpora[0].data.revision == "refs/convert/parquet" and len(hub.seeds) == 5


def test_the_real_shifts_run_on_the_spamassassin_corpus_only():
    from nlpgd.config import config_from_dict
    from nlpgd.experiments.claims.corpora import corpus_configs

    cfg = config_from_dict(
        {
            "name": "x",
            "seeds": [0, 1],
            "models": {"naive_bayes": {}, "logreg": {}},
            "corpora": [{"name": "csv", "data": f"csv:{TINY_CSV}"}, {"name": "sa", "data": "spamassassin"}],
            "experiment": {"robustness": {"shifts": ["temporal"]}},
        }
    )
    one = corpus_configs(cfg)
    assert one["csv"].experiment.robustness.shifts == [] and one["sa"].experiment.robustness.shifts == ["temporal"]
    assert one["csv"].data.path == str(TINY_CSV) and one["csv"].corpora is None
