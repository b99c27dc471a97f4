"""The command line through Typer's CliRunner: the happy path on the tiny fixture, and
bad input as one line on stderr with a non-zero exit and no finished-looking run folder."""

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlpgd.cli import app
from nlpgd.config import load_config

from conftest import REPO

runner = CliRunner()
TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"
TINY_CFG = REPO / "configs" / "smoke" / "tiny.yaml"
TINY_MODELS = list(load_config(TINY_CFG).models)  # every registered type (tests/test_config.py checks)


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_help_on_every_command():
    for cmd in ("compare", "data", "classify", "evaluate", "report", "generate", "fetch"):
        r = invoke(cmd, "--help")
        assert r.exit_code == 0 and "Usage" in r.output, cmd


def test_compare_writes_a_complete_run(tiny_run):
    info = json.loads((tiny_run / "run.json").read_text())
    assert info["status"] == "complete" and not tiny_run.name.endswith(".partial")
    import torch
    import transformers

    assert (
        info["packages"]["torch"] == torch.__version__ and info["packages"]["transformers"] == transformers.__version__
    )
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    assert set(metrics) == set(TINY_MODELS)
    for name in metrics:
        for split in ("validation", "test"):
            assert (tiny_run / "predictions" / name / f"seed0.{split}.csv").is_file()
        assert (tiny_run / "models" / name / "seed0").is_dir()
    # the fixture's classes use different words: naive Bayes must get them (nearly) all
    assert metrics["naive_bayes"]["seed0"]["test"]["accuracy"] >= 0.9
    report = (tiny_run / "report.md").read_text()
    assert "naive_bayes" in report and "gpt2" in report and "distilbert" in report
    manifest = json.loads((tiny_run / "split_manifest.json").read_text())
    ids = [row[0] for rows in manifest["splits"].values() for row in rows]
    assert len(ids) == len(set(ids)) == 140  # every fixture message in exactly one split


def test_classify_prints_label_and_probability(tiny_run):
    r = invoke(
        "classify",
        tiny_run,
        "WINNER! Claim your free cash prize now, call 87121",
        "Running late, see you at lunch tomorrow",
        "--model",
        "naive_bayes",
        "--json",
    )
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["label"] for row in rows] == ["spam", "ham"]
    assert rows[0]["prob_spam"] > 0.5 > rows[1]["prob_spam"]


def test_classify_every_model(tiny_run):
    r = invoke("classify", tiny_run, "free prize call now")
    assert r.exit_code == 0, r.output
    for name in (f"{m}/seed0" for m in TINY_MODELS):
        assert name in r.stdout


def test_evaluate_on_another_dataset(copy_run, tmp_path):
    tiny_run = copy_run()
    other = tmp_path / "other.csv"
    other.write_text(
        "body,kind\nFree cash prize call now,1\nsee you at lunch,0\nWIN a holiday txt 80086,1\n"
        "thanks for dinner,0\nclaim your voucher today,1\nmum says hi,0\n"
    )
    r = invoke(
        "evaluate",
        tiny_run,
        "--dataset",
        f"csv:{other}",
        "--set",
        "text_column=body",
        "--set",
        "label_column=kind",
        "--split",
        "all",
        "--name",
        "other",
        "--prior",
        "spam=0.5",
    )
    assert r.exit_code == 0, r.output
    info = json.loads((tiny_run / "evaluations" / "other" / "evaluation.json").read_text())
    assert info["prior"] == {"spam": 0.5, "ham": 0.5} and info["prior_not_applied_to"] == [
        "distilbert/seed0",
        "logreg/seed0",
        "stack/seed0",  # a stack has no class prior of its own to replace
    ]
    assert info["n"] == 6
    assert "naive_bayes/seed0" in r.stdout


