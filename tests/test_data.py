import json
import time
from pathlib import Path

import pytest

from nlpgd.config import DataConfig
from nlpgd.data import check_manifest, load_splits
from nlpgd.errors import NlpgdError

from conftest import make_corpus


def write_csv(path: Path, rows, header=("text", "label"), sep=","):
    import csv

    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f, delimiter=sep)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def corpus_rows():
    texts, labels = make_corpus(30, seed=3)
    return list(zip(texts, labels))


def test_csv_with_column_mapping_and_label_map(tmp_path, corpus_rows):
    rows = [(t, {"spam": "junk", "ham": "legit"}[y]) for t, y in corpus_rows]
    f = write_csv(tmp_path / "m.csv", rows, header=("body", "kind"))
    cfg = DataConfig(
        source="csv", path=str(f), text_column="body", label_column="kind", label_map={"junk": "spam", "legit": "ham"}
    )
    d = load_splits(cfg)
    assert sum(d.summary["sizes"].values()) == 60
    assert d.dataset["train"].features["label"].names == ["ham", "spam"]
    # stratified: both classes in every split
    for s in ("train", "validation", "test"):
        assert set(d.labels(s)) == {"ham", "spam"}


def test_tsv_jsonl_parquet(tmp_path, corpus_rows):
    import pandas as pd

    df = pd.DataFrame(corpus_rows, columns=["text", "label"])
    df.to_csv(tmp_path / "m.tsv", sep="\t", index=False)
    df.to_json(tmp_path / "m.jsonl", orient="records", lines=True)
    df.assign(label=(df.label == "spam").astype(int)).to_parquet(tmp_path / "m.parquet")
    sizes = [
        load_splits(DataConfig(source=src, path=str(tmp_path / f"m.{ext}"))).summary["sizes"]
        for src, ext in (("tsv", "tsv"), ("jsonl", "jsonl"), ("parquet", "parquet"))
    ]
    assert sizes[0] == sizes[1] == sizes[2]


def test_uci_sms_format_keeps_quotes(tmp_path):
    lines = ['ham\tHe said "hi" to me', "spam\tWIN a prize now", "ham\tsee you later", "spam\tfree cash call now"] * 5
    lines += [f"ham\tmessage {i}" for i in range(10)] + [f"spam\tclaim prize {i}" for i in range(10)]
    f = tmp_path / "SMSSpamCollection"
    f.write_text("\n".join(lines) + "\n", encoding="utf-8")
    d = load_splits(DataConfig(source="uci_sms", path=str(f)))
    assert d.summary["duplicates_removed"] == 16
    all_texts = sum((d.texts(s) for s in ("train", "validation", "test")), [])
    assert 'He said "hi" to me' in all_texts


def test_split_is_seeded_and_manifest_pins_it(tmp_path, corpus_rows):
    f = write_csv(tmp_path / "m.csv", corpus_rows)
    a = load_splits(DataConfig(source="csv", path=str(f), split_seed=1))
    b = load_splits(DataConfig(source="csv", path=str(f), split_seed=1))
    c = load_splits(DataConfig(source="csv", path=str(f), split_seed=2))
    assert a.manifest() == b.manifest()
    assert a.manifest() != c.manifest()
    check_manifest(b, a.manifest())
    with pytest.raises(NlpgdError, match="no longer matches"):
        check_manifest(c, a.manifest())
    json.dumps(a.manifest())  # serialisable


def test_given_splits_are_kept(tmp_path, corpus_rows):
    tr = write_csv(tmp_path / "train.csv", corpus_rows[:40])
    te = write_csv(tmp_path / "test.csv", corpus_rows[40:])
    d = load_splits(DataConfig(source="csv", files={"train": str(tr), "test": str(te)}))
    assert d.summary["sizes"]["test"] == 20
    assert d.summary["sizes"]["train"] + d.summary["sizes"]["validation"] == 40
    assert d.summary["splits_given"] is True


def test_subsample_is_stratified(tmp_path):
    texts, labels = make_corpus(100, seed=4)
    f = write_csv(tmp_path / "m.csv", list(zip(texts, labels)))
    d = load_splits(DataConfig(source="csv", path=str(f), max_train_samples=40))
    assert d.summary["sizes"]["train"] == 40
    assert set(d.labels("train")) == {"ham", "spam"}


