"""Failures a user can cause after training, each through the CLI as a user meets it: a
damaged checkpoint on resume, damaged prediction files, writes the system refuses, an empty
text, one-class evaluation data. Each ends in one sentence naming the file or key (exit 2,
no traceback) or, where the work can go on, in a note, and never in output that looks
finished."""

import errno
import json
import logging
import os
import tempfile
from pathlib import Path

import pytest

from nlpgd.config import load_config

from conftest import REPO, invoke
from conftest import one_sentence as _one_sentence

TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"
TINY_CFG = REPO / "configs" / "smoke" / "tiny.yaml"


def one_sentence(r, *fragments):
    """As conftest's, and nothing on stdout."""
    return _one_sentence(r, *fragments, empty_stdout=True)


def temp_files(root):
    return [p for p in Path(root).rglob("*") if p.name.endswith(".tmp") or ".write-test" in p.name]


def refuse(monkeypatch, target: str, code: int = errno.EROFS, only=lambda *a, **k: True):
    """Make ``os.replace`` or ``tempfile.mkstemp`` fail as the system would (tests run as root,
    for whom permissions are not enforced, so a read-only folder is simulated)."""
    module, name = target.split(".")
    owner = {"os": os, "tempfile": tempfile}[module]
    real = getattr(owner, name)

    def refused(*args, **kwargs):
        if only(*args, **kwargs):
            raise OSError(code, os.strerror(code))
        return real(*args, **kwargs)

    monkeypatch.setattr(owner, name, refused)


# -- section 2: damaged files ------------------------------------------------------------


def _checkpoint_lines(caplog):
    return [r.getMessage() for r in caplog.records if "checkpoint" in r.getMessage()]


