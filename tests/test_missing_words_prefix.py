"""Missing words: a shortened message is scored as the beginning of a message (no end token)
as well as a complete one; both are reported and the verdict names and uses the prefix variant."""

import json

import numpy as np
import yaml
from test_claims import run_experiment

from nlpgd.runs import read_predictions

from conftest import TINY_CFG, TINY_CSV


def test_both_variants_are_reported_and_the_verdict_uses_the_prefix_one(tmp_path):
    cfg = yaml.safe_load(TINY_CFG.read_text())
    cfg["data"]["path"] = str(TINY_CSV)
    cfg["seeds"] = [0, 1]  # a claims verdict needs two
    cfg["models"] = {k: v for k, v in cfg["models"].items() if k in ("gpt2", "distilbert")}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump(cfg))
    folder = run_experiment("missing-words", path, tmp_path / "out")
    for name in ("dropout-0.5", "truncate-5"):
        gpt2 = [read_predictions(folder / f"predictions/full/gpt2/seed0.{name}{v}.csv") for v in ("", "-prefix")]
        enc = [read_predictions(folder / f"predictions/full/distilbert/seed0.{name}{v}.csv") for v in ("", "-prefix")]
        assert not np.array_equal(gpt2[0]["log_odds"], gpt2[1]["log_odds"])  # the end token's term is left out
        assert np.array_equal(enc[0]["log_odds"], enc[1]["log_odds"])  # an encoder has no such term
        # only the messages the perturbation changed are rescored
        clean = read_predictions(folder / "predictions/full/gpt2/seed0.test.csv")
        same = gpt2[0]["log_odds"] == clean["log_odds"]
        assert np.array_equal(gpt2[1]["log_odds"][same], clean["log_odds"][same])
    results = json.loads((folder / "results.json").read_text())
    metric = results["metric"]
    primary = [f for f in results["findings"] if f["metric"] == metric]
    assert primary and all("as prefixes, no end token" in f["metric_label"] for f in primary)
    assert any(f["metric"] == f"{metric}_with_end" for f in results["findings"])
    assert "the verdict uses the first" in results["method"]
