"""What a hostile or unlucky user meets, each through the CLI: two writers on one run folder,
names that leave the output folder, a full disk inside a fit, saved state that points outside
the run or is a pickle, inputs that mean nothing, progress bars in a redirected log. Each ends
in one sentence (exit 2, no traceback), with nothing finished-looking left behind and nothing
written outside the output folder."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import REPO, invoke, one_sentence

TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"
TINY_CFG = REPO / "configs" / "smoke" / "tiny.yaml"


def snapshot(root: Path) -> dict:
    """Every file below ``root`` (links not followed) with the hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


def small_config(folder: Path, name: str = "small", models: str = "{naive_bayes: {}, logreg: {}}") -> Path:
    cfg = folder / f"{name}.yaml"
    cfg.write_text(
        f"name: {name}\ndata: {{source: csv, path: {TINY_CSV}, validation_size: 0.2, test_size: 0.2}}\n"
        f"models: {models}\n"
    )
    return cfg


def env() -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


# -- 1: one writer per run folder ---------------------------------------------------------


@pytest.fixture
def partial_run(tmp_path, monkeypatch):
    """A compare of naive Bayes and logreg stopped by Ctrl-C once naive Bayes is saved."""
    from nlpgd.models.logreg import LogRegClassifier

    def killed(self, *a, **k):
        raise KeyboardInterrupt

    cfg = small_config(tmp_path)
    out = tmp_path / "out"
    monkeypatch.setattr(LogRegClassifier, "save", killed)
    r = invoke("compare", cfg, "--output-dir", out, "--quiet")
    assert r.exit_code == 130 and "1 of 2 fits are saved" in r.stderr, r.output
    monkeypatch.undo()
    (partial,) = (out / "small").iterdir()
    assert partial.name.endswith(".partial")
    return cfg, out, partial


@pytest.fixture
def holder():
    """Hold a run folder's lock from another process, as a second nlpgd would: its pid."""
    procs = []

    def hold(folder: Path) -> int:
        code = "import sys; from nlpgd.runs import lock_run; lock_run(sys.argv[1]); print('held', flush=True); "
        code += "sys.stdin.read()"
        p = subprocess.Popen(
            [sys.executable, "-c", code, str(folder)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env(),
            text=True,
        )
        procs.append(p)
        assert p.stdout.readline().strip() == "held"
        return p.pid

    yield hold
    for p in procs:
        p.stdin.close()
        p.wait(timeout=30)


def test_a_second_resume_is_refused_naming_the_process_that_writes_the_run(partial_run, holder):
    cfg, out, partial = partial_run
    pid = holder(partial)
    before = snapshot(partial)
    r = invoke("compare", cfg, "--output-dir", out, "--quiet", "--resume", partial)
    one_sentence(r, f"run {partial} is being written by process {pid}", "wait for that process to end")
    assert snapshot(partial) == before
    assert [p.name for p in (out / "small").iterdir()] == [partial.name]


def test_evaluate_and_generate_into_a_run_another_process_writes_are_refused(copy_run, holder, tmp_path):
    run = copy_run()
    pid = holder(run)
    before = snapshot(run)
    r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--name", "other", "--quiet")
    one_sentence(r, f"run {run} is being written by process {pid}")
    r = invoke("generate", run, "--model", "naive_bayes", "-n", "2", "--reference-lm", "none")
    one_sentence(r, f"run {run} is being written by process {pid}")
    assert snapshot(run) == before
    # readers need no lock; samples written outside the run only read it
    assert invoke("classify", run, "free prize now").exit_code == 0
    r = invoke(
        "generate", run, "--model", "naive_bayes", "-n", "2", "--reference-lm", "none", "--out", tmp_path / "s.jsonl"
    )
    assert r.exit_code == 0, r.output


def test_two_resumes_started_together_one_proceeds(partial_run, tmp_path):
    """Two real processes: the one that locks the run first finishes it, the other stops at
    once naming it (each fit is slowed down so that the two overlap)."""
    cfg, out, partial = partial_run
    code = textwrap.dedent(
        """
        import sys, time
        from nlpgd.models.logreg import LogRegClassifier
        fit = LogRegClassifier.fit
        LogRegClassifier.fit = lambda self, *a, **k: (time.sleep(4), fit(self, *a, **k))[1]
        from nlpgd.cli import main
        sys.argv = ["nlpgd", *sys.argv[1:]]
        main()
        """
    )
    args = [
        sys.executable,
        "-c",
        code,
        "compare",
        str(cfg),
        "--output-dir",
        str(out),
        "--quiet",
        "--resume",
        str(partial),
    ]
    procs = [subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env(), text=True) for _ in "ab"]
    results = [(p.pid, p.wait(timeout=600), *p.communicate()) for p in procs]
    codes = sorted(rc for _, rc, _, _ in results)
    assert codes == [0, 2], results
    (winner,) = [pid for pid, rc, _, _ in results if rc == 0]
    ((_, _, _, err),) = [r for r in results if r[1] == 2]
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and f"is being written by process {winner}" in lines[0], err
    final = partial.with_name(partial.name.removesuffix(".partial"))
    assert json.loads((final / "run.json").read_text())["status"] == "complete"
    assert set(json.loads((final / "metrics.json").read_text())) == {"naive_bayes", "logreg"}
    assert not (final / ".nlpgd.writer").exists()