def test_empty_texts_are_dropped_and_counted(tmp_path, corpus_rows):
    f = write_csv(tmp_path / "m.csv", corpus_rows + [("   ", "spam"), ("", "ham")])
    d = load_splits(DataConfig(source="csv", path=str(f)))
    assert d.summary["empty_dropped"] == 2


@pytest.mark.parametrize(
    "content, cfg_extra, message",
    [
        (None, {}, "data file not found"),
        (b"", {}, "data file is empty"),
        (b"body,label\nhello,spam\nbye,ham\n", {}, "no text column 'text' (columns found: body, label)"),
        (b"text,kind\nhello,spam\nbye,ham\n", {}, "no label column 'label' (columns found: text, kind)"),
        (b"text,label\nhello,junk\nbye,ham\n", {}, "label values 'junk'"),
        (b"text,label\nhello,spam\nbye,spam\nhi,spam\n", {}, "only one class present (spam)"),
        (b"text,label\n  ,spam\n,ham\n", {}, "every text is empty"),
        (b"text,label\ncaf\xe9,spam\nbye,ham\n", {}, "is not UTF-8 text (invalid byte 0xe9 on line 2)"),
    ],
)
def test_bad_input_is_one_sentence(tmp_path, content, cfg_extra, message):
    f = tmp_path / "bad.csv"
    if content is not None:
        f.write_bytes(content)
    with pytest.raises(NlpgdError) as exc:
        load_splits(DataConfig(source="csv", path=str(f), **cfg_extra))
    assert message in str(exc.value)
    assert "\n" not in str(exc.value)


def test_uci_line_without_tab(tmp_path):
    f = tmp_path / "sms"
    f.write_text("ham\thello\nspam no tab here\n")
    with pytest.raises(NlpgdError, match="line 2"):
        load_splits(DataConfig(source="uci_sms", path=str(f)))


def test_hub_name_offline_fails_fast():
    t0 = time.perf_counter()
    with pytest.raises(NlpgdError, match="hub is unreachable"):
        load_splits(DataConfig(source="hub", name="ucirvine/sms_spam"))
    assert time.perf_counter() - t0 < 15


# -- cleaning that must not lose or distort data silently (through the CLI) ------------------

from typer.testing import CliRunner  # noqa: E402

from nlpgd.cli import app  # noqa: E402


def _data_cli(*args):
    return CliRunner().invoke(app, ["data", *map(str, args)], catch_exceptions=False)


def _summary(spec, *sets):
    r = _data_cli(spec, "--json", *[a for s in sets for a in ("--set", s)])
    assert r.exit_code == 0, r.output
    return json.loads(r.stdout)


@pytest.mark.parametrize("source, sep", [("csv", ","), ("tsv", "\t")])
def test_texts_that_look_like_na_are_kept(tmp_path, corpus_rows, source, sep):
    na_like = ["NA", "null", "None", "N/A", "nan", "#N/A"]
    rows = corpus_rows + [(t, "ham") for t in na_like] + [("", "spam")]
    f = write_csv(tmp_path / f"m.{source}", rows, sep=sep)
    s = _summary(f"{source}:{f}")
    assert s["empty_dropped"] == 1  # only the truly empty cell
    assert sum(s["sizes"].values()) == len(corpus_rows) + len(na_like)
    d = load_splits(DataConfig(source=source, path=str(f)))
    texts = {t for split in ("train", "validation", "test") for t in d.texts(split)}
    assert set(na_like) <= texts


def _conflict_rows(corpus_rows):
    # "win a prize" three times: spam, ham, spam; "see you" twice: ham, spam
    return corpus_rows + [
        ("win a prize", "spam"),
        ("win a prize", "ham"),
        ("win a prize", "spam"),
        ("see you", "ham"),
        ("see you", "spam"),
    ]


