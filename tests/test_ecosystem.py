"""The hooks people expect from a Hugging Face project: `evaluate` as the one metric path (in
memory), Trainer logs (report_to, log history in the model folder), device and precision
settings, model cards, `--version` / `--quiet` / `--verbose` / `--json`, and packaging facts."""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import subprocess
import sys

import numpy as np
import pytest
import tomllib
import yaml

import nlpgd
from nlpgd.errors import NlpgdError

from conftest import REPO, invoke, one_sentence

TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"
CPU_ONLY = not __import__("torch").cuda.is_available()


def tiny_config(tmp_path, **extra) -> str:
    """naive Bayes and a tiny encoder from scratch on the 140-message fixture (seconds)."""
    cfg = {
        "name": "hooks-tiny",
        "seeds": [0],
        "data": {"source": "csv", "path": str(TINY_CSV), "validation_size": 0.2, "test_size": 0.2},
        "models": {
            "naive_bayes": {},
            "distilbert": {
                "init": "scratch",
                "scratch_dim": 32,
                "scratch_layers": 1,
                "scratch_vocab_size": 300,
                "epochs": 2,
                "max_length": 32,
            },
        },
        **extra,
    }
    path = tmp_path / "tiny.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return str(path)


# -- CLI conventions ----------------------------------------------------------------------------
def test_version_prints_the_package_version():
    r = invoke("--version")
    assert r.exit_code == 0, r.output
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    assert r.stdout == f"nlpgd {nlpgd.__version__}\n" and nlpgd.__version__ == declared


def test_compare_json_prints_one_object_and_records_precision(tmp_path):
    """stdout is exactly one JSON object with the run's metrics; bf16 on the CPU is honoured
    and recorded in run.json with what it resolved to."""
    args = ["compare", tiny_config(tmp_path), "--output-dir", tmp_path / "out", "--json", "--set", "precision=bf16"]
    if not CPU_ONLY:
        args += ["--set", "device=cpu"]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)  # the whole of stdout: nothing else is printed there
    run_dir = tmp_path / "out" / "hooks-tiny" / out["run_id"]
    assert out["run_dir"] == str(run_dir)
    assert out["metrics"] == json.loads((run_dir / "metrics.json").read_text())
    assert set(out["metrics"]) == {"naive_bayes", "distilbert"}
    info = json.loads((run_dir / "run.json").read_text())
    assert info["hardware"]["precision"] == "bf16" and info["hardware"]["device"] == "cpu"
    assert info["hardware"]["precision_setting"] == "bf16"


def test_evaluate_json_prints_one_object(copy_run):
    run = copy_run()
    r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--split", "all", "--name", "again", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["results"] == str(run / "evaluations" / "again") and out["split"] == "all"
    assert {k.split("/")[0] for k in out["metrics"]} == {p.name for p in (run / "models").iterdir()}
    for m in out["metrics"].values():
        assert m["n"] == 140 and 0.0 <= m["accuracy"] <= 1.0


@pytest.fixture
def bars_seen(monkeypatch):
    """Per classify run, as if stderr were a terminal: whether its message bar is drawn (the
    ``bar`` classify hands its progress) and the transformers log level when models load."""
    import importlib

    import nlpgd.cli.common as common
    import nlpgd.scoring as scoring

    classify = importlib.import_module("nlpgd.cli.classify")  # the module (the package exports a function of that name)
    seen = []
    real_load, real_progress = scoring.load_run_models, common.RateProgress

    def spy_load(*args, **kwargs):
        seen.append({"transformers": logging.getLogger("transformers").level})
        return real_load(*args, **kwargs)

    def spy_progress(*args, **kwargs):
        seen[-1]["progress"] = kwargs["bar"]
        return real_progress(*args, **kwargs)

    monkeypatch.setattr(common, "stderr_is_tty", lambda: True)
    monkeypatch.setattr(scoring, "load_run_models", spy_load)
    monkeypatch.setattr(classify, "load_run_models", spy_load, raising=False)
    monkeypatch.setattr(common, "RateProgress", spy_progress)  # rate_progress makes classify's
    return seen