# -- 2: names that leave the output folder ------------------------------------------------


def test_an_experiment_folder_that_resolves_outside_the_output_folder_is_refused(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (out / "small").symlink_to(elsewhere)
    r = invoke("compare", small_config(tmp_path), "--output-dir", out, "--quiet")
    one_sentence(r, "outside output folder")
    assert list(elsewhere.iterdir()) == []


# -- 3: a full disk inside a fit ----------------------------------------------------------

ENCODER = (
    "{distilbert: {init: scratch, scratch_dim: 32, scratch_layers: 1, scratch_vocab_size: 300, epochs: 2, "
    "max_length: 32}}"
)


def stays_partial(out: Path, line: str) -> Path:
    (partial,) = (out / "small").iterdir()
    assert partial.name.endswith(".partial") and f"--resume {partial}" in line, line
    assert json.loads((partial / "run.json").read_text())["status"] == "running"
    assert not (partial / "report.md").exists()
    return partial


@pytest.fixture
def tiny_disk(tmp_path):
    """A 300 KB tmpfs: room for a run folder's data files, not for a Trainer checkpoint."""
    mount = tmp_path / "disk"
    mount.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=300k", "tmpfs", str(mount)], capture_output=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.decode().strip() or 'not root'}); simulated below")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_full_disk_inside_a_trainer_checkpoint_is_one_sentence(tmp_path, tiny_disk):
    r = invoke("compare", small_config(tmp_path, models=ENCODER), "--output-dir", tiny_disk, "--quiet")
    line = one_sentence(r, "cannot write the checkpoints of distilbert/seed0", "No space left on device")
    stays_partial(tiny_disk, line)


def test_a_failed_torch_save_inside_a_fit_is_one_sentence(tmp_path, monkeypatch):
    """torch.save reports a short write as RuntimeError, not OSError (the Trainer's checkpoint)."""
    import torch

    def cut_short(*a, **k):
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 175616 vs 175504")

    monkeypatch.setattr(torch, "save", cut_short)
    out = tmp_path / "out"
    r = invoke("compare", small_config(tmp_path, models=ENCODER), "--output-dir", out, "--quiet")
    line = one_sentence(r, "cannot write the checkpoints of distilbert/seed0 in", "unexpected pos", "0 of 1 fits")
    stays_partial(out, line)


def test_a_failed_save_pretrained_is_one_sentence(tmp_path, monkeypatch):
    from safetensors import SafetensorError

    import nlpgd.models.distilbert as distilbert

    def disk_full(*a, **k):
        raise SafetensorError('Error while serializing: IoError(Os { code: 28, kind: StorageFull, message: "x" })')

    monkeypatch.setattr(distilbert.DistilBertClassifier, "save", disk_full)
    out = tmp_path / "out"
    r = invoke("compare", small_config(tmp_path, models=ENCODER), "--output-dir", out, "--quiet")
    line = one_sentence(r, "cannot write model distilbert/seed0 in", "StorageFull")
    stays_partial(out, line)


def test_free_space_is_checked_before_a_fit_of_known_size(tmp_path, monkeypatch):
    import nlpgd.io

    cfg = small_config(tmp_path)
    cfg.write_text(cfg.read_text() + "seeds: [0, 1]\n")
    real = nlpgd.io.free_bytes
    monkeypatch.setattr(nlpgd.io, "free_bytes", lambda folder: 100 if "seed" not in str(folder) else real(folder))
    out = tmp_path / "out"
    r = invoke("compare", cfg, "--output-dir", out, "--quiet")
    line = one_sentence(r, "not enough free space in", "for naive_bayes/seed1 (its seed0 takes", "2 of 4 fits")
    partial = stays_partial(out, line)
    assert not (partial / "models" / "naive_bayes" / "seed1").exists()


# -- 4: saved state that points outside the run, pickles where states belong -----------------


