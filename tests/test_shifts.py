"""SpamAssassin groups as a data source, and the temporal and difficulty shifts of the
robustness experiment, on a fake corpus (no npm, no network)."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from nlpgd.cli import app
from nlpgd.config import DataConfig, dataset_config
from nlpgd.data import load_splits
from nlpgd.data import spamassassin as sa
from nlpgd.data.shifts import load_shift
from nlpgd.errors import NlpgdError

runner = CliRunner()
SIZES = {"easy-ham-1": 60, "easy-ham-2": 40, "hard-ham-1": 20, "spam-1": 30, "spam-2": 40}
_WORDS = {
    "ham": "hey lunch tomorrow meeting home later dinner see you soon thanks patch list".split(),
    "spam": "win free prize cash claim urgent offer winner call now reply award bonus".split(),
}


def fake_rows(sizes=SIZES, duplicates=()) -> list[dict]:
    """Messages in the shape :func:`load_spamassassin` returns; ``duplicates`` lists
    ``(group, id, text of this other message)`` copies."""
    rng = random.Random(0)
    rows = []
    for group, n in sizes.items():
        label = sa.GROUP_LABELS[group]
        for i in range(n):
            text = " ".join(rng.choice(_WORDS[label]) for _ in range(rng.randint(5, 10))) + f" {group} {i}"
            rows.append({"id": f"{group}/{i:05d}", "group": group, "label": label, "text": text})
    by_id = {r["id"]: r for r in rows}
    for group, i, source in duplicates:
        by_id[f"{group}/{i:05d}"]["text"] = by_id[source]["text"]
    return sorted(rows, key=lambda r: r["id"])


@pytest.fixture
def fake_corpus(monkeypatch):
    state = {"rows": fake_rows()}
    monkeypatch.setattr(sa, "load_spamassassin", lambda cache_dir=None, **kw: state["rows"])
    return state


def invoke(*args):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False)


def test_groups_select_messages_by_group(fake_corpus):
    cfg = dataset_config("spamassassin:groups=easy_ham_1+spam_1")
    assert cfg.groups == ["easy-ham-1", "spam-1"]
    data = load_splits(cfg)
    ids = [i for s in ("train", "validation", "test") for i in data.dataset[s]["id"]]
    assert len(ids) == SIZES["easy-ham-1"] + SIZES["spam-1"]
    assert {i.split("/")[0] for i in ids} == {"easy-ham-1", "spam-1"}
    assert "easy-ham-1 + spam-1" in data.summary["where"]


@pytest.mark.parametrize(
    "spec, message",
    [
        ("spamassassin:groups=easy_ham_3+spam_1", "unknown SpamAssassin group 'easy_ham_3'; the groups are easy-ham-1"),
        ("spamassassin:grups=spam_1", "expected spamassassin:groups=GROUP+GROUP"),
        ("csv:x.csv", None),
    ],
)
def test_bad_groups_are_one_sentence_and_exit_2(fake_corpus, spec, message):
    if message is None:  # groups on another source
        r = invoke("data", spec, "--set", "groups=[spam_1]")
        message = "data.groups selects SpamAssassin groups; source 'csv' has none"
    else:
        r = invoke("data", spec)
    assert r.exit_code == 2, r.output
    assert message in r.stderr and r.stderr.startswith("error: ") and r.stderr.count("\n") == 1, r.stderr


def test_data_lists_the_groups(fake_corpus):
    r = invoke("data", "spamassassin", "--groups")
    assert r.exit_code == 0, r.output
    for group, n in SIZES.items():
        line = next(line for line in r.output.splitlines() if line.startswith(group))
        assert f" {n} " in line and sa.GROUP_DESCRIPTIONS[group] in line
    r = invoke("data", "spamassassin", "--groups", "--json")
    table = json.loads(r.output)
    assert [g["group"] for g in table] == list(SIZES) and table[3]["label"] == "spam"


def test_temporal_split_puts_no_later_message_in_train(fake_corpus):
    shift = load_shift("temporal", DataConfig(source="spamassassin"))
    train_ids = [i for s in ("train", "validation", "test") for i in shift.train.dataset[s]["id"]]
    target_ids = [r["id"] for r in shift.target]
    later = {"easy-ham-2", "spam-2"}
    assert train_ids and not [i for i in train_ids if i.split("/")[0] in later]
    assert {i.split("/")[0] for i in target_ids} == later
    assert len(train_ids) == SIZES["easy-ham-1"] + SIZES["spam-1"]
    assert shift.report["train"]["groups"] == "easy-ham-1 + spam-1"
    assert shift.report["target"]["messages"] == len(target_ids) == SIZES["easy-ham-2"] + SIZES["spam-2"]


def test_difficulty_trains_on_easy_ham_and_holds_spam_out_in_the_same_share(fake_corpus):
    shift = load_shift("difficulty", DataConfig(source="spamassassin", split_seed=3))
    train_ids = {i for s in ("train", "validation", "test") for i in shift.train.dataset[s]["id"]}
    target_ids = {r["id"] for r in shift.target}
    assert not train_ids & target_ids
    assert not [i for i in train_ids if i.startswith("hard-ham-1/")]
    target_ham = [i for i in target_ids if "ham" in i]
    assert target_ham and all(i.startswith("hard-ham-1/") for i in target_ham)
    n_ham = SIZES["easy-ham-1"] + SIZES["easy-ham-2"] + SIZES["hard-ham-1"]
    n_spam = SIZES["spam-1"] + SIZES["spam-2"]
    held = len(target_ids) - len(target_ham)
    assert held == round(n_spam * SIZES["hard-ham-1"] / n_ham)
    assert len(train_ids) + held == n_ham - SIZES["hard-ham-1"] + n_spam


def test_duplicates_across_sides_are_removed_from_the_target_and_counted(fake_corpus):
    fake_corpus["rows"] = fake_rows(
        duplicates=[("easy-ham-2", 0, "easy-ham-1/00003"), ("spam-2", 5, "spam-1/00001"), ("spam-2", 6, "spam-2/00007")]
    )
    shift = load_shift("temporal", DataConfig(source="spamassassin"))
    target_ids = {r["id"] for r in shift.target}
    assert "easy-ham-2/00000" not in target_ids and "spam-2/00005" not in target_ids
    train_texts = {t for s in ("train", "validation", "test") for t in shift.train.dataset[s]["text"]}
    assert not train_texts & {r["text"] for r in shift.target}
    counts = shift.report["target"]
    assert counts["duplicates_of_train"] == 2 and counts["duplicates_within"] == 1
    assert counts["messages"] == SIZES["easy-ham-2"] + SIZES["spam-2"] - 3


def test_a_side_empty_after_dedup_is_an_error(fake_corpus):
    sizes = {**SIZES, "easy-ham-2": 3, "spam-2": 2}
    dups = [("easy-ham-2", i, f"easy-ham-1/{i:05d}") for i in range(3)]
    dups += [("spam-2", i, f"spam-1/{i:05d}") for i in range(2)]
    fake_corpus["rows"] = fake_rows(sizes, dups)
    with pytest.raises(NlpgdError, match=r"shift 'temporal': the target side \(easy-ham-2 \+ spam-2\) is empty after"):
        load_shift("temporal", DataConfig(source="spamassassin"))


def _shift_config(tmp_path: Path) -> Path:
    cfg = {
        "name": "shift-test",
        "seeds": [0, 1],
        "data": {"source": "spamassassin", "validation_size": 0.2, "test_size": 0.2},
        "models": {"naive_bayes": {}, "logreg": {}},
        "experiment": {
            "bootstrap": 200,
            "robustness": {"shifts": ["temporal", "difficulty"], "strengths": [0], "obfuscations": ["swap"]},
        },
    }
    path = tmp_path / "shift.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def test_robustness_runs_the_shifts_and_reports_both_sides(fake_corpus, tmp_path):
    r = invoke("experiment", "robustness", _shift_config(tmp_path), "--output-dir", tmp_path / "out", "--quiet")
    assert r.exit_code == 0, r.output
    folder = Path(r.output.strip().splitlines()[-1].removeprefix("run folder: "))
    for shift in ("temporal", "difficulty"):
        for m in ("naive_bayes", "logreg"):
            preds = folder / "predictions" / f"shift-{shift}" / m / f"seed1.on-shift-{shift}-target.csv"
            assert preds.is_file()
    results = json.loads((folder / "results.json").read_text())
    conditions = {f["condition"] for f in results["findings"]}
    assert {"temporal shift", "difficulty shift"} <= conditions
    sides = next(t for t in results["tables"] if t["title"].startswith("Real shifts"))
    temporal = {row[1]: row for row in sides["rows"] if row[0] == "temporal"}
    assert temporal["target"][2:6] == ["easy-ham-2 + spam-2", 80, 40, 40]
    assert temporal["train"][3] == SIZES["easy-ham-1"] + SIZES["spam-1"]
    assert "temporal shift" in (folder / "report.md").read_text()


def test_a_shift_with_an_empty_target_stops_the_experiment_before_any_work(fake_corpus, tmp_path):
    dups = [("hard-ham-1", i, f"easy-ham-1/{i:05d}") for i in range(SIZES["hard-ham-1"])]
    fake_corpus["rows"] = fake_rows(duplicates=dups)
    out = tmp_path / "out"
    r = invoke("experiment", "robustness", _shift_config(tmp_path), "--output-dir", out, "--quiet")
    assert r.exit_code == 2, r.output
    assert "shift 'difficulty'" in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not out.exists()


def test_the_schema_knows_the_corpus_groups():
    from nlpgd.config_data import SPAMASSASSIN_GROUPS

    assert tuple(sa.GROUP_COUNTS) == SPAMASSASSIN_GROUPS == tuple(sa.GROUP_DESCRIPTIONS)
