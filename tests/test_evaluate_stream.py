"""`evaluate --dataset` reads a local file a batch at a time (nlpgd/data/stream.py): the same
messages in the same order, the same summary and the same outputs as the in-memory path, and
peak memory that does not grow with the texts."""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

import pytest
from test_streaming import peak_traced

from nlpgd.config import DataConfig
from nlpgd.data import load_splits
from nlpgd.data.prepare import SPLITS
from nlpgd.data.stream import StreamedData, stream_refusal
from nlpgd.errors import NlpgdError

from conftest import invoke, one_sentence

WORDS = "win free prize cash claim hey lunch tomorrow meeting home later".split()


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def messy_rows(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """Messages with everything the cleaning counts: raw label spellings, empty texts, long
    texts, exact duplicates, and texts seen with both labels (three ways: a tie, a majority, a
    first label)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        text = " ".join(rng.choice(WORDS) for _ in range(rng.randint(2, 9))) + f" {i}"
        label = rng.choice(["spam", "ham", "1", "0", "SPAM", "Ham", "true", "false"])
        kind = i % 17
        if kind == 0:
            text = ""
        elif kind == 1:
            text = "  \t "
        elif kind == 2:
            text = "x" * (60 + i % 7) + f" {i}"  # long; cut to 50 they are one text with both labels
        elif kind in (3, 4, 5):
            text, label = f"again {i % 23}", ("spam", "ham")[i % 23 % 2]  # duplicates of one label
        elif kind == 6:
            text = f"clash {i % 5}"  # copies with both labels
        rows.append((text, label))
    return rows


def same(streamed: StreamedData, prepared) -> None:
    assert json.dumps(streamed.summary) == json.dumps(prepared.summary)
    for s in SPLITS:
        d = prepared.dataset[s]
        assert list(streamed.rows(s)) == list(zip(d["id"], d["text"], d["label"])), s


@pytest.mark.parametrize("conflicts", ["drop", "first", "majority"])
@pytest.mark.parametrize("dedup", [True, False])
def test_one_file_streams_the_messages_and_summary_of_the_in_memory_path(tmp_path, monkeypatch, conflicts, dedup):
    """A pool split seeded and stratified, de-duplicated or not, every conflict rule, long texts
    cut, empty texts dropped: message for message (ids, order) and the summary key for key,
    read in batches of 7 so every step crosses batches."""
    monkeypatch.setattr("nlpgd.data.stream.BATCH", 7)
    f = write_csv(tmp_path / "m.csv", messy_rows(900))
    cfg = DataConfig(source="csv", path=str(f), max_chars=50, dedup=dedup, conflicts=conflicts, split_seed=3)
    streamed = StreamedData(cfg)
    assert streamed.summary["label_conflicts"]["count"] and streamed.summary["long_texts_cut"]["count"]
    assert streamed.summary["empty_dropped"] and (streamed.summary["duplicates_removed"] or not dedup)
    same(streamed, load_splits(cfg, need_both_classes=False))


@pytest.mark.parametrize("given", [("train", "test"), ("train", "validation", "test"), ("train", "validation")])
def test_files_per_split_stream_as_given_and_carved(tmp_path, monkeypatch, given):
    monkeypatch.setattr("nlpgd.data.stream.BATCH", 5)
    rows = messy_rows(600, seed=1)
    files = {s: str(write_csv(tmp_path / f"{s}.csv", rows[k::3])) for k, s in enumerate(given)}
    cfg = DataConfig(source="csv", files=files, max_chars=40)
    streamed = StreamedData(cfg)
    assert streamed.summary["test_texts_also_in_train"]  # the repeated texts cross the files
    same(streamed, load_splits(cfg, need_both_classes=False))


def test_uci_sms_file_streams(tmp_path, monkeypatch):
    monkeypatch.setattr("nlpgd.data.stream.BATCH", 4)
    f = tmp_path / "sms.txt"
    f.write_text("".join(f"{y}\t{t}\n" + ("\n" if i % 9 == 0 else "") for i, (t, y) in enumerate(messy_rows(300))))
    cfg = DataConfig(source="uci_sms", path=str(f), dedup=False)
    same(StreamedData(cfg), load_splits(cfg, need_both_classes=False))


@pytest.mark.parametrize("hub_splits", [("train",), ("train", "test")])
def test_a_hub_data_set_streams_from_its_arrow_files(monkeypatch, hub_splits):
    """A hub data set (here made in memory and handed to ``load_dataset``'s caller): a single
    ``train`` split (a pool, with a ClassLabel column) or the hub's own train/test splits."""
    import datasets

    monkeypatch.setattr("nlpgd.data.stream.BATCH", 6)
    monkeypatch.setattr("nlpgd.hub.prepare_hub", lambda name, what: False)
    label = datasets.ClassLabel(names=["ham", "spam"]) if hub_splits == ("train",) else datasets.Value("string")
    features = datasets.Features({"sms": datasets.Value("string"), "label": label})
    rows = [(t, y) for t, y in messy_rows(300, seed=4) if y in ("spam", "ham")]

    def split(k):
        part = rows[k :: len(hub_splits)]
        labels = [("ham", "spam").index(y) if hub_splits == ("train",) else y for _, y in part]
        return datasets.Dataset.from_dict({"sms": [t for t, _ in part], "label": labels}, features=features)

    dd = datasets.DatasetDict({s: split(k) for k, s in enumerate(hub_splits)})
    monkeypatch.setattr(datasets, "load_dataset", lambda name, **kwargs: dd)
    cfg = DataConfig(source="hub", name="someone/sms", text_column="sms", max_chars=50)
    same(StreamedData(cfg), load_splits(cfg, need_both_classes=False))


def test_what_does_not_stream_says_why():
    assert stream_refusal(DataConfig(source="csv", path="m.csv")) is None
    assert "id_column" in stream_refusal(DataConfig(source="csv", path="m.csv", id_column="key"))
    assert "subsample" in stream_refusal(DataConfig(source="csv", path="m.csv", max_eval_samples=5))
    assert stream_refusal(DataConfig(source="hub", name="a/b")) is None
    assert "SpamAssassin" in stream_refusal(DataConfig(source="spamassassin"))
    assert "several UCI SMS files" in stream_refusal(DataConfig(source="uci_sms", files={"train": "a", "test": "b"}))


def evaluation(run: Path, name: str) -> dict:
    """Everything ``evaluate`` wrote, seconds and the finishing time left out."""
    out = run / "evaluations" / name
    files = {str(p.relative_to(out)): p.read_text() for p in sorted(out.rglob("*")) if p.is_file()}
    metrics = json.loads(files.pop("metrics.json"))
    info = json.loads(files.pop("evaluation.json"))
    for m in metrics.values():
        m.pop("seconds")
    info.pop("finished")
    return {"files": files, "metrics": metrics, "info": info}


@pytest.mark.parametrize("split", ["all", "test"])
def test_evaluate_writes_what_the_in_memory_path_writes(copy_run, tmp_path, monkeypatch, split):
    """The command end to end, streamed and (forced) in memory, on every model of the tiny run:
    predictions, metrics and evaluation.json equal."""
    import nlpgd.experiments.evaluate as ev

    run = copy_run()
    f = write_csv(tmp_path / "m.csv", messy_rows(400, seed=2))
    args = ["evaluate", run, "--dataset", f"csv:{f}", "--split", split, "--chunk-size", "64", "-q"]
    assert invoke(*args, "--name", "streamed").exit_code == 0
    monkeypatch.setattr(ev, "stream_refusal", lambda cfg: "forced")
    assert invoke(*args, "--name", "whole").exit_code == 0
    streamed, whole = evaluation(run, "streamed"), evaluation(run, "whole")
    assert streamed == whole
    assert len(streamed["files"]) > 4  # every model's predictions file


def test_evaluate_peak_memory_does_not_grow_with_the_rows(copy_run, tmp_path):
    """evaluate (naive Bayes) on a CSV of 5,000 and of 50,000 messages of ~120 characters, the
    whole file (--split all, de-duplication off): the peak may grow only by the per-message
    numbers the data's first pass, the seeded split and the exact metrics need (arrays of a few
    bytes a message and numpy's / sklearn's sorted copies of them: under 128 bytes a message),
    never by the texts. The in-memory path (every message's record and Arrow row, about 1 KB
    each here) fails this."""
    from nlpgd.cli.evaluate import evaluate

    def data(n):
        rows = [
            (" ".join(WORDS[(i * k) % 11] for k in range(1, 20)) + f" {i}", "spam" if i % 3 else "ham")
            for i in range(n)
        ]
        return write_csv(tmp_path / f"m{n}.csv", rows)

    files = {n: data(n) for n in (200, 5_000, 50_000)}
    run_dir = copy_run()

    def run(n):
        evaluate(
            run_dir, f"csv:{files[n]}", split="all", set_=["dedup=false"], name=f"e{n}", quiet=True, model="naive_bayes"
        )

    run(200)  # imports and one-time caches, outside the measurement
    small, big = peak_traced(lambda: run(5_000)), peak_traced(lambda: run(50_000))
    allowed = 1.25 * small + 128 * 45_000
    assert big < allowed, f"peak {big / 2**20:.1f} MB at 50,000 messages vs {small / 2**20:.1f} MB at 5,000"


def test_bad_input_in_a_later_batch_is_one_sentence_before_scoring(tmp_path, monkeypatch):
    """An unknown label or a file that changes between passes is found by the streamed reader,
    named in one sentence, as the in-memory path names it."""
    monkeypatch.setattr("nlpgd.data.stream.BATCH", 10)
    rows = messy_rows(95) + [("late message", "junk")] + messy_rows(30)
    cfg = DataConfig(source="csv", path=str(write_csv(tmp_path / "m.csv", rows)))
    with pytest.raises(NlpgdError) as streamed:
        StreamedData(cfg)
    with pytest.raises(NlpgdError) as whole:
        load_splits(cfg, need_both_classes=False)
    assert str(streamed.value) == str(whole.value) and "'junk'" in str(streamed.value)
    missing = DataConfig(source="csv", path=cfg.path, text_column="body")
    with pytest.raises(NlpgdError, match="no text column 'body'"):
        StreamedData(missing)
    f = tmp_path / "sms.txt"
    f.write_text("".join(f"{y}\t{t}\n" for t, y in messy_rows(60) if t.strip()))
    data = StreamedData(DataConfig(source="uci_sms", path=str(f)))
    f.write_text(f.read_text().replace("again", "changed"))
    with pytest.raises(NlpgdError, match="changed while it was being read"):
        list(data.rows("train"))


def test_evaluate_refuses_a_late_unknown_label_before_loading_a_model(copy_run, tmp_path, monkeypatch):
    import nlpgd.scoring

    def refuse(*args, **kwargs):
        raise AssertionError("models were loaded before the data was checked")

    monkeypatch.setattr(nlpgd.scoring, "load_run_models", refuse)
    monkeypatch.setattr("nlpgd.data.stream.BATCH", 16)
    run = copy_run()
    f = write_csv(tmp_path / "m.csv", messy_rows(200) + [("late message", "junk")])
    one_sentence(invoke("evaluate", run, "--dataset", f"csv:{f}", "--split", "all", "--name", "e"), "'junk'", "m.csv")
    assert not list((run / "evaluations").glob("e*"))


def test_evaluate_failing_in_a_later_chunk_leaves_nothing_that_looks_finished(copy_run, tmp_path, monkeypatch):
    import nlpgd.experiments.evaluate as ev

    calls = []
    score = ev._score_part

    def fail_later(model, texts, memory):
        calls.append(len(texts))
        if len(calls) > 3:
            raise NlpgdError("the scoring failed")
        return score(model, texts, memory)

    monkeypatch.setattr(ev, "_score_part", fail_later)
    run = copy_run()
    f = write_csv(tmp_path / "m.csv", messy_rows(300))
    r = invoke("evaluate", run, "--dataset", f"csv:{f}", "--split", "all", "--chunk-size", "50", "--name", "e")
    one_sentence(r, "the scoring failed")
    assert not list((run / "evaluations").glob("e*"))
