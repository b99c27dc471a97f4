"""Run folders: atomic writes, the .partial marker, and one-sentence errors on bad folders."""

import json
import os

import numpy as np
import pytest

from nlpgd.errors import NlpgdError
from nlpgd.io import atomic_write_text
from nlpgd.runs import FORMAT_VERSION, Run, open_run, read_predictions, write_predictions


def test_partial_until_finished(tmp_path):
    run = Run.create(tmp_path, "exp", run_id="r1")
    assert run.path.name == "r1.partial" and run.is_partial
    run.start({"experiment": "exp"})
    with pytest.raises(NlpgdError, match="unfinished run"):
        open_run(run.path)
    for f in ("config.yaml", "split_manifest.json", "metrics.json"):
        atomic_write_text(run.path / f, "{}")
    final = run.finish()
    assert final == tmp_path / "exp" / "r1"
    assert json.loads((final / "run.json").read_text())["status"] == "complete"
    assert (tmp_path / "exp" / "latest").resolve() == final.resolve()
    assert open_run(tmp_path / "exp" / "latest").path == final


def test_same_run_id_gets_a_suffix(tmp_path):
    a = Run.create(tmp_path, "exp", run_id="r")
    b = Run.create(tmp_path, "exp", run_id="r")
    assert a.path != b.path and b.path.name == "r-2.partial"


def test_bad_folders_are_one_sentence(tmp_path):
    with pytest.raises(NlpgdError, match="run folder not found"):
        open_run(tmp_path / "nope")
    with pytest.raises(NlpgdError, match="no run.json"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": FORMAT_VERSION + 99, "status": "complete"}))
    with pytest.raises(NlpgdError, match="another nlpgd format"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text(json.dumps({"format": FORMAT_VERSION, "status": "complete"}))
    with pytest.raises(NlpgdError, match="missing config.yaml, split_manifest.json, metrics.json"):
        open_run(tmp_path)
    (tmp_path / "run.json").write_text("{trunc")
    with pytest.raises(NlpgdError, match="not valid JSON"):
        open_run(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root can write anywhere")
def test_unwritable_output_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    with pytest.raises(NlpgdError, match="cannot write to output folder"):
        Run.create(ro, "exp")


def test_output_dir_that_is_a_file(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(NlpgdError, match="cannot write to output folder"):
        Run.create(f, "exp")


def test_predictions_round_trip_exactly(tmp_path):
    z = np.array([-2.2, -1 / 3, 27.6, -745.5, 812.25])
    path = tmp_path / "p.csv"
    write_predictions(path, ["a", "b", "c", "d", "e"], [0, 1, 1, 0, 1], z)
    back = read_predictions(path)
    assert back["id"] == ["a", "b", "c", "d", "e"]
    assert np.array_equal(back["log_odds"], z) and not back["log_odds_derived"]
    assert back["log_lik"] is None
    assert back["pred"].tolist() == [0, 0, 1, 0, 1]
    assert not list(tmp_path.glob(".*.tmp"))
    # a generative model's class log-likelihoods travel with them
    ll = np.array([[-10.5, -12.0], [-3.25, -1.0], [-7.0, -7.0], [-1e3, -2e3], [-5.0, -4.5]])
    write_predictions(path, ["a", "b", "c", "d", "e"], [0, 1, 1, 0, 1], z, ll)
    assert np.array_equal(read_predictions(path)["log_lik"], ll)


def test_atomic_write_leaves_old_file_on_failure(tmp_path):
    path = tmp_path / "x.json"
    atomic_write_text(path, "old")

    with pytest.raises(TypeError):
        atomic_write_text(path, 123)  # type: ignore[arg-type]
    assert path.read_text() == "old"
    assert not list(tmp_path.glob(".*.tmp"))