def test_quiet_before_or_after_the_command_turns_bars_off(tiny_run, bars_seen):
    for args in (
        ("classify", tiny_run, "free prize", "--model", "naive_bayes"),
        ("classify", tiny_run, "free prize", "--model", "naive_bayes", "--quiet"),
        ("--quiet", "classify", tiny_run, "free prize", "--model", "naive_bayes"),
        ("classify", tiny_run, "free prize", "--model", "naive_bayes"),  # the flag held for one command only
    ):
        assert invoke(*args).exit_code == 0
    assert [s["progress"] for s in bars_seen] == [True, False, False, True]


def test_verbose_lets_library_logs_through(tiny_run, bars_seen):
    for args in (
        ("classify", tiny_run, "free prize", "--model", "naive_bayes"),
        ("classify", tiny_run, "free prize", "--model", "naive_bayes", "--verbose"),
        ("--verbose", "classify", tiny_run, "free prize", "--model", "naive_bayes"),
    ):
        assert invoke(*args).exit_code == 0
    assert [s["transformers"] for s in bars_seen] == [logging.ERROR, logging.INFO, logging.INFO]


def test_verbose_shows_transformers_messages_in_a_real_process(tiny_run):
    def stderr(*flags):
        env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
        cmd = [sys.executable, "-m", "nlpgd", *flags, "classify", str(tiny_run), "free prize", "--model", "distilbert"]
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc.stderr

    assert "loading" not in stderr().lower()
    assert "loading" in stderr("--verbose").lower()  # transformers' "loading file ..." / weights lines


# -- one metric path, nothing cached outside the run --------------------------------------------
NO_CACHE_SCRIPT = """
import numpy as np
from nlpgd.metrics import compute_metrics, evaluate_predictions
from nlpgd.models.distilbert import _make_compute_metrics
from transformers import EvalPrediction

y, p = [0, 1, 1, 0, 1], [0.1, 0.9, 0.4, 0.3, 0.8]
z = np.log(p) - np.log1p(-np.array(p))
assert evaluate_predictions(y, z) == compute_metrics(y, log_odds=z)
logits = np.log(np.array([[1 - v, v] for v in p]))
_make_compute_metrics(2)(EvalPrediction(predictions=logits, label_ids=np.array(y)))
print("ok")
"""


def test_metrics_write_no_cache_files(tmp_path):
    """`evaluate` kept in memory: no Arrow file, no copied module script, under the home
    folder, the Hugging Face cache or the temporary folder."""
    home = tmp_path / "home"
    for d in ("home", "tmp", "cwd"):
        (tmp_path / d).mkdir()
    env = {
        **os.environ,
        "HOME": str(home),
        "HF_HOME": str(home / ".cache" / "huggingface"),
        "XDG_CACHE_HOME": str(home / ".cache"),
        "TMPDIR": str(tmp_path / "tmp"),
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
    }
    env.pop("HF_EVALUATE_CACHE", None), env.pop("HF_DATASETS_CACHE", None), env.pop("HF_MODULES_CACHE", None)
    proc = subprocess.run(
        [sys.executable, "-c", NO_CACHE_SCRIPT], env=env, cwd=tmp_path / "cwd", capture_output=True, text=True
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stderr[-2000:]
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert written == [], written


def test_trainer_validation_metrics_are_the_spam_metrics():
    from transformers import EvalPrediction

    from nlpgd.metrics import METRIC_NAMES, evaluate_predictions
    from nlpgd.models.distilbert import _make_compute_metrics

    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 40)
    logits = rng.normal(size=(40, 2)) + np.stack([1 - y, y], axis=1)
    got = _make_compute_metrics(2)(EvalPrediction(predictions=logits, label_ids=y))
    want = evaluate_predictions(y, logits[:, 1] - logits[:, 0])  # the log-odds of a softmax head
    assert set(got) == set(METRIC_NAMES)
    for k in METRIC_NAMES:
        assert got[k] == pytest.approx(want[k], abs=1e-12), k


