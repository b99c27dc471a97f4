"""A claims experiment is registered in one place (nlpgd/claims_registry.py) and returns one typed
result; the config schema, the runner and the CLI help are built from that one list."""

from __future__ import annotations

import ast
import dataclasses

from nlpgd import claims_registry
from nlpgd.cli.experiment import HELP
from nlpgd.config import EXPERIMENT_NAMES, ExperimentGrid, load_config
from nlpgd.config_grids import SharedGrid
from nlpgd.experiments.claims import EXPERIMENTS, NAMES
from nlpgd.experiments.claims.result import ExperimentResult

from conftest import REPO

# the keys of an experiment's results.json before the typed result (kept byte-compatible)
RESULTS_KEYS = [
    "experiment",
    "title",
    "claim",
    "metric",
    "verdict",
    "findings",
    "key_numbers",
    "tables",
    "figures",
    "notes",
    "method",
    "wall_seconds",
    "pairs",
    "reference",
    "holm",
]


def test_everything_is_built_from_the_registry():
    names = [e.name for e in claims_registry.EXPERIMENTS]
    assert list(EXPERIMENT_NAMES) == names == list(EXPERIMENTS)
    assert NAMES == (*names, "claims")
    shared = set(SharedGrid.model_fields)
    assert [k for k in ExperimentGrid.model_fields if k not in shared] == [e.key for e in claims_registry.EXPERIMENTS]
    for e in claims_registry.EXPERIMENTS:
        module = EXPERIMENTS[e.name]
        assert module.NAME == e.name and module.__name__ == e.module
        assert type(getattr(ExperimentGrid(), e.key)).__name__ == e.grid
        assert f"- {e.name}: {e.summary}" in HELP


def test_a_grid_section_is_read_from_yaml(tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "name: t\ndata: {source: csv, path: x.csv}\nmodels: {naive_bayes: {}}\n"
        "experiment: {hybrids: {samples: 7}, learning_curve: {sizes: [64, 16]}}\n"
    )
    grid = load_config(cfg).experiment
    assert grid.hybrids.samples == 7 and grid.learning_curve.sizes == [16, 64]


def test_no_other_module_lists_the_experiments():
    """The names appear together only in the registry: a list of them elsewhere is a second place
    to edit when an experiment is added."""
    names = set(EXPERIMENT_NAMES)
    for path in (REPO / "nlpgd").rglob("*.py"):
        if path.name == "claims_registry.py":
            continue
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.Tuple, ast.List, ast.Set)):
                listed = {c.value for c in node.elts if isinstance(c, ast.Constant)} & names
                assert len(listed) < 3, f"{path.relative_to(REPO)}:{node.lineno} lists experiments {sorted(listed)}"
            if isinstance(node, ast.Constant) and isinstance(node.value, str):
                assert sum(n in node.value for n in names) < 3, f"{path.relative_to(REPO)}:{node.lineno}"


def test_the_result_keeps_the_results_json_keys_in_order():
    fields = [f.name for f in dataclasses.fields(ExperimentResult)]
    assert fields == RESULTS_KEYS
    r = ExperimentResult(
        experiment="x", title="t", claim="c", metric="roc_auc", verdict={}, findings=[], key_numbers=""
    )
    assert list(r.to_dict()) == RESULTS_KEYS
    assert ExperimentResult.of(r.to_dict()) == r
