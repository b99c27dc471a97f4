"""Sample-quality metrics (pure functions) and the `generate` command on a hand-built run."""

from __future__ import annotations

import json

import numpy as np
import pytest

from nlpgd.errors import NlpgdError
from nlpgd.generation import (
    copy_share,
    distinct_n,
    label_fidelity,
    length_stats,
    ngram_overlap_share,
    sample_quality,
)

from conftest import make_corpus


class Always:
    """A stand-in classifier that predicts one label."""

    def __init__(self, label):
        self.label = label

    def predict(self, texts):
        return np.array([self.label] * len(texts))


def test_distinct_n():
    assert distinct_n(["a b a b"], 1) == pytest.approx(2 / 4)
    assert distinct_n(["a b a b"], 2) == pytest.approx(2 / 3)
    assert distinct_n(["A b", "a B"], 1) == pytest.approx(2 / 4)  # case-insensitive
    assert distinct_n(["a"], 2) == 0.0
    assert distinct_n([], 1) == 0.0


def test_copy_share_is_exact_after_strip():
    train = ["win a prize now", "see you at lunch"]
    assert copy_share(["win a prize now ", "win a prize", "x"], train) == pytest.approx(1 / 3)
    assert copy_share([], train) == 0.0
    # a model trained on lowercased text copies "Win a PRIZE now" as "win a prize now"
    assert copy_share(["win a prize now"], ["Win a PRIZE now"]) == 1.0


def test_ngram_overlap_needs_eight_words():
    train = ["one two three four five six seven eight nine"]
    samples = [
        "zero ONE two three four five six seven eight",  # shares an 8-gram (case-insensitive)
        "one two three four five six seven",  # only 7 words
        "two three four five six seven eight nine ten",  # shares 'two ... nine'
    ]
    assert ngram_overlap_share(samples, train) == pytest.approx(2 / 3)
    assert ngram_overlap_share(samples, train, n=3) == pytest.approx(1.0)


def test_length_and_fidelity():
    assert length_stats(["a b", "a b c d"]) == {"mean": 3.0, "median": 3.0}
    assert length_stats([]) == {"mean": None, "median": None}
    fid = label_fidelity(["x", "y"], {"yes": Always("spam"), "no": Always("ham")}, "spam")
    assert fid == {"yes": 1.0, "no": 0.0}


def test_sample_quality_report():
    train = ["win cash now", "lunch at noon"]
    samples = ["win cash now", "win big cash prize today"]
    q = sample_quality(samples, train, ["win cash now"], {"nb": Always("spam")}, "spam")
    assert q["n_samples"] == 2 and q["n_distinct"] == 2
    assert q["copy_share"] == 0.5
    assert q["overlap_8gram_share"] == 0.0
    assert q["label_fidelity"] == {"nb": 1.0}
    assert q["length_words"]["samples"]["mean"] == 4.0
    assert q["length_words"]["real"]["median"] == 3.0
    json.dumps(q)  # JSON-able


def test_sample_quality_without_training_texts():
    q = sample_quality(["a b"], None, [], None, "spam")
    assert q["copy_share"] is None and q["overlap_8gram_share"] is None
    assert q["notes"] and q["label_fidelity"] == {}
    with pytest.raises(NlpgdError):
        sample_quality([], ["x"], [], None, "spam")


# -- the command ----------------------------------------------------------------------
def _make_run(root, *, gpt2: bool, train_texts: bool = True):
    """A finished run folder laid out as compare writes it, with tiny models."""
    from nlpgd.models.base import FitContext
    from nlpgd.models.gpt2 import GPT2Classifier
    from nlpgd.models.naive_bayes import NaiveBayesClassifier
    from nlpgd.params import GPT2Params

    texts, labels = make_corpus(30, seed=0)
    run = root / "run"
    (run / "models").mkdir(parents=True)
    (run / "run.json").write_text(json.dumps({"format": 1, "status": "complete"}))
    for name in ("config.yaml", "split_manifest.json", "metrics.json"):
        (run / name).write_text("{}\n")
    NaiveBayesClassifier().fit(texts, labels).save(run / "models" / "naive_bayes" / "seed0")
    if gpt2:
        params = GPT2Params(
            n_layer=1,
            n_embd=32,
            n_head=2,
            vocab_size=300,
            n_positions=32,
            max_length=32,
            epochs=2,
            batch_size=8,
            learning_rate=1e-2,
        )
        m = GPT2Classifier(params).fit(texts, labels, FitContext(progress=False))
        m.save(run / "models" / "gpt2" / "seed0")
    if train_texts:
        with (run / "train_texts.jsonl").open("w") as f:
            for i, (t, y) in enumerate(zip(texts, labels)):
                f.write(json.dumps({"id": str(i), "text": t, "label": y}) + "\n")
    return run


@pytest.fixture
def cli(generate_cli):
    return generate_cli


@pytest.fixture(scope="module")
def run_with_gpt2(tmp_path_factory):
    return _make_run(tmp_path_factory.mktemp("gen"), gpt2=True)


def test_generate_command_picks_gpt2(cli, run_with_gpt2, tmp_path):
    out = tmp_path / "spam.jsonl"
    res = cli(run_with_gpt2, "--n", 5, "--seed", 1, "--out", out, "--max-new-tokens", 10)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(rows) == 5 and all(r["label"] == "spam" and r["text"] for r in rows)
    q = json.loads((tmp_path / "spam.jsonl.quality.json").read_text())
    assert q["generator"] == "gpt2/seed0"
    assert set(q["label_fidelity"]) == {"gpt2/seed0", "naive_bayes/seed0"}
    assert q["copy_share"] is not None
    assert not list(tmp_path.glob(".*.tmp"))
    # same seed, same samples
    again = tmp_path / "again.jsonl"
    assert cli(run_with_gpt2, "--n", 5, "--seed", 1, "--out", again, "--max-new-tokens", 10).exit_code == 0
    assert again.read_text() == out.read_text()


