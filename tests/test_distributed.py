"""``nlpgd compare`` under torchrun: the Trainer arms train with DDP across the processes,
naive Bayes and logreg train once, rank 0 alone writes the run folder; ``--resume`` the
same. Two CPU processes over gloo (slow: two process starts and two trainings)."""

import json
import os
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nlpgd.cli import app

from conftest import REPO

TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"
SMOKE_CFG = REPO / "configs" / "smoke" / "tiny.yaml"


def _launchable_config(folder):
    """The smoke config without the models that cannot train under a launch (the stack)."""
    import yaml

    from nlpgd.config import load_config
    from nlpgd.models.registry import build_model

    cfg, built = yaml.safe_load(SMOKE_CFG.read_text()), load_config(SMOKE_CFG).models
    cfg["models"] = {k: v for k, v in cfg["models"].items() if build_model(built[k]).can("launchable")}
    path = folder / "tiny_launchable.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_a_model_that_cannot_train_under_a_launch_is_refused_before_any_work(tmp_path, monkeypatch):
    from nlpgd.config import load_config
    from nlpgd.errors import NlpgdError
    from nlpgd.experiments.compare import check_launch

    check_launch(load_config(SMOKE_CFG))  # a plain run: every model is fine
    monkeypatch.setenv("WORLD_SIZE", "2")
    with pytest.raises(NlpgdError, match="model 'stack' \\(type stack\\) cannot train under torchrun"):
        check_launch(load_config(SMOKE_CFG))
    check_launch(load_config(_launchable_config(tmp_path)))


def torchrun(*args, timeout=600):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "PYTHONPATH": str(REPO)}
    env["CUDA_VISIBLE_DEVICES"] = ""  # CPU processes over gloo, whatever the machine has
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", "-m", "nlpgd"]
    return subprocess.run([*cmd, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout)


def _one_finished_run(root):
    runs = [p for p in (root / "smoke-tiny").iterdir() if not p.is_symlink()]
    assert len(runs) == 1 and not runs[0].name.endswith(".partial"), runs
    run = runs[0]
    assert json.loads((run / "run.json").read_text())["status"] == "complete"
    assert not (run / "work").exists() and (run / "report.html").is_file()
    return run


def _processes(run):
    costs = json.loads((run / "costs.json").read_text())
    return {name: seeds["seed0"]["processes"] for name, seeds in costs.items()}


@pytest.mark.slow
def test_compare_under_torchrun_with_two_cpu_processes(tmp_path):
    proc = torchrun(
        "compare", _launchable_config(tmp_path), "--set", f"data.path={TINY_CSV}", "--output-dir", tmp_path, "--quiet"
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = _one_finished_run(tmp_path)
    assert _processes(run) == {"naive_bayes": 1, "logreg": 1, "distilbert": 2, "gpt2": 2}
    assert proc.stdout.count("run folder:") == 1  # rank 0 alone prints the result
    epoch_lines = [line for line in proc.stderr.splitlines() if " epoch " in line]
    assert len(epoch_lines) == 4, proc.stderr  # once per epoch and model, not once per process
    for name in ("naive_bayes", "logreg", "distilbert", "gpt2"):
        assert (run / "models" / name / "seed0").is_dir()
        assert (run / "predictions" / name / "seed0.test.csv").is_file()


@pytest.mark.slow
def test_resume_under_torchrun(tmp_path, monkeypatch):
    from nlpgd.models.gpt2 import GPT2Classifier

    def interrupted(self, *a, **k):
        raise KeyboardInterrupt

    monkeypatch.setattr(GPT2Classifier, "fit", interrupted)
    args = [
        "compare",
        _launchable_config(tmp_path),
        "--set",
        f"data.path={TINY_CSV}",
        "--output-dir",
        tmp_path,
        "--quiet",
    ]
    r = CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)
    assert r.exit_code == 130, r.output
    (partial,) = (tmp_path / "smoke-tiny").iterdir()
    proc = torchrun(*args, "--resume", partial)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = _one_finished_run(tmp_path)
    assert run == partial.with_name(partial.name.removesuffix(".partial"))
    # the three fits saved before the interruption are kept; gpt2 trained across both processes
    assert _processes(run) == {"naive_bayes": 1, "logreg": 1, "distilbert": 1, "gpt2": 2}