def test_resume_falls_back_to_an_intact_checkpoint_or_restarts(tmp_path, monkeypatch, caplog):
    """A kill while saving leaves a truncated checkpoint (or one without trainer_state.json):
    ``compare --resume`` continues from the newest intact one, or restarts the fit, and says
    which in one line."""
    from nlpgd.models.distilbert import DistilBertClassifier
    from nlpgd.models.gpt2 import GPT2Classifier

    def killed(self, *a, **k):
        raise KeyboardInterrupt

    keep = ["--set", "models.distilbert.keep_checkpoints=2", "--set", "models.gpt2.keep_checkpoints=2"]
    base = ["compare", TINY_CFG, "--output-dir", tmp_path, "--quiet", "--set", f"data.path={TINY_CSV}", *keep]
    monkeypatch.setattr(DistilBertClassifier, "save", killed)  # fitted, checkpoints written, not saved
    assert invoke(*base).exit_code == 130
    (partial,) = (tmp_path / "smoke-tiny").iterdir()
    work = partial / "work" / "distilbert" / "seed0"
    steps = sorted(int(d.name.split("-")[1]) for d in work.glob("checkpoint-*"))
    assert len(steps) == 2, steps
    newest = work / f"checkpoint-{steps[1]}" / "model.safetensors"
    with newest.open("r+b") as f:
        f.truncate(newest.stat().st_size // 2)

    monkeypatch.undo()
    monkeypatch.setattr(GPT2Classifier, "save", killed)
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        r = invoke(*base, "--resume", partial)
    assert r.exit_code == 130 and "3 of 5 fits are saved" in r.stderr, r.output
    (line,) = [m for m in _checkpoint_lines(caplog) if "distilbert/seed0" in m]
    assert f"checkpoint-{steps[1]}: its model.safetensors is truncated or damaged" in line
    assert line.endswith(f"resuming from checkpoint-{steps[0]}"), line

    lm = partial / "work" / "gpt2" / "seed0" / "lm"
    ckpts = sorted(lm.glob("checkpoint-*"))
    assert len(ckpts) == 2
    (ckpts[0] / "trainer_state.json").unlink()  # cut short while saving
    weights = ckpts[1] / "model.safetensors"
    with weights.open("r+b") as f:
        f.truncate(weights.stat().st_size // 2)
    monkeypatch.undo()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        r = invoke(*base, "--resume", partial)
    assert r.exit_code == 0, r.output
    (line,) = [m for m in _checkpoint_lines(caplog) if "gpt2/seed0" in m]
    assert "no trainer_state.json" in line and "model.safetensors is truncated" in line
    assert line.endswith("no intact checkpoint is left, so this fit starts again"), line
    final = partial.with_name(partial.name.removesuffix(".partial"))
    assert json.loads((final / "run.json").read_text())["status"] == "complete"
    assert set(json.loads((final / "metrics.json").read_text())) == set(load_config(TINY_CFG).models)


@pytest.mark.parametrize(
    "damage, words",
    [
        (lambda text: text[: text.rstrip().rfind("\n") + 9], "fields where 7 belong"),  # cut mid-row
        (lambda text: text.replace(",0.", ",zero.", 1), "must be numbers"),
        (lambda text: text + "x9,1,,1,,,\n", "must be numbers"),
        (lambda text: "id;label\n", "does not have the columns"),
    ],
)
def test_report_names_a_damaged_prediction_file(copy_run, damage, words):
    run = copy_run()
    path = run / "predictions" / "gpt2" / "seed0.test.csv"
    path.write_text(damage(path.read_text()))
    before = (run / "report.md").read_text()
    line = one_sentence(invoke("report", run, "--resamples", 100), "predictions/gpt2/seed0.test.csv", words)
    assert "Traceback" not in line
    assert (run / "report.md").read_text() == before  # the old report stays; nothing half-written


# -- section 3: writes the system refuses --------------------------------------------------


@pytest.mark.parametrize("target", ["os.replace", "tempfile.mkstemp"])
def test_evaluate_on_a_read_only_run(copy_run, monkeypatch, target):
    run = copy_run()
    refuse(monkeypatch, target)
    r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--name", "other")
    monkeypatch.undo()
    one_sentence(r, f"cannot write into {run / 'evaluations'}: Read-only file system")
    assert not (run / "evaluations").exists() or not any((run / "evaluations").iterdir())
    assert not temp_files(run)


def test_evaluate_refused_halfway_leaves_no_partial_results(copy_run, monkeypatch):
    run = copy_run()
    refuse(monkeypatch, "os.replace", errno.ENOSPC, only=lambda src, dst: str(dst).endswith("metrics.json"))
    r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--name", "other")
    monkeypatch.undo()
    one_sentence(r, "cannot write", "other.partial/metrics.json", "No space left on device")
    assert not (run / "evaluations" / "other").exists() and not (run / "evaluations" / "other.partial").exists()
    assert not temp_files(run)


def test_generate_checks_its_output_before_sampling(copy_run, tmp_path, monkeypatch):
    from nlpgd.models.gpt2 import GPT2Classifier

    def never(*a, **k):
        raise AssertionError("sampled before the output path was checked")

    run = copy_run()
    monkeypatch.setattr(GPT2Classifier, "generate", never)
    folder = tmp_path / "samples"
    folder.mkdir()
    one_sentence(invoke("generate", run, "-n", "3", "--out", folder), f"cannot write samples to {folder}", "folder")
    refuse(monkeypatch, "tempfile.mkstemp")
    r = invoke("generate", run, "-n", "3", "--out", tmp_path / "ro" / "s.jsonl")
    monkeypatch.undo()
    one_sentence(r, f"cannot write samples to {tmp_path / 'ro' / 's.jsonl'}: Read-only file system")
    a_file = tmp_path / "file"
    a_file.write_text("x")
    one_sentence(invoke("generate", run, "-n", "3", "--out", a_file / "s.jsonl"), "cannot write samples to")
    assert not temp_files(tmp_path)


def test_compare_onto_a_full_disk_stays_partial(tmp_path, monkeypatch):
    """ENOSPC while the report's figures are written: one sentence, the run stays ``.partial``
    (and says how to continue), no temporary file is left."""
    import nlpgd.report.write as report_write
    from nlpgd.io import atomic_writer

    def disk_full(path, data):
        with atomic_writer(path, "wb") as f:
            f.write(data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    cfg = tmp_path / "small.yaml"
    cfg.write_text(
        f"name: full\ndata: {{source: csv, path: {TINY_CSV}, validation_size: 0.2, test_size: 0.2}}\n"
        "models: {naive_bayes: {}, logreg: {}}\n"
    )
    out = tmp_path / "out"
    monkeypatch.setattr(report_write, "atomic_write_bytes", disk_full)
    r = invoke("compare", cfg, "--output-dir", out, "--quiet")
    line = one_sentence(r, "figures/roc.png: No space left on device", "2 of 2 fits are saved", "--resume")
    (partial,) = (out / "full").iterdir()
    assert partial.name.endswith(".partial") and str(partial) in line
    assert json.loads((partial / "run.json").read_text())["status"] == "running"
    assert not (partial / "report.md").exists() and not temp_files(out)
    monkeypatch.undo()  # space again: the resume finishes the report
    r = invoke("compare", cfg, "--output-dir", out, "--quiet", "--resume", partial)
    assert r.exit_code == 0, r.output
    assert (partial.with_name(partial.name.removesuffix(".partial")) / "report.html").is_file()


# -- section 4: input a user did not mean ------------------------------------------------


@pytest.mark.parametrize("texts", [[""], ["   "], ["free prize", " \t"]])
def test_classify_refuses_an_empty_text(tiny_run, texts):
    one_sentence(invoke("classify", tiny_run, *texts), f"text {len(texts)} is empty or whitespace only")


def test_one_class_evaluation_data_is_a_note_not_a_warning(copy_run, tmp_path, recwarn):
    run = copy_run()
    spam_only = tmp_path / "spam.csv"
    spam_only.write_text("text,label\nWIN a prize now,spam\nclaim your cash,spam\nfree entry txt now,spam\n")
    r = invoke("evaluate", run, "--dataset", f"csv:{spam_only}", "--split", "all", "--name", "spam", "--quiet")
    assert r.exit_code == 0, r.output
    assert not [w for w in recwarn if "sklearn" in w.filename or w.category is UserWarning]
    assert "Warning" not in r.output
    notes = [line for line in r.stderr.splitlines() if line.startswith("note: ")]
    assert notes == ["note: only spam messages (3): ROC-AUC and PR-AUC are undefined and MCC is 0 by convention"]
    info = json.loads((run / "evaluations" / "spam" / "evaluation.json").read_text())
    assert info["notes"] == [notes[0].removeprefix("note: ")] and info["class_counts"] == {"ham": 0, "spam": 3}
    metrics = json.loads((run / "evaluations" / "spam" / "metrics.json").read_text())
    assert all(m["roc_auc"] is None and m["notes"] for m in metrics.values())


def test_training_data_with_one_class_is_still_refused(tmp_path):
    spam_only = tmp_path / "spam.csv"
    spam_only.write_text("text,label\nWIN a prize now,spam\nclaim your cash,spam\nfree entry txt now,spam\n")
    r = invoke("compare", TINY_CFG, "--set", f"data.path={spam_only}", "--output-dir", tmp_path, "--quiet")
    one_sentence(r, str(spam_only), "only one class present (spam)")
    assert not list(tmp_path.glob("smoke-tiny/*"))


def test_compare_logs_what_cleaning_changed(tmp_path, caplog):
    rows = TINY_CSV.read_text().splitlines()
    clash = rows[1].rsplit(",", 1)[0] + ",spam"  # the first ham message again, labelled spam
    data = tmp_path / "clash.csv"
    data.write_text("\n".join([*rows, clash]) + "\n")
    cfg = tmp_path / "small.yaml"
    cfg.write_text(
        f"name: clash\ndata: {{source: csv, path: {data}, validation_size: 0.2, test_size: 0.2}}\n"
        "models: {naive_bayes: {}}\n"
    )
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        r = invoke("compare", cfg, "--output-dir", tmp_path / "out", "--quiet")
    assert r.exit_code == 0, r.output
    (line,) = [r.getMessage() for r in caplog.records if "both labels" in r.getMessage()]
    assert line.startswith("data: 1 text appears with both labels (every copy dropped, data.conflicts: drop")
    (run,) = [p for p in (tmp_path / "out" / "clash").iterdir() if not p.is_symlink()]
    summary = json.loads((run / "data.json").read_text())
    assert summary["label_conflicts"]["count"] == 1 and summary["label_conflicts"]["rows_dropped"] == 2
    assert "Data: 1 text appears with both labels" in (run / "report.md").read_text()


def test_a_library_write_refused_inside_compare_is_one_sentence(tmp_path, monkeypatch):
    """A write that does not go through nlpgd.io (a library saving a model, say) and fails
    with a full disk: the same sentence, and the run stays ``.partial``."""
    from nlpgd.models.logreg import LogRegClassifier

    def disk_full(self, path):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(Path(path) / "weights.bin"))

    cfg = tmp_path / "small.yaml"
    cfg.write_text(
        f"name: full\ndata: {{source: csv, path: {TINY_CSV}, validation_size: 0.2, test_size: 0.2}}\n"
        "models: {naive_bayes: {}, logreg: {}}\n"
    )
    monkeypatch.setattr(LogRegClassifier, "save", disk_full)
    r = invoke("compare", cfg, "--output-dir", tmp_path / "out", "--quiet")
    line = one_sentence(r, "models/logreg/seed0/weights.bin: No space left on device", "1 of 2 fits are saved")
    (partial,) = (tmp_path / "out" / "full").iterdir()
    assert partial.name.endswith(".partial") and f"--resume {partial}" in line


@pytest.mark.parametrize("out", [True, False], ids=["out-file", "stdout"])
def test_ctrl_c_says_what_it_left(tiny_run, tmp_path, monkeypatch, out):
    """Ctrl-C during ``classify --out FILE`` names the FILE.partial it leaves (a file, not a
    folder) and says FILE was not written; without --out nothing is left and none is named."""
    from nlpgd.models.naive_bayes import NaiveBayesClassifier

    predict, calls = NaiveBayesClassifier.predict_proba, []

    def second_call_interrupted(self, texts):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return predict(self, texts)

    monkeypatch.setattr(NaiveBayesClassifier, "predict_proba", second_call_interrupted)
    target = tmp_path / "scores.jsonl"
    args = ["--out", target] if out else ["--json"]
    texts = [f"free prize {i}" for i in range(5)]
    r = invoke("classify", tiny_run, *texts, "--model", "naive_bayes", "--chunk-size", "2", *args)
    last = r.stderr.strip().splitlines()[-1]
    assert r.exit_code == 130 and "folder" not in last, r.stderr
    if out:
        partial = tmp_path / "scores.jsonl.partial"
        assert partial.is_file() and not target.exists()
        assert (
            last
            == f"interrupted: partial results are left in {partial} (what was written so far; {target} was not written)"
        )
    else:
        assert last == "interrupted" and list(tmp_path.iterdir()) == []
