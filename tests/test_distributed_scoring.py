"""Data-parallel scoring (issue 20 §2): under torchrun, ``evaluate`` and ``classify --dataset``
share every chunk between the processes, gather on the first, which alone writes; the results
equal one process's, message for message. Two CPU processes over gloo (slow: process starts)."""

import csv
import json

import numpy as np
import pytest
from test_distributed import torchrun

from conftest import TINY_CSV, invoke

# count models score each message alone: bit for bit the same. The neural arms pad a batch to
# its longest message, and the processes' batches differ from one process's, so their float32
# arithmetic may differ in the last places (as it does in one process with another --chunk-size)
EXACT = ("naive_bayes", "logreg")
FLOAT32 = 1e-5


def _predictions(folder):
    out = {}
    for path in sorted(folder.glob("predictions/*/*.csv")):
        with path.open() as f:
            out[f"{path.parent.name}/{path.name}"] = list(csv.DictReader(f))
    return out


def _same(one: dict, two: dict) -> None:
    assert one.keys() == two.keys() and one
    for key, rows in one.items():
        other = two[key]
        assert [(r["id"], r["label"], r["pred"]) for r in rows] == [(r["id"], r["label"], r["pred"]) for r in other]
        if key.split("/")[0] in EXACT:
            assert rows == other, key
        for column in ("log_odds", "log_lik_ham", "log_lik_spam"):
            a = np.array([float(r[column] or "nan") for r in rows])
            b = np.array([float(r[column] or "nan") for r in other])
            np.testing.assert_allclose(a, b, rtol=0, atol=FLOAT32, equal_nan=True, err_msg=f"{key} {column}")


@pytest.mark.slow
def test_evaluate_under_torchrun_equals_one_process(copy_run):
    run = copy_run()
    args = ["--dataset", f"csv:{TINY_CSV}", "--split", "all", "--chunk-size", "7", "--quiet"]
    proc = torchrun("evaluate", run, *args, "--name", "two", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("results: ") == 1  # the first process alone reports
    r = invoke("evaluate", run, *args, "--name", "one")
    assert r.exit_code == 0, r.output
    one, two = run / "evaluations" / "one", run / "evaluations" / "two"
    assert sorted(p.name for p in (run / "evaluations").iterdir()) == ["one", "two"]  # no .partial left
    _same(_predictions(one), _predictions(two))
    m1, m2 = (json.loads((d / "metrics.json").read_text()) for d in (one, two))
    assert m1.keys() == m2.keys()
    for key in m1:
        for name, value in m1[key].items():
            if name == "seconds":
                continue
            if isinstance(value, float):
                assert value == pytest.approx(m2[key][name], abs=FLOAT32), (key, name)
            else:
                assert value == m2[key][name], (key, name)
    e1, e2 = (json.loads((d / "evaluation.json").read_text()) for d in (one, two))
    shares = e2.pop("messages_per_process")
    assert e1.pop("messages_per_process") == [140] and len(shares) == 2 and min(shares) > 0 and sum(shares) == 140
    assert {k: v for k, v in e1.items() if k != "finished"} == {k: v for k, v in e2.items() if k != "finished"}


@pytest.mark.slow
def test_classify_dataset_under_torchrun_equals_one_process(tiny_run, tmp_path):
    args = ["--dataset", f"csv:{TINY_CSV}", "--split", "all", "--chunk-size", "7", "--quiet"]
    proc = torchrun("classify", tiny_run, *args, "--out", tmp_path / "two.jsonl", timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stderr.count("wrote ") == 1  # the first process alone writes
    r = invoke("classify", tiny_run, *args, "--out", tmp_path / "one.jsonl")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["one.jsonl", "two.jsonl"]
    one, two = (
        [json.loads(line) for line in (tmp_path / f).read_text().splitlines()] for f in ("one.jsonl", "two.jsonl")
    )
    assert len(one) == 140 * 5 and [(r["id"], r["model"], r["label"]) for r in one] == [
        (r["id"], r["model"], r["label"]) for r in two
    ]
    for a, b in zip(one, two):
        exact = a["model"].split("/")[0] in EXACT
        assert a["prob_spam"] == (b["prob_spam"] if exact else pytest.approx(b["prob_spam"], abs=FLOAT32)), a
