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
