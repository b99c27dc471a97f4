"""Names a user types never make nlpgd write or delete outside the folder it owns: an
evaluation name of '..' once deleted the whole run (evaluations/.. is the run itself)."""

import hashlib
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nlpgd.cli import app

from conftest import REPO

runner = CliRunner()
TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def snapshot(root: Path) -> dict:
    """Every file below ``root`` (links not followed) with the hash of its bytes."""
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest() if p.is_file() else "dir"
        for p in sorted(root.rglob("*"))
    }


@pytest.fixture
def evaluated_run(copy_run):
    run = copy_run()
    r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--name", "earlier", "--quiet")
    assert r.exit_code == 0, r.output
    return run


@pytest.mark.parametrize("name", ["..", ".", "../x", "../../x", "sub/x", "", "a b"])
def test_an_evaluation_name_that_is_not_one_folder_is_refused_and_changes_nothing(evaluated_run, name):
    run = evaluated_run
    parent_before = sorted(p.name for p in run.parent.iterdir())
    before = snapshot(run)
    r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--name", name, "--quiet")
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: evaluation name"), r.stderr
    assert "Traceback" not in r.output
    assert snapshot(run) == before
    assert sorted(p.name for p in run.parent.iterdir()) == parent_before


def test_an_evaluation_replaces_only_an_earlier_evaluation(evaluated_run):
    run = evaluated_run
    earlier = run / "evaluations" / "earlier"
    (earlier / "mine.txt").write_text("kept?")  # the earlier evaluation is nlpgd's: replaced as a whole
    r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--name", "earlier", "--quiet")
    assert r.exit_code == 0, r.output
    assert (earlier / "metrics.json").is_file() and not (earlier / "mine.txt").exists()


def test_a_folder_nlpgd_did_not_write_is_never_removed(evaluated_run, tmp_path):
    run = evaluated_run
    foreign = run / "evaluations" / "notes"
    foreign.mkdir()
    (foreign / "thesis.md").write_text("my notes")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "keep.txt").write_text("keep")
    (run / "evaluations" / "linked").symlink_to(outside)
    before = snapshot(run)
    for name in ("notes", "linked"):
        r = invoke("evaluate", run, "--dataset", f"csv:{TINY_CSV}", "--name", name, "--quiet")
        assert r.exit_code == 2, r.output
        assert "was not written by nlpgd" in r.stderr and "Traceback" not in r.output
    assert snapshot(run) == before
    assert (outside / "keep.txt").read_text() == "keep"


@pytest.mark.parametrize("name", ["..", "."])
def test_a_run_name_that_leaves_the_output_folder_is_refused(tmp_path, name):
    out = tmp_path / "a" / "outputs"
    r = invoke(
        "compare",
        REPO / "configs" / "smoke" / "tiny.yaml",
        "--output-dir",
        out,
        "--quiet",
        "--set",
        f"data.path={TINY_CSV}",
        "--set",
        f"name={name}",
    )
    assert r.exit_code == 2, r.output
    assert "name" in r.stderr and "Traceback" not in r.output
    assert [p for p in tmp_path.rglob("*")] == []