def test_generate_command_named_model_and_missing_train_texts(cli, tmp_path):
    run = _make_run(tmp_path, gpt2=False, train_texts=False)
    res = cli(run, "--model", "naive_bayes", "--label", "ham", "--n", 4)
    assert res.exit_code == 0, res.output
    out = run / "generated" / "ham-seed0.jsonl"
    assert len(out.read_text().splitlines()) == 4
    q = json.loads((run / "generated" / "ham-seed0.jsonl.quality.json").read_text())
    assert q["copy_share"] is None and any("train_texts.jsonl" in n for n in q["notes"])


@pytest.mark.parametrize(
    "args, words",
    [
        (["--label", "junk"], "unknown label"),
        (["--n", "0"], "positive"),
        (["--model", "distilbert"], "no model 'distilbert'"),
    ],
)
def test_generate_command_errors_are_one_line(cli, run_with_gpt2, tmp_path, args, words):
    res = cli(run_with_gpt2, "--out", tmp_path / "x.jsonl", *args)
    assert res.exit_code == 2
    assert words in res.output and "Traceback" not in res.output


def test_generate_command_not_a_run(cli, tmp_path):
    res = cli(tmp_path / "nope")
    assert res.exit_code == 2 and "not found" in res.output


def test_generate_command_with_prompts(cli, run_with_gpt2, tmp_path):
    prompts = tmp_path / "prompts.txt"
    prompts.write_text("win cash\n\nfree prize\n")
    out = tmp_path / "p.jsonl"
    res = cli(run_with_gpt2, "--n", 4, "--prompts-file", prompts, "--out", out, "--max-new-tokens", 6)
    assert res.exit_code == 0, res.output
    texts = [json.loads(line)["text"] for line in out.read_text().splitlines()]
    assert len(texts) == 4 and all(t.startswith(("win cash", "free prize")) for t in texts)
    q = json.loads((tmp_path / "p.jsonl.quality.json").read_text())
    assert q["sampling"]["prompts"] == ["win cash", "free prize"]


@pytest.mark.parametrize(
    "content, extra, words",
    [
        ("\n  \n", [], "prompt set is empty: prompts file"),
        (None, [], "does not exist"),
        (None, ["--model", "naive_bayes", "--prompt", "hello"], "cannot continue a prompt"),
    ],
)
def test_generate_command_bad_prompts(cli, run_with_gpt2, tmp_path, content, extra, words):
    args = list(extra)
    if content is not None or not extra:
        path = tmp_path / "prompts.txt"
        if content is not None:
            path.write_text(content)
        args += ["--prompts-file", path]
    res = cli(run_with_gpt2, "--out", tmp_path / "x.jsonl", *args)
    assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "x.jsonl").exists()


def test_compare_samples_from_every_model_that_can_generate(tmp_path, monkeypatch):
    """The config's generation section: samples and their quality report per model and seed,
    in the run folder, read back by the report without loading a model."""
    from nlpgd.config import config_from_dict
    from nlpgd.experiments.compare import compare
    from nlpgd.generation import JUDGE, SELF
    from nlpgd.report import load_run_predictions
    from nlpgd.runs import Run, quality_path

    from conftest import TINY_CSV

    monkeypatch.setattr("nlpgd.report.write_report", lambda *a, **k: None)  # not under test here
    cfg = {
        "name": "gen",
        "seeds": [0, 1],
        "data": {"source": "csv", "path": str(TINY_CSV), "validation_size": 0.2, "test_size": 0.2},
        "generation": {"label": "spam", "n": 6},
        "models": {"naive_bayes": {}, "logreg": {}},
        "output_dir": str(tmp_path),
        "progress": False,
    }
    run = Run(compare(config_from_dict(cfg)))
    for seed in (0, 1):
        samples = run.generated_path("naive_bayes", seed, "spam")
        rows = [json.loads(line) for line in samples.read_text().splitlines()]
        assert len(rows) == 6 and all(r["label"] == "spam" and r["text"] for r in rows)
        quality = json.loads(quality_path(samples).read_text())
        assert quality["n_samples"] == 6 and quality["generator"] == f"naive_bayes/seed{seed}"
        assert set(quality["label_fidelity"]) == {JUDGE, SELF}
    assert not (run.path / "generated" / "logreg").exists()  # it cannot generate
    costs = json.loads((run.path / "costs.json").read_text())
    assert costs["naive_bayes"]["seed0"]["generate_seconds"] > 0 and "generate_seconds" not in costs["logreg"]["seed0"]
    rp = load_run_predictions(run.path)
    assert set(rp.generation) == {"naive_bayes"} and set(rp.generation["naive_bayes"]) == {0, 1}


def test_generation_section_is_checked():
    from nlpgd.config import config_from_dict

    base = {"name": "t", "data": {"source": "csv", "path": "x.csv"}, "models": {"naive_bayes": {}}}
    for bad, key in (({"n": 0}, "generation.n"), ({"label": "junk", "n": 3}, "generation.label"), ({"m": 1}, "m")):
        with pytest.raises(NlpgdError, match=key):
            config_from_dict({**base, "generation": bad})