def test_a_model_folder_linked_outside_the_run_is_refused(copy_run, tmp_path):
    run = copy_run("run")
    other = copy_run("other")
    seed0 = run / "models" / "logreg" / "seed0"
    shutil.rmtree(seed0)
    seed0.symlink_to(other / "models" / "logreg" / "seed0")
    for args in (("classify", run, "free prize now"), ("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--quiet")):
        r = invoke(*args)
        one_sentence(r, f"{seed0} is a link to {other / 'models' / 'logreg' / 'seed0'}, outside run {run}")
    assert not (run / "evaluations").exists() or not any((run / "evaluations").iterdir())


def test_a_weights_array_that_is_not_a_regular_file_says_so(copy_run):
    run = copy_run()
    coef = run / "models" / "logreg" / "seed0" / "coef.npy"
    coef.unlink()
    coef.symlink_to("/dev/urandom")
    line = one_sentence(invoke("classify", run, "free prize now"), f"{coef} is a link to /dev/urandom")
    assert "missing" not in line
    coef.unlink()
    coef.mkdir()
    line = one_sentence(invoke("classify", run, "--model", "logreg", "free prize now"), "not a regular file (a folder)")
    assert str(coef) in line and "missing" not in line


@pytest.mark.parametrize("where", ["optimizer.pt", "rng_state.pth", "pytorch_model.bin"])
def test_a_pickle_in_a_checkpoint_falls_back_as_a_damaged_one(tmp_path, monkeypatch, caplog, where):
    """A checkpoint's state file replaced by a pickle of objects (or weights as a pickle instead
    of safetensors): the resume names the file and falls back to an older checkpoint."""
    import logging
    from fractions import Fraction

    import torch

    from nlpgd.models.distilbert import DistilBertClassifier

    def killed(self, *a, **k):
        raise KeyboardInterrupt

    cfg = small_config(tmp_path, models=ENCODER[:-2] + ", keep_checkpoints: 2}}")
    out = tmp_path / "out"
    monkeypatch.setattr(DistilBertClassifier, "save", killed)
    assert invoke("compare", cfg, "--output-dir", out, "--quiet").exit_code == 130
    monkeypatch.undo()
    (partial,) = (out / "small").iterdir()
    ckpts = sorted((partial / "work" / "distilbert" / "seed0").glob("checkpoint-*"), key=lambda d: int(d.name[11:]))
    assert len(ckpts) == 2
    if where == "pytorch_model.bin":
        (ckpts[1] / "model.safetensors").unlink()
    torch.save({"state": Fraction(1, 3)}, ckpts[1] / where)
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        r = invoke("compare", cfg, "--output-dir", out, "--quiet", "--resume", partial)
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    (line,) = [m.getMessage() for m in caplog.records if "checkpoint" in m.getMessage()]
    assert f"{ckpts[1].name}: its {where} is a pickle" in line and line.endswith(f"resuming from {ckpts[0].name}")


ONE = "text,label\nWIN a prize now,spam\n"
TWO = ONE + "see you at lunch,ham\n"


@pytest.mark.parametrize("rows, split", [(ONE, "all"), (ONE, "test"), (TWO, "all"), (TWO, "test")])
def test_evaluate_on_a_file_of_one_or_two_messages(copy_run, tmp_path, rows, split):
    run = copy_run()
    data = tmp_path / "few.csv"
    data.write_text(rows)
    r = invoke("evaluate", run, "--dataset", f"csv:{data}", "--split", split, "--name", "few", "--quiet")
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    info = json.loads((run / "evaluations" / "few" / "evaluation.json").read_text())
    assert info["n"] == (rows.count("\n") - 1 if split == "all" else 1)


def test_an_empty_split_of_a_tiny_file_is_one_sentence(copy_run, tmp_path):
    run = copy_run()
    data = tmp_path / "few.csv"
    data.write_text(TWO)
    r = invoke("evaluate", run, "--dataset", f"csv:{data}", "--split", "train", "--name", "few", "--quiet")
    one_sentence(r, f"the train split of {data} is empty (2 messages in all); use --split all")
    assert not (run / "evaluations" / "few").exists() and not (run / "evaluations" / "few.partial").exists()


def test_training_on_too_few_messages_is_one_sentence_before_any_run_folder(tmp_path):
    data = tmp_path / "few.csv"
    data.write_text(TWO + "free cash,spam\n")
    cfg = tmp_path / "few.yaml"
    cfg.write_text(f"name: few\ndata: {{source: csv, path: {data}}}\nmodels: {{naive_bayes: {{}}}}\n")
    one_sentence(invoke("compare", cfg, "--output-dir", tmp_path / "out", "--quiet"), "has only one class")
    assert not (tmp_path / "out").exists()