# -- Trainer logging ----------------------------------------------------------------------------
def test_each_fit_keeps_its_trainer_log_history(tiny_run):
    for name, folders in (("distilbert", {"."}), ("gpt2", None)):
        history = json.loads((tiny_run / "models" / name / "seed0" / "trainer_log_history.json").read_text())
        assert folders is None or set(history) == folders
        for entries in history.values():
            losses = [e for e in entries if "loss" in e]
            assert len(losses) == 2 and all(np.isfinite(e["loss"]) for e in losses)  # one per epoch
            assert any("eval_loss" in e for e in entries)
    entries = json.loads((tiny_run / "models" / "distilbert" / "seed0" / "trainer_log_history.json").read_text())["."]
    assert any("eval_mcc" in e and "eval_roc_auc" in e for e in entries)  # the evaluate module's metrics


def test_report_to_tensorboard_without_it_is_one_sentence(tmp_path, monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "tensorboard" else real(n, *a))
    out = tmp_path / "out"
    r = invoke("compare", tiny_config(tmp_path), "--output-dir", out, "--set", "report_to=tensorboard")
    one_sentence(r, "report_to: tensorboard", "pip install 'nlpgd[tensorboard]'")
    assert not out.exists() or not any(out.rglob("run.json"))  # refused before any work


