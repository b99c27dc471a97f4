"""Saved run folders may be damaged or hostile: every load refuses custom code, keeps paths
inside their folder, never unpickles, and fails with one sentence naming the file and the
model (exit 2, no traceback). Each case goes through the CLI as a user would meet it."""

import json
import subprocess
import sys

import numpy as np
import pytest
from typer.testing import CliRunner

from nlpgd.cli import app
from nlpgd.errors import NlpgdError
from nlpgd.safe_load import check_safetensors, inside

from conftest import REPO

runner = CliRunner()


def invoke(*args, input=None):
    return runner.invoke(app, [str(a) for a in args], input=input, catch_exceptions=False)


def one_sentence(r, *fragments):
    """Exit 2, one line on stderr holding every fragment, no traceback, nothing on stdout."""
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    assert lines[0].startswith("error: ")
    assert "Traceback" not in r.output
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert r.stdout.strip() == "", r.stdout
    return lines[0]


EVIL_MODULE = """
import pathlib
pathlib.Path({marker!r}).write_text("the folder's code ran")
from transformers import GPT2Config, GPT2LMHeadModel
class EvilConfig(GPT2Config):
    model_type = "evilgpt"
class EvilModel(GPT2LMHeadModel):
    config_class = EvilConfig
"""


def _plant_remote_code(lm_dir, marker):
    (lm_dir / "evil_model.py").write_text(EVIL_MODULE.format(marker=str(marker)))
    cfg = json.loads((lm_dir / "config.json").read_text())
    cfg["model_type"] = "evilgpt"
    cfg["auto_map"] = {"AutoConfig": "evil_model.EvilConfig", "AutoModelForCausalLM": "evil_model.EvilModel"}
    (lm_dir / "config.json").write_text(json.dumps(cfg))


