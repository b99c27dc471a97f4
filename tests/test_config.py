import warnings
from pathlib import Path
from typing import Literal

import pytest

from nlpgd.config import apply_overrides, config_from_dict, load_config
from nlpgd.errors import NlpgdError
from nlpgd.params import REGISTRY, DistilBertParams, NaiveBayesParams, register

from conftest import REPO

SHIPPED = sorted((REPO / "configs").rglob("*.yaml"))


def base() -> dict:
    return {"name": "t", "data": {"source": "csv", "path": "x.csv"}, "models": {"naive_bayes": {"alpha": 0.5}}}


@pytest.mark.parametrize("path", SHIPPED, ids=[str(p.relative_to(REPO)) for p in SHIPPED])
def test_every_shipped_config_loads(path):
    cfg = load_config(path)
    assert cfg.models and cfg.seeds


def test_the_smoke_config_covers_every_registered_type():
    cfg = load_config(REPO / "configs" / "smoke" / "tiny.yaml")
    assert {spec.type for spec in cfg.models.values()} == set(REGISTRY)


def test_shipped_configs_exist():
    names = {p.name for p in SHIPPED}
    assert {"default.yaml", "sms_spam.yaml"} <= names


def test_type_defaults_to_key_and_override_applies():
    cfg = config_from_dict(apply_overrides(base(), ["models.naive_bayes.alpha=0.25", "seeds=[1, 2]"]))
    assert isinstance(cfg.models["naive_bayes"], NaiveBayesParams)
    assert cfg.models["naive_bayes"].alpha == 0.25
    assert cfg.seeds == [1, 2]


def test_named_model_with_type():
    d = base()
    d["models"]["bert"] = {"type": "distilbert", "epochs": 1}
    assert isinstance(config_from_dict(d).models["bert"], DistilBertParams)


@pytest.mark.parametrize(
    "override, expected",
    [
        ("models.naive_bayes.alfa=1", "unknown config key 'models.naive_bayes.alfa'"),
        ("data.sorce=csv", "unknown config key 'data.sorce'"),
        ("models.naive_bayes.alpha=abc", "'models.naive_bayes.alpha'"),
        ("models.naive_bayes.alpha=-1", "'models.naive_bayes.alpha'"),
        ("models.naive_bayes.type=bogus", "unknown model type 'bogus'"),
        ("models.other.alpha=1", "model 'other' has no 'type'"),
        ("data.source=ftp", "'data.source'"),
        ("seeds=[]", "'seeds'"),
        ("name=has space", "'name'"),
    ],
)
def test_bad_values_name_the_key(override, expected):
    with pytest.raises(NlpgdError, match=None) as exc:
        config_from_dict(apply_overrides(base(), [override]))
    assert expected in str(exc.value)
    assert "\n" not in str(exc.value)


def test_override_without_equals():
    with pytest.raises(NlpgdError, match="key.path=value"):
        apply_overrides(base(), ["models.naive_bayes.alpha"])


def test_override_into_a_value_is_an_error():
    with pytest.raises(NlpgdError, match="'name' is a value"):
        apply_overrides(base(), ["name.x=1"])


def test_yaml_file_errors(tmp_path: Path):
    with pytest.raises(NlpgdError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n")
    with pytest.raises(NlpgdError, match="not valid YAML at line"):
        load_config(bad)
    empty = tmp_path / "empty.yaml"
    empty.write_text("")
    with pytest.raises(NlpgdError, match="is empty"):
        load_config(empty)
    lst = tmp_path / "list.yaml"
    lst.write_text("- a\n- b\n")
    with pytest.raises(NlpgdError, match="mapping"):
        load_config(lst)


def test_hub_source_needs_a_name():
    d = base()
    d["data"] = {"source": "hub"}
    with pytest.raises(NlpgdError, match="needs data.name"):
        config_from_dict(d)


# -- a model type registered after import (a plugin, a test) -----------------------------


class LateParams(NaiveBayesParams):
    type: Literal["late_nb"] = "late_nb"


@pytest.fixture
def late_type():
    from nlpgd.config import ExperimentConfig

    register(LateParams, "nlpgd.models.naive_bayes:NaiveBayesClassifier")
    yield LateParams
    REGISTRY.pop("late_nb")
    ExperimentConfig.model_rebuild(force=True)  # as it was before the registration


def test_a_type_registered_after_import_dumps_and_validates_without_warnings(late_type):
    data = {"name": "late", "data": {"source": "csv", "path": "x.csv"}, "models": {"m": {"type": "naive_bayes"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a pydantic serializer warning fails the test
        # an instance put in by hand (as tests do with model_copy) serializes with its own fields
        base = config_from_dict(data)
        copied = base.model_copy(update={"models": {"m": late_type(alpha=0.25)}}).model_dump(mode="json")
        # and a config naming the type validates to its params class
        cfg = config_from_dict({**data, "models": {"m": {"type": "late_nb"}}})
        dumped = cfg.model_dump(mode="json")
    assert copied["models"]["m"] == {**dumped["models"]["m"], "alpha": 0.25}
    assert type(cfg.models["m"]) is LateParams and dumped["models"]["m"]["type"] == "late_nb"