def test_report_md_escapes_what_comes_from_the_data(tmp_path):
    """Conflict examples, reused ids and the data path are data: inert in report.md, as in report.html."""
    folder = tmp_path / "<img src=x onerror=alert(1)>"
    folder.mkdir()
    data = folder / "data.csv"
    rows = TINY_CSV.read_text().splitlines()
    attack = "<script>alert(1)</script> [click](javascript:alert(1))"
    data.write_text("\n".join([*rows, f"{attack},spam", f"{attack},ham"]) + "\n")
    cfg = tmp_path / "x.yaml"
    cfg.write_text(
        f"name: x\ndata: {{source: csv, path: '{data}', validation_size: 0.2, test_size: 0.2}}\n"
        "models: {naive_bayes: {}}\n"
    )
    r = invoke("compare", cfg, "--output-dir", tmp_path / "out", "--quiet")
    assert r.exit_code == 0, r.output
    (run,) = [p for p in (tmp_path / "out" / "x").iterdir() if not p.is_symlink()]
    md = (run / "report.md").read_text()
    assert "&lt;script>alert(1)&lt;/script>" in md and "&lt;img src=x" in md
    assert "<script" not in md and "<img" not in md and "](javascript:" not in md


# -- inputs that mean nothing -------------------------------------------------------------


@pytest.mark.parametrize(
    "text, words",
    [
        ("name: x\nseeds: [0, 0]\n", "config key 'seeds': seed 0 is given twice"),
        ("name: x\nname: y\n", "key 'name' is given twice (line 2); keep one"),
        ("name: x\nexperiment: {reference_seeds: [1, 2, 1]}\n", "seed 1 is given twice"),
    ],
)
def test_a_config_that_means_nothing_is_one_sentence(tmp_path, text, words):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(text + f"data: {{source: csv, path: {TINY_CSV}}}\nmodels: {{naive_bayes: {{}}}}\n")
    one_sentence(invoke("compare", cfg, "--output-dir", tmp_path / "out", "--quiet"), str(cfg), words)
    assert not (tmp_path / "out").exists()


def test_a_yaml_merge_key_may_still_be_overridden(tmp_path):
    from nlpgd.config import load_config

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        f"name: x\ndata: {{source: csv, path: {TINY_CSV}}}\nmodels:\n  naive_bayes: &b {{alpha: 1.0}}\n"
        "  nb2: {<<: *b, alpha: 0.5, type: naive_bayes}\n"
    )
    assert load_config(cfg).models["nb2"].alpha == 0.5


# -- 5: progress bars in a redirected log -------------------------------------------------


def _stderr_to_file(tmp_path: Path, *args, **extra_env) -> str:
    """``nlpgd ARGS`` as a real process whose stderr is a file (not a terminal), with the
    datasets bars left at their default and a fresh datasets cache; that file's bytes."""
    run_env = {k: v for k, v in env().items() if k != "HF_DATASETS_DISABLE_PROGRESS_BARS"}
    run_env.update(HF_DATASETS_CACHE=str(tmp_path / "hf"), **extra_env)
    log = tmp_path / "stderr.log"
    with log.open("wb") as err:
        r = subprocess.run(
            [sys.executable, "-m", "nlpgd", *map(str, args)], stderr=err, stdout=subprocess.PIPE, env=run_env
        )
    text = log.read_bytes().decode("utf-8", errors="replace")  # bytes: read_text would turn "\r" into "\n"
    assert r.returncode == 0, text
    return text


def test_nlpgd_data_draws_no_bars_into_a_redirected_stderr(tmp_path):
    text = _stderr_to_file(tmp_path, "data", f"csv:{TINY_CSV}")
    assert "\r" not in text and "\x1b[" not in text and "Generating train split" not in text, repr(text[:300])


def test_the_spamassassin_parse_draws_no_bar_into_a_redirected_stderr(tmp_path):
    from nlpgd.data.spamassassin import EXTRACTED_DIRNAME, default_cache_dir

    corpus = default_cache_dir() / EXTRACTED_DIRNAME
    if not corpus.is_dir():
        pytest.skip(f"the SpamAssassin corpus is not in the cache ({corpus}); `nlpgd fetch` puts it there")
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / EXTRACTED_DIRNAME).symlink_to(corpus)  # parsed afresh: no parsed-v1.jsonl in this cache
    text = _stderr_to_file(tmp_path, "fetch", "--cache-dir", cache)
    assert (cache / "parsed-v1.jsonl").is_file()
    assert "\r" not in text and "\x1b[" not in text and "Parsing SpamAssassin" not in text, repr(text[:300])
