"""Sampling settings: one checked type, one set of defaults, one sentence for each bad value
(in the library, from the models' generate and from `nlpgd generate`)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from nlpgd import sampling
from nlpgd.errors import NlpgdError
from nlpgd.sampling import SamplingSettings, check_count

from conftest import make_corpus

BAD = [
    ({"temperature": 0}, "temperature must be positive"),
    ({"temperature": -1.0}, "temperature must be positive"),
    ({"temperature": math.inf}, "temperature must be a finite number"),
    ({"temperature": math.nan}, "temperature must be a finite number"),
    ({"temperature": "hot"}, "temperature must be a finite number"),
    ({"top_k": -1}, "top_k must be >= 0"),
    ({"top_k": 2.5}, "top_k must be a whole number"),
    ({"top_k": True}, "top_k must be a whole number"),
    ({"top_p": 0.0}, r"top_p must lie in \(0, 1\]"),
    ({"top_p": 1.5}, r"top_p must lie in \(0, 1\]"),
    ({"top_p": math.nan}, "top_p must be a finite number"),
    ({"max_new_tokens": 0}, "max_new_tokens must be positive"),
    ({"max_new_tokens": 8.0}, "max_new_tokens must be a whole number"),
    ({"typical_p": 0.0}, r"typical_p must lie in \(0, 1\]"),
    ({"min_p": 1.0}, r"min_p must lie in \[0, 1\)"),
    ({"min_p": -0.1}, r"min_p must lie in \[0, 1\)"),
]


@pytest.mark.parametrize("bad, words", BAD)
def test_bad_settings_are_one_sentence(bad, words):
    with pytest.raises(NlpgdError, match=words) as err:
        SamplingSettings(**bad)
    assert "\n" not in str(err.value)


def test_defaults_and_plain_numbers():
    s = SamplingSettings()
    assert s.as_dict() == {
        **dict(temperature=1.0, top_k=50, top_p=0.95, max_new_tokens=64),
        "typical_p": 1.0,
        "min_p": 0.0,
    }
    t = SamplingSettings(temperature=np.float32(0.5), top_k=np.int64(3), top_p=1, max_new_tokens=np.int32(5))
    assert t.as_dict() == {
        "temperature": 0.5,
        "top_k": 3,
        "top_p": 1.0,
        "max_new_tokens": 5,
        "typical_p": 1.0,
        "min_p": 0.0,
    }
    assert type(t.top_k) is int and type(t.top_p) is float
    with pytest.raises(NlpgdError, match="unknown sampling setting 'topk'"):
        SamplingSettings.from_options({"topk": 5})
    for n in (0, -2, 1.0, True, "3"):
        with pytest.raises(NlpgdError, match="positive integer"):
            check_count(n)


def test_config_sections_and_cli_take_the_one_set_of_defaults():
    import inspect

    from nlpgd.cli.generate import generate
    from nlpgd.config import AugmentationGrid, GenerationConfig

    expected = SamplingSettings().as_dict()
    assert SamplingSettings.of(GenerationConfig()).as_dict() == expected
    assert SamplingSettings.of(AugmentationGrid()).as_dict() == expected
    params = inspect.signature(generate).parameters
    assert {k: params[k].default for k in sampling.FIELDS} == expected


def test_config_refuses_an_infinite_temperature():
    from nlpgd.config import config_from_dict

    base = {"name": "t", "data": {"source": "csv", "path": "x.csv"}, "models": {"naive_bayes": {}}}
    with pytest.raises(NlpgdError, match="generation.temperature"):
        config_from_dict({**base, "generation": {"temperature": math.inf}})


def test_models_check_their_settings():
    from nlpgd.models.naive_bayes import NaiveBayesClassifier

    nb = NaiveBayesClassifier().fit(*make_corpus(20, seed=0))
    with pytest.raises(NlpgdError, match="temperature must be a finite number"):
        nb.generate("spam", 2, temperature=math.inf)


def test_gpt2_generate_checks_its_settings(tmp_path):
    from nlpgd.models.base import FitContext
    from nlpgd.models.gpt2 import GPT2Classifier
    from nlpgd.params import GPT2Params

    p = GPT2Params(n_layer=1, n_embd=16, n_head=2, vocab_size=300, n_positions=32, max_length=32, epochs=1)
    m = GPT2Classifier(p).fit(*make_corpus(20, seed=0), FitContext(seed=0, progress=False))
    for bad, words in [({"temperature": math.inf}, "finite"), ({"top_p": 2.0}, "top_p"), ({"topk": 3}, "unknown")]:
        with pytest.raises(NlpgdError, match=words):
            m.generate("spam", 2, seed=0, progress=False, **bad)
    assert len(m.generate("spam", 2, seed=0, progress=False, max_new_tokens=4)) <= 2


def test_generate_command_refuses_bad_settings_in_one_line(generate_cli, tmp_path):
    res = generate_cli(tmp_path / "no-run", "--temperature", "inf")
    assert res.exit_code == 2 and "temperature must be a finite number" in res.output
    assert "Traceback" not in res.output and len(res.output.strip().splitlines()) == 1


# -- settings chosen on validation realism (nlpgd generate --sampling tune|auto) --------------
def test_sampling_auto_without_a_choice_is_one_sentence(generate_cli, copy_run, tmp_path):
    run = copy_run()
    out = tmp_path / "s.jsonl"
    res = generate_cli(run, "--n", 5, "--out", out, "--sampling", "auto")
    assert res.exit_code == 2 and "has no saved sampling choice" in res.output and "--sampling tune" in res.output
    assert not out.exists() and "Traceback" not in res.output
    res = generate_cli(run, "--n", 5, "--out", out, "--sampling", "guess")
    assert res.exit_code == 2 and "--sampling must be flags, auto or tune" in res.output
    res = generate_cli(run, "--n", 5, "--out", out, "--model", "naive_bayes", "--sampling", "tune")
    assert res.exit_code == 2 and "has none to choose" in res.output and not out.exists()


def test_sampling_grid_reads_validation_only_and_auto_reuses_it(generate_cli, copy_run, tmp_path):
    from nlpgd.experiments.sampling_choice import GRID

    run = copy_run()
    out = tmp_path / "s.jsonl"
    args = ["--n", 12, "--max-new-tokens", 8, "--reference-lm", "none", "--judge", "char"]
    res = generate_cli(run, *args, "--out", out, "--sampling", "tune")
    assert res.exit_code == 0, res.output
    saved = json.loads((run / "sampling_choice.json").read_text())["gpt2/seed0"]["spam"]
    manifest = json.loads((run / "split_manifest.json").read_text())["splits"]
    ids = {s: {str(i) for i, _, y in manifest[s] if y == "spam"} for s in manifest}
    assert set(saved["validation_ids"]) == ids["validation"]  # every validation spam message ...
    assert not set(saved["validation_ids"]) & (ids["test"] | ids["train"])  # ... and nothing else
    assert len(saved["grid"]) == len(GRID) and saved["settings"] in [r["settings"] for r in saved["grid"]]
    assert saved["score"] == min(r["score"] for r in saved["grid"])
    q = json.loads((tmp_path / "s.jsonl.quality.json").read_text())
    assert q["sampling_choice"]["mode"] == "tune" and q["sampling"]["temperature"] == saved["settings"]["temperature"]
    res = generate_cli(run, *args, "--out", tmp_path / "a.jsonl", "--sampling", "auto", "--temperature", 3.0)
    assert res.exit_code == 0, res.output
    q = json.loads((tmp_path / "a.jsonl.quality.json").read_text())
    assert q["sampling_choice"]["mode"] == "auto"
    assert {k: q["sampling"][k] for k in saved["settings"]} == saved["settings"]  # the flags' 3.0 is not used
    assert "sampling (auto" in res.output