@pytest.mark.parametrize(
    "rule, kept",
    [("drop", {}), ("first", {"win a prize": "spam", "see you": "ham"}), ("majority", {"win a prize": "spam"})],
)
def test_conflicting_labels_are_reported_and_resolved_by_the_rule(tmp_path, corpus_rows, rule, kept):
    f = write_csv(tmp_path / "m.csv", _conflict_rows(corpus_rows))
    sets = [] if rule == "drop" else [f"conflicts={rule}"]  # drop is the default
    s = _summary(f"csv:{f}", *sets)
    c = s["label_conflicts"]
    assert c["count"] == 2 and c["rule"] == rule
    assert {e["text"] for e in c["examples"]} == {"win a prize", "see you"}
    assert {"ham": 1, "spam": 2} in [e["labels"] for e in c["examples"]]
    d = load_splits(DataConfig(source="csv", path=str(f), conflicts=rule))
    found = {t: y for split in ("train", "validation", "test") for t, y in zip(d.texts(split), d.labels(split))}
    assert {t: found[t] for t in ("win a prize", "see you") if t in found} == kept
    # exact duplicates that agree are counted as duplicates, not conflicts
    assert s["duplicates_removed"] == (1 if rule in ("first", "majority") else 0)
    r = _data_cli(f"csv:{f}", *(a for x in sets for a in ("--set", x)))
    assert r.exit_code == 0
    (note,) = [line for line in r.stdout.splitlines() if "both labels" in line]
    assert note.startswith("note: 2 texts appear with both labels") and f"data.conflicts: {rule}" in note
    assert "'win a prize' (ham 1, spam 2)" in note


def test_bad_conflict_rule_is_one_sentence(tmp_path, corpus_rows):
    f = write_csv(tmp_path / "m.csv", corpus_rows)
    r = _data_cli(f"csv:{f}", "--set", "conflicts=vote")
    assert r.exit_code == 2 and "conflicts" in r.stderr and r.stderr.count("\n") == 1, r.stderr


def test_reused_ids_are_reported_not_silently_renamed(tmp_path, corpus_rows):
    rows = [(f"id{i % 50}", t, y) for i, (t, y) in enumerate(corpus_rows)]  # 60 rows, ids id0..id49
    f = write_csv(tmp_path / "m.csv", rows, header=("key", "text", "label"))
    s = _summary(f"csv:{f}", "id_column=key")
    reused = s["reused_ids"]
    assert reused["count"] == 10 and len(reused["examples"]) == 3
    assert set(reused["examples"]) <= {f"id{i}" for i in range(10)}
    d = load_splits(DataConfig(source="csv", path=str(f), id_column="key"))
    ids = [i for split in ("train", "validation", "test") for i in d.dataset[split]["id"]]
    assert len(ids) == len(set(ids)) == 60 and "id0-2" in ids
    r = _data_cli(f"csv:{f}", "--set", "id_column=key")
    shown = ", ".join(repr(i) for i in reused["examples"])
    assert f"note: 10 messages reuse an id already taken (e.g. {shown}); each was renamed <id>-2" in r.stdout


def test_long_texts_are_cut_counted_and_reported(tmp_path, corpus_rows):
    rows = corpus_rows + [("spam " * 300_000, "spam"), ("ham " * 4_000, "ham")]
    f = write_csv(tmp_path / "m.csv", rows)
    s = _summary(f"csv:{f}")
    assert s["long_texts_cut"] == {"count": 1, "max_chars": 20_000, "longest": 1_500_000}
    assert s["lengths"]["train"]["chars"]["max"] <= 20_000
    s = _summary(f"csv:{f}", "max_chars=1000")
    assert s["long_texts_cut"]["count"] == 2
    assert max(s["lengths"][x]["chars"]["max"] for x in ("train", "validation", "test")) <= 1000
    r = _data_cli(f"csv:{f}")
    assert "note: 1 text longer than data.max_chars = 20,000 characters was cut to it (the longest had 1,500,000)" in (
        r.stdout
    )


def test_where_of_a_files_config_is_a_mapping(tmp_path, corpus_rows):
    tr = write_csv(tmp_path / "train.csv", corpus_rows[:40])
    te = write_csv(tmp_path / "test.csv", corpus_rows[40:])
    spec = tmp_path / "data.yaml"
    spec.write_text(f"source: csv\nfiles: {{train: {tr}, test: {te}}}\n")
    s = _summary(spec)
    assert s["where"] == {"train": str(tr), "test": str(te)}
    r = _data_cli(spec)
    assert f"source: csv (train: {tr}, test: {te})" in r.stdout and "{" not in r.stdout