@pytest.mark.skipif(
    importlib.util.find_spec("tensorboard") is None,
    reason="tensorboard is not installed (scripts/setup.sh installs the `tensorboard` extra)",
)
def test_report_to_tensorboard_writes_event_files_in_the_model_folder(tmp_path):
    r = invoke("compare", tiny_config(tmp_path), "--output-dir", tmp_path / "out", "--set", "report_to=tensorboard")
    assert r.exit_code == 0, r.output
    (run,) = [p for p in (tmp_path / "out" / "hooks-tiny").iterdir() if not p.is_symlink()]
    events = list((run / "models" / "distilbert" / "seed0" / "logs" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and all(e.stat().st_size > 0 for e in events)
    assert not (run / "models" / "naive_bayes" / "seed0" / "logs").exists()  # no Trainer, nothing to report


# -- device and precision -----------------------------------------------------------------------
def test_precision_setting_reaches_the_trainer(tmp_path):
    from nlpgd.hardware import use_hardware
    from nlpgd.models.base import FitContext
    from nlpgd.models.distilbert import DistilBertClassifier

    model = DistilBertClassifier()
    args = model._training_arguments(tmp_path, FitContext(), evaluate=False)
    assert not args.bf16 and not args.fp16  # the default on this machine's CPU... or what the GPU has
    with use_hardware("cpu", "bf16") as resolved:
        assert resolved == ("cpu", "bf16")
        args = model._training_arguments(tmp_path, FitContext(), evaluate=False)
        assert args.bf16 and args.use_cpu
    with use_hardware("auto", "fp32"):
        args = model._training_arguments(tmp_path, FitContext(), evaluate=False)
        assert not args.bf16 and not args.fp16


@pytest.mark.skipif(not CPU_ONLY, reason="a machine without a CUDA GPU")
@pytest.mark.parametrize(
    "setting, fragment", [("precision=fp16", "'fp16' needs a CUDA GPU"), ("device=cuda", "sees no CUDA GPU")]
)
def test_precision_or_device_this_machine_lacks_is_one_sentence(tmp_path, setting, fragment):
    out = tmp_path / "out"
    one_sentence(invoke("compare", tiny_config(tmp_path), "--output-dir", out, "--set", setting), fragment)
    assert not any(out.rglob("run.json")) if out.exists() else True


def test_run_json_records_hardware_and_the_libraries(tiny_run):
    from nlpgd.hardware import check

    info = json.loads((tiny_run / "run.json").read_text())
    assert (info["hardware"]["device"], info["hardware"]["precision"]) == check("auto", "auto")
    for name in ("scipy", "peft", "evaluate", "gguf", "safetensors"):
        installed = importlib.util.find_spec(name) is not None
        assert name in info["packages"] and (info["packages"][name] is not None) == installed, name


# -- model cards --------------------------------------------------------------------------------
def _card(folder):
    text = (folder / "README.md").read_text(encoding="utf-8")
    assert text.startswith("---\n"), folder
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def test_every_model_folder_has_a_model_card_naming_its_metrics(tiny_run):
    folders = sorted((tiny_run / "models").glob("*/seed0"))
    assert {f.parent.name for f in folders} == {"naive_bayes", "logreg", "distilbert", "gpt2", "stack"}
    metrics = json.loads((tiny_run / "metrics.json").read_text())
    for folder in folders:
        meta, body = _card(folder)
        name = folder.parent.name
        kind = json.loads((folder / "nlpgd_model.json").read_text())["type"]
        assert meta["library_name"] == "nlpgd" and kind in meta["tags"], folder
        assert meta["datasets"] == ["csv:tiny_spam.csv"]
        assert meta["metrics"] and set(meta["metrics"]) <= set(metrics[name]["seed0"]["test"])
        (result,) = meta["model-index"][0]["results"]
        for m in result["metrics"]:
            assert m["value"] == pytest.approx(metrics[name]["seed0"]["test"][m["type"]], abs=1e-6)
        for heading in ("## Data", "## Settings", "## Metrics", "## How to load it"):
            assert heading in body, (folder, heading)
        table = body.split("## Metrics", 1)[1]
        for m in meta["metrics"]:
            assert f"| {m} (" in table, (folder, m)
        assert "[" in table and "load_model(" in body  # intervals, and how to load it


def test_a_model_saved_outside_a_run_has_a_card_too(tmp_path, tiny_corpus):
    from nlpgd.models.naive_bayes import NaiveBayesClassifier
    from nlpgd.models.registry import load_model

    NaiveBayesClassifier().fit(*tiny_corpus).save(tmp_path / "nb")
    meta, body = _card(tmp_path / "nb")
    assert meta["library_name"] == "nlpgd" and "naive_bayes" in meta["tags"] and meta["metrics"] == []
    assert "Not scored yet" in body
    load_model(tmp_path / "nb")  # the card does not get in the way of loading


# -- packaging ----------------------------------------------------------------------------------
def test_license_file_matches_the_declared_license():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert project["project"]["license"] == "MIT" and project["project"]["license-files"] == ["LICENSE"]
    assert (REPO / "LICENSE").read_text().startswith("MIT License")
    assert any(r.startswith("setuptools>=77") for r in project["build-system"]["requires"])


def test_dequantized_gguf_model_drops_its_quantization_flags(tmp_path):
    """What transformers leaves on a GGUF model it dequantized on load, removed by the
    quantizer's own remove_quantization_config (as_plain_model)."""
    from transformers import AutoModelForCausalLM
    from transformers.quantizers.quantizer_gguf import GgufHfQuantizer
    from transformers.utils.quantization_config import GgufConfig

    from nlpgd.models.causal_lm import as_plain_model

    from conftest import tiny_llama

    model = AutoModelForCausalLM.from_pretrained(tiny_llama(tmp_path / "lm"))
    quantizer = GgufHfQuantizer(GgufConfig(gguf_file="x.gguf"))
    model.hf_quantizer, model.config.quantization_config, model.is_quantized = (
        quantizer,
        quantizer.quantization_config,
        True,
    )
    assert as_plain_model(model) is model
    assert getattr(model, "hf_quantizer", None) is None and not model.is_quantized
    model.save_pretrained(tmp_path / "plain")
    assert "quantization_config" not in json.loads((tmp_path / "plain" / "config.json").read_text())
    assert as_plain_model(model) is model  # a plain model: nothing to do


def test_nlpgd_error_is_what_hardware_raises():
    from nlpgd.hardware import check

    with pytest.raises(NlpgdError, match="device must be one of"):
        check("tpu", "auto")