def test_remote_code_in_a_run_folder_never_runs_even_with_yes_on_stdin(copy_run, tmp_path):
    run = copy_run()
    marker = tmp_path / "PWNED"
    _plant_remote_code(run / "models" / "gpt2" / "seed0" / "lm", marker)
    # a real process with 'y' on stdin: transformers would prompt and then import the module
    proc = subprocess.run(
        [sys.executable, str(REPO / "cli.py"), "classify", str(run), "free prize", "--model", "gpt2"],
        input="y\ny\n",
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr
    assert not marker.exists()
    assert "Do you wish to run the custom code" not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert "auto_map" in proc.stderr and "config.json" in proc.stderr and "gpt2/seed0" in proc.stderr


def test_remote_code_is_refused_by_generate_and_evaluate(copy_run, tmp_path):
    run = copy_run()
    marker = tmp_path / "PWNED"
    _plant_remote_code(run / "models" / "gpt2" / "seed0" / "lm", marker)
    one_sentence(
        invoke("generate", run, "--model", "gpt2", "-n", "2", "--out", tmp_path / "s.jsonl", input="y\n"), "auto_map"
    )
    data = REPO / "tests" / "data" / "tiny_spam.csv"
    one_sentence(invoke("evaluate", run, "--dataset", f"csv:{data}", input="y\n"), "auto_map", "gpt2/seed0")
    assert not marker.exists()


@pytest.mark.parametrize("where", ["../../../../../../..", "/etc", "lm/../../../.."])
def test_state_paths_must_stay_inside_the_model_folder(copy_run, where):
    run = copy_run()
    state_file = run / "models" / "gpt2" / "seed0" / "gpt2_state.json"
    state = json.loads(state_file.read_text())
    state["lm_dirs"]["spam"] = where
    state_file.write_text(json.dumps(state))
    one_sentence(invoke("classify", run, "free prize", "--model", "gpt2"), "lm_dirs", "gpt2/seed0")


def test_a_symlink_out_of_the_folder_is_refused(copy_run, tmp_path):
    run = copy_run()
    outside = tmp_path / "outside"
    outside.mkdir()
    (run / "models" / "gpt2" / "seed0" / "elsewhere").symlink_to(outside)
    state_file = run / "models" / "gpt2" / "seed0" / "gpt2_state.json"
    state = json.loads(state_file.read_text())
    state["lm_dirs"]["spam"] = "elsewhere"
    state_file.write_text(json.dumps(state))
    # the run-folder link check (runs.model_folders) refuses it before the saved path is read
    one_sentence(
        invoke("classify", run, "free prize", "--model", "gpt2"), "elsewhere", "refused"
    )  # the run-folder link check refuses it first


def test_inside_accepts_plain_subfolders(tmp_path):
    (tmp_path / "lm").mkdir()
    assert inside(tmp_path, "lm", "x") == (tmp_path / "lm").resolve()
    for bad in ("", None, 3, "/tmp", "../x"):
        with pytest.raises(NlpgdError):
            inside(tmp_path, bad, "x")


def test_a_pickled_weights_file_is_one_sentence(copy_run):
    import torch
    from safetensors.torch import load_file

    run = copy_run()
    lm = run / "models" / "gpt2" / "seed0" / "lm"
    weights = load_file(lm / "model.safetensors")
    (lm / "model.safetensors").unlink()
    torch.save({"not": object(), **weights}, lm / "pytorch_model.bin")
    line = one_sentence(invoke("classify", run, "free prize", "--model", "gpt2"), "pytorch_model.bin", "pickle")
    assert "weights_only=False" not in line


def test_an_object_npy_is_one_sentence(copy_run):
    run = copy_run()
    path = run / "models" / "naive_bayes" / "seed0" / "feature_log_prob.npy"
    np.save(path, np.array([object()], dtype=object), allow_pickle=True)
    one_sentence(invoke("classify", run, "free prize", "--model", "naive_bayes"), "feature_log_prob.npy", "pickle")


DAMAGE = {
    "gpt2 weights truncated": ("gpt2", "models/gpt2/seed0/lm/model.safetensors", "truncate"),
    "encoder weights truncated": ("distilbert", "models/distilbert/seed0/model.safetensors", "truncate"),
    "naive Bayes array truncated": ("naive_bayes", "models/naive_bayes/seed0/feature_log_prob.npy", "truncate"),
    "vocabulary truncated": ("naive_bayes", "models/naive_bayes/seed0/vocabulary.json", "truncate"),
    "naive Bayes array deleted": ("naive_bayes", "models/naive_bayes/seed0/feature_log_prob.npy", "delete"),
    "gpt2 state truncated": ("gpt2", "models/gpt2/seed0/gpt2_state.json", "truncate"),
}


def _damage(run, rel, how):
    path = run / rel
    if how == "delete":
        path.unlink()
    else:
        with path.open("r+b") as f:
            f.truncate(max(1, path.stat().st_size // 3))
    return path.name


@pytest.mark.parametrize("case", sorted(DAMAGE))
def test_damaged_model_files_are_one_sentence_in_classify_and_evaluate(copy_run, case):
    model, rel, how = DAMAGE[case]
    run = copy_run()
    name = _damage(run, rel, how)
    one_sentence(invoke("classify", run, "free prize", "--model", model), name, f"{model}/seed0")
    data = REPO / "tests" / "data" / "tiny_spam.csv"
    one_sentence(invoke("evaluate", run, "--dataset", f"csv:{data}"), name, f"{model}/seed0")
    assert not (run / "evaluations").exists() or not any((run / "evaluations").iterdir())


def test_a_damaged_model_leaves_the_others_usable(copy_run):
    run = copy_run()
    _damage(run, "models/gpt2/seed0/lm/model.safetensors", "truncate")
    r = invoke("classify", run, "free prize", "--model", "naive_bayes")
    assert r.exit_code == 0 and "naive_bayes/seed0" in r.stdout


def test_generate_with_a_damaged_generator_or_classifier(copy_run, tmp_path):
    run = copy_run()
    _damage(run, "models/distilbert/seed0/model.safetensors", "truncate")
    out = tmp_path / "s.jsonl"
    r = invoke("generate", run, "--model", "gpt2", "-n", "3", "--out", out)
    assert r.exit_code == 0, r.output  # the damaged classifier is skipped with a note
    notes = json.loads(out.with_name(out.name + ".quality.json").read_text())["notes"]
    assert any("distilbert/seed0" in n for n in notes)
    _damage(run, "models/gpt2/seed0/lm/model.safetensors", "truncate")
    one_sentence(
        invoke("generate", run, "--model", "gpt2", "-n", "3", "--out", tmp_path / "t.jsonl"),
        "model.safetensors",
        "gpt2/seed0",
    )


def test_check_safetensors_finds_truncation(tmp_path):
    import torch
    from safetensors.torch import save_file

    path = tmp_path / "w.safetensors"
    save_file({"a": torch.zeros(100), "b": torch.ones(50)}, path)
    check_safetensors(path)  # complete: no error
    data = path.read_bytes()
    header_end = 8 + int.from_bytes(data[:8], "little")
    for cut in (4, 20, header_end, header_end + 1, len(data) - 1):
        path.write_bytes(data[:cut])
        with pytest.raises(NlpgdError, match="truncated or damaged"):
            check_safetensors(path)
    # bytes the header does not account for (two files written over each other) are damage too
    path.write_bytes(data + b"\0" * 16)
    with pytest.raises(NlpgdError, match="truncated or damaged"):
        check_safetensors(path)
    # a header that is not JSON
    path.write_bytes(data[:8] + b"{" * (header_end - 8) + data[header_end:])
    with pytest.raises(NlpgdError, match="truncated or damaged"):
        check_safetensors(path)
    path.unlink()
    with pytest.raises(NlpgdError, match="is missing"):
        check_safetensors(path)