def test_report_rebuilds_without_models(tiny_run, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(tiny_run, copy)
    shutil.rmtree(copy / "models")
    (copy / "report.md").unlink()
    r = invoke("report", copy)
    assert r.exit_code == 0, r.output
    assert (copy / "report.md").is_file()


def test_data_command_summarises(tmp_path):
    r = invoke("data", f"csv:{TINY_CSV}")
    assert r.exit_code == 0, r.output
    assert "train" in r.stdout and "spam share" in r.stdout
    r = invoke("data", f"csv:{TINY_CSV}", "--json")
    assert json.loads(r.stdout)["sizes"]["train"] > 0


def _bad_csv(tmp_path, content: bytes) -> Path:
    f = tmp_path / "bad.csv"
    f.write_bytes(content)
    return f


@pytest.mark.parametrize(
    "make_args, message",
    [
        (lambda t: ["compare", t / "missing.yaml"], "not found"),
        (
            lambda t: ["compare", TINY_CFG, "--set", "models.naive_bayes.alfa=1"],
            "unknown config key 'models.naive_bayes.alfa'",
        ),
        (lambda t: ["compare", TINY_CFG, "--set", "models.nb.type=bayes"], "unknown model type 'bayes'"),
        (lambda t: ["compare", TINY_CFG, "--set", f"data.path={t / 'none.csv'}"], "data file not found"),
        (lambda t: ["compare", TINY_CFG, "--set", f"data.path={_bad_csv(t, b'')}"], "data file is empty"),
        (
            lambda t: [
                "compare",
                TINY_CFG,
                "--set",
                f"data.path={_bad_csv(t, b'body,label' + chr(10).encode() + b'x,spam')}",
            ],
            "columns found: body, label",
        ),
        (
            lambda t: [
                "compare",
                TINY_CFG,
                "--set",
                "data.source=hub",
                "--set",
                "data.path=null",
                "--set",
                "data.name=ucirvine/sms_spam",
            ],
            "hub is unreachable",
        ),
        (lambda t: ["compare", TINY_CFG, "--set", f"output_dir={_bad_csv(t, b'x')}"], "cannot write to output folder"),
        (lambda t: ["classify", t, "hello"], "no run.json"),
        (lambda t: ["classify", t / "nope", "hello"], "run folder not found"),
        (lambda t: ["evaluate", t, "--dataset", "ftp:thing"], "neither a YAML file nor SOURCE:LOCATION"),
        (lambda t: ["data", "csv:" + str(_bad_csv(t, b"text,label\nhello,junk\nbye,ham\n"))], "label values 'junk'"),
        (lambda t: ["report", t], "no run.json"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, make_args, message):
    bad_yaml = tmp_path / "broken.yaml"
    bad_yaml.write_text("name: [unclosed\n")
    out = tmp_path / "outputs"
    args = make_args(tmp_path)
    if args[0] == "compare":
        args += (
            ["--output-dir", out, "--quiet"] if not any(str(a).startswith("output_dir=") for a in args) else ["--quiet"]
        )
    r = invoke(*args)
    assert r.exit_code == 2, r.output
    assert message in r.stderr, r.stderr
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert "Traceback" not in r.output
    finished = [p for p in out.rglob("run.json") if '"complete"' in p.read_text()] if out.exists() else []
    assert not finished


def test_invalid_yaml_config(tmp_path):
    bad = tmp_path / "broken.yaml"
    bad.write_text("name: [unclosed\n")
    r = invoke("compare", bad)
    assert r.exit_code == 2 and "not valid YAML at line" in r.stderr


def test_python_cli_py_entry_point():
    import subprocess
    import sys

    r = subprocess.run([sys.executable, str(REPO / "cli.py"), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "compare" in r.stdout


def test_prior_moves_generative_predictions(tiny_run):
    text = "Running late, see you at lunch tomorrow"

    def p_spam(*prior):
        args = ["classify", tiny_run, text, "--json"] + [a for p in prior for a in ("--prior", p)]
        r = invoke(*args)
        assert r.exit_code == 0, r.output
        return {row["model"]: row["prob_spam"] for row in map(__import__("json").loads, r.stdout.splitlines())}

    base, spammy = p_spam(), p_spam("spam=0.999")
    for key in ("naive_bayes/seed0", "gpt2/seed0"):
        assert spammy[key] > base[key], key
    assert spammy["distilbert/seed0"] == base["distilbert/seed0"]  # P(y|x) has no prior to swap


@pytest.mark.parametrize(
    "prior, message",
    [
        (["spam=0.3", "ham=0.3"], "prior must sum to 1"),
        (["junk=1"], "prior names unknown class 'junk'"),
        (["spam"], "--prior takes CLASS=PROBABILITY"),
        (["spam=1.5"], "must lie in [0, 1]"),
    ],
)
def test_bad_prior_is_one_sentence(tiny_run, prior, message):
    r = invoke("classify", tiny_run, "hello", "--model", "gpt2", *[a for p in prior for a in ("--prior", p)])
    assert r.exit_code == 2 and message in r.stderr, r.stderr


def test_interrupted_compare_resumes_without_refitting(tmp_path, monkeypatch):
    from nlpgd.models.base import Classifier
    from nlpgd.models.distilbert import DistilBertClassifier
    from nlpgd.models.gpt2 import GPT2Classifier
    from nlpgd.models.naive_bayes import NaiveBayesClassifier

    def interrupted(self, texts, labels, ctx=None):
        if ctx is not None and ctx.name.startswith("stack/"):  # the stack's own fits of its members
            return Classifier.fit(self, texts, labels, ctx)
        raise KeyboardInterrupt

    base = ["compare", TINY_CFG, "--output-dir", tmp_path, "--quiet", "--set", f"data.path={TINY_CSV}"]
    monkeypatch.setattr(GPT2Classifier, "fit", interrupted)
    r = invoke(*base)
    (partial,) = (tmp_path / "smoke-tiny").iterdir()
    saved = list(TINY_MODELS).index("gpt2")  # the models before it in the config
    assert (
        r.exit_code == 130
        and f"{saved} of {len(TINY_MODELS)} fits are saved" in r.stderr
        and f"--resume {partial}" in r.stderr
    ), r.stderr
    assert partial.name.endswith(".partial")
    assert json.loads((partial / "run.json").read_text())["status"] == "running"
    assert not (partial / "report.html").exists()
    # the finished distilbert fit left no checkpoints behind (keep_work is off by default)
    assert not (partial / "work" / "distilbert").exists()

    r = invoke(*base, "--resume", partial, "--set", "models.naive_bayes.alpha=0.5")
    assert r.exit_code == 2 and "models.naive_bayes.alpha" in r.stderr, r.stderr

    # a run started before a setting existed resumes: the saved config is read at today's defaults
    stored = json.loads((partial / "config.json").read_text())
    del stored["models"]["gpt2"]["discriminative_weight"]
    (partial / "config.json").write_text(json.dumps(stored))

    monkeypatch.undo()
    monkeypatch.setattr(NaiveBayesClassifier, "fit", interrupted)  # finished models must not be refitted
    monkeypatch.setattr(DistilBertClassifier, "fit", interrupted)
    r = invoke(*base, "--resume", partial, "--set", "progress=true")  # display keys may differ on resume
    assert r.exit_code == 0, r.output
    final = partial.with_name(partial.name.removesuffix(".partial"))
    assert json.loads((final / "run.json").read_text())["status"] == "complete"
    assert set(json.loads((final / "metrics.json").read_text())) == set(TINY_MODELS)
    assert not (final / "work").exists() and (final / "models" / "gpt2" / "seed0").is_dir()


def test_classify_tokens_sum_to_the_class_log_likelihood(tiny_run):
    from nlpgd.models.registry import load_model

    text = "WINNER! Claim your free cash prize now"
    r = invoke("classify", tiny_run, text, "--model", "gpt2", "--tokens", "--json")
    assert r.exit_code == 0, r.output
    (row,) = [json.loads(line) for line in r.stdout.splitlines()]
    toks = row["tokens"]
    assert len(toks) > 3 and all(set(t) == {"token", "ham", "spam"} for t in toks)
    gpt2 = load_model(tiny_run / "models" / "gpt2" / "seed0")
    for label in ("ham", "spam"):
        assert sum(t[label] for t in toks) == pytest.approx(float(gpt2.log_likelihood([text], label)[0]), abs=1e-3)
    table = invoke("classify", tiny_run, text, "--tokens")
    assert table.exit_code == 0 and "log P(.|spam)" in table.stdout and "spam - ham" in table.stdout
    assert "no per-token scores for" in table.stderr and "naive_bayes/seed0" in table.stderr
    bad = invoke("classify", tiny_run, text, "--model", "naive_bayes", "--tokens")
    assert bad.exit_code == 2 and "--tokens needs a model with per-token scores" in bad.stderr
