"""Streaming scoring (issue 20 §1): ``classify -`` reads, scores and writes one chunk at a time,
so memory does not grow with the number of messages; --out, --chunk-size and their bad input."""

from __future__ import annotations

import contextlib
import gc
import io
import json
import re
import sys
import tracemalloc

import numpy as np
import pytest
from typer.testing import CliRunner

from nlpgd.cli import app

from conftest import TINY_CSV

runner = CliRunner()
WORDS = "win free prize cash claim hey lunch tomorrow meeting home later".split()


def invoke(*args, **kwargs):
    return runner.invoke(app, [str(a) for a in args], catch_exceptions=False, **kwargs)


class GeneratedLines(io.RawIOBase):
    """stdin made on demand from a generator: nothing ever holds all ``n`` lines."""

    def __init__(self, n: int):
        self.lines = (f"{WORDS[i % 11]} {WORDS[(i * 7) % 11]} {WORDS[(i * 3) % 11]} {i}\n".encode() for i in range(n))
        self.pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buf) -> int:
        while len(self.pending) < len(buf):
            line = next(self.lines, None)
            if line is None:
                break
            self.pending += line
        n = min(len(buf), len(self.pending))
        buf[:n], self.pending = self.pending[:n], self.pending[n:]
        return n


class CountingSink(io.TextIOBase):
    """stdout that counts lines and keeps none of them."""

    encoding = "utf-8"

    def __init__(self):
        self.lines = 0

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self.lines += text.count("\n")
        return len(text)


def classify_generated(monkeypatch, run, n: int, **options) -> int:
    """``classify RUN - --json`` (the command's own function) on ``n`` generated lines; the number
    of lines it printed."""
    from nlpgd.cli.classify import classify

    sink = CountingSink()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BufferedReader(GeneratedLines(n)), encoding="utf-8"))
    monkeypatch.setattr(sys, "stdout", sink)
    classify(run, ["-"], as_json=True, **options)
    return sink.lines


def peak_traced(fn) -> int:
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("model", ["naive_bayes", "gpt2"])
def test_classify_memory_does_not_grow_with_the_number_of_messages(tiny_run, monkeypatch, model):
    """50,000 generated messages peak no higher than 3 chunks' worth: the bound is set by the
    chunk (4,096 messages by default), not by the count. Reading all of stdin first, keeping
    a row per message, or tokenizing everything at once all fail this."""
    small = 3 * 4096

    def run(n):
        lines = classify_generated(monkeypatch, tiny_run, n, model=model)
        assert lines == n  # one model, one JSON line per message

    run(100)  # imports and one-time caches, outside the measurement
    bound = peak_traced(lambda: run(small))
    peak = peak_traced(lambda: run(50_000))
    assert peak < 1.25 * bound + 256 * 1024, (
        f"{model}: peak {peak / 2**20:.1f} MB at 50,000 messages vs {bound / 2**20:.1f} MB at {small}"
    )


class WatchedStdin:
    """Text stdin (no byte buffer, no read-ahead) that records how many lines stdout had
    received each time a line was taken."""

    def __init__(self, lines: list[str], sink: CountingSink):
        self.lines, self.sink, self.seen = lines, sink, []

    def __iter__(self):
        for line in self.lines:
            self.seen.append(self.sink.lines)
            yield line


def test_results_appear_as_each_chunk_is_scored(tiny_run, monkeypatch):
    from nlpgd.cli.classify import classify

    sink = CountingSink()
    stdin = WatchedStdin([f"free prize {i}\n" for i in range(7)], sink)
    monkeypatch.setattr(sys, "stdin", stdin)
    monkeypatch.setattr(sys, "stdout", sink)
    classify(tiny_run, ["-"], as_json=True, model="naive_bayes", chunk_size=3)
    # the first chunk (lines 1-3) was printed before line 5 was read, the second before line 7
    assert stdin.seen[4] >= 3 and stdin.seen[6] >= 6, stdin.seen
    assert sink.lines == 7


def test_json_lines_number_the_input_lines_across_chunks(tiny_run):
    text = "win free prize now\n\nlunch tomorrow at home\n  \nclaim your cash\r\nsee you later\n"
    r = invoke("classify", tiny_run, "-", "--json", "--chunk-size", "2", input=text)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    models = sorted({row["model"] for row in rows})
    assert len(models) >= 4 and len(rows) == 4 * len(models)  # blank lines are skipped, not scored
    assert [row["line"] for row in rows[:: len(models)]] == [1, 3, 5, 6]
    assert rows[len(models) * 2]["text"] == "claim your cash"  # a Windows line end is not part of the text
    whole = [json.loads(line) for line in invoke("classify", tiny_run, "-", "--json", input=text).stdout.splitlines()]
    # chunking changes when lines appear, not what they say (padding moves the encoder's last digits)
    assert [{**row, "prob_spam": pytest.approx(row["prob_spam"], abs=1e-6)} for row in whole] == rows


def test_table_is_the_same_in_chunks(tiny_run):
    text = "".join(f"{w} free prize {i}\n" for i, w in enumerate(WORDS))
    whole = invoke("classify", tiny_run, "-", input=text)
    chunked = invoke("classify", tiny_run, "-", "--chunk-size", "3", input=text)
    assert whole.exit_code == chunked.exit_code == 0, chunked.output
    lines, again = whole.stdout.splitlines(), chunked.stdout.splitlines()
    assert lines[0].split() == ["model", "label", "P(spam)", "text"] and set(lines[1]) <= {"-", " "}
    assert len(again) == len(lines) == 2 + len(WORDS) * 5  # one header, a row per message and model
    # the same columns (the text column's rule is sized on the first chunk), the same rows
    assert again[0] == lines[0] and again[1].split()[:3] == lines[1].split()[:3]
    for row, same in zip(lines[2:], again[2:]):
        (key, label, p, text), (key2, label2, p2, text2) = row.split(None, 3), same.split(None, 3)
        assert (key, label, text) == (key2, label2, text2) and float(p) == pytest.approx(float(p2), abs=2e-4)
        assert same.index(text2) == row.index(text)


def test_out_writes_the_json_lines_to_a_file_renamed_when_complete(tiny_run, tmp_path):
    text = "win free prize now\nlunch tomorrow at home\nclaim your cash\n"
    out = tmp_path / "deep" / "scores.jsonl"
    r = invoke("classify", tiny_run, "-", "--out", out, "--chunk-size", "2", input=text)
    assert r.exit_code == 0, r.output
    assert r.stdout == "" and f"to {out}" in r.stderr
    as_json = invoke("classify", tiny_run, "-", "--json", "--chunk-size", "2", input=text)
    assert out.read_text(encoding="utf-8") == as_json.stdout
    assert sorted(p.name for p in out.parent.iterdir()) == ["scores.jsonl"]  # no .partial left


def test_out_says_what_it_wrote_once_the_bar_is_gone(tiny_run, tmp_path, monkeypatch):
    """On a terminal the 'wrote ...' line came while the bar was still drawn, and stayed glued to
    its end ('classifying: 3 msg [00:00, 95 msg/s]wrote 3 lines ...')."""
    from nlpgd.cli import common

    monkeypatch.setattr(common, "stderr_is_tty", lambda: True)
    out = tmp_path / "scores.jsonl"
    text = "win free prize now\nlunch tomorrow at home\nclaim your cash\n"
    r = invoke("classify", tiny_run, "-", "--model", "naive_bayes", "--out", out, "--chunk-size", "1", input=text)
    assert r.exit_code == 0, r.output
    assert "classifying:" in r.stderr  # the bar was drawn
    said = [part for part in re.split(r"[\r\n]", r.stderr) if "wrote" in part]
    assert said == [f"wrote 3 lines (3 messages x 1 models) to {out}"], r.stderr


def test_out_is_left_unfinished_when_scoring_stops(tiny_run, tmp_path, monkeypatch):
    """An error in the second chunk leaves neither the file nor its .partial; Ctrl-C keeps the
    .partial (what was scored so far) and never the finished name."""
    from nlpgd.errors import NlpgdError
    from nlpgd.models.naive_bayes import NaiveBayesClassifier

    predict = NaiveBayesClassifier.predict_proba
    calls = []

    def second_call_fails(exc):
        def fails(self, texts):
            calls.append(len(texts))
            if len(calls) == 2:
                raise exc
            return predict(self, texts)

        return fails

    text = "".join(f"free prize {i}\n" for i in range(5))
    out = tmp_path / "scores.jsonl"
    monkeypatch.setattr(NaiveBayesClassifier, "predict_proba", second_call_fails(NlpgdError("model broke")))
    r = invoke("classify", tiny_run, "-", "--model", "naive_bayes", "--out", out, "--chunk-size", "2", input=text)
    assert r.exit_code == 2 and "model broke" in r.stderr
    assert list(tmp_path.iterdir()) == []
    calls.clear()
    monkeypatch.setattr(NaiveBayesClassifier, "predict_proba", second_call_fails(KeyboardInterrupt()))
    r = invoke("classify", tiny_run, "-", "--model", "naive_bayes", "--out", out, "--chunk-size", "2", input=text)
    assert r.exit_code == 130 and not out.exists()
    partial = tmp_path / "scores.jsonl.partial"
    assert [json.loads(line)["line"] for line in partial.read_text().splitlines()] == [1, 2]


def one_sentence(r, *fragments):
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.output, r.stderr
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    assert r.stdout == ""


@pytest.fixture
def no_scoring(monkeypatch):
    """Loading a model fails the test: bad options must be refused before any scoring."""
    import nlpgd.scoring

    def refuse(*args, **kwargs):
        raise AssertionError("models were loaded before the options were checked")

    monkeypatch.setattr(nlpgd.scoring, "load_run_models", refuse)


@pytest.mark.parametrize("size", ["0", "-3"])
def test_chunk_size_below_one_is_one_sentence(tiny_run, no_scoring, size):
    one_sentence(invoke("classify", tiny_run, "-", "--chunk-size", size, input="free prize\n"), "--chunk-size", size)


def test_out_in_an_unwritable_place_is_one_sentence_before_scoring(tiny_run, tmp_path, no_scoring):
    afile = tmp_path / "afile"
    afile.write_text("x")
    one_sentence(invoke("classify", tiny_run, "-", "--out", afile / "x.jsonl", input="free prize\n"), str(afile))
    (tmp_path / "adir").mkdir()
    one_sentence(invoke("classify", tiny_run, "-", "--out", tmp_path / "adir", input="free\n"), "is a folder")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["adir", "afile"] and not any((tmp_path / "adir").iterdir())


def test_stdin_that_is_not_utf8_is_one_sentence(tiny_run):
    r = invoke("classify", tiny_run, "-", "--model", "naive_bayes", input=b"free prize\n\xff\xfe bad\n")
    one_sentence(r, "stdin line 2 is not UTF-8")


def test_progress_lines_off_a_terminal_and_a_bar_on_one(tiny_run, monkeypatch, caplog):
    from nlpgd.cli import common

    text = "".join(f"free prize {i}\n" for i in range(6))
    args = ("classify", tiny_run, "-", "--json", "--model", "naive_bayes", "--chunk-size", "2")
    with caplog.at_level("INFO", logger="nlpgd"):
        r = invoke(*args, input=text)
        assert r.stderr == "" and caplog.messages == []  # a short run off a terminal says nothing
        monkeypatch.setattr(common.RateProgress, "every", 0.0)
        r = invoke(*args, input=text)
    lines = caplog.messages
    assert len(lines) == 4 and "classifying: 2 msg in" in lines[0] and "msg/s)" in lines[0], lines
    assert "classifying: done, 6 msg in" in lines[-1] and "\r" not in r.stderr
    caplog.clear()
    with caplog.at_level("INFO", logger="nlpgd"):
        r = invoke(*args, "--quiet", input=text)
    assert r.exit_code == 0 and r.stderr == "" and caplog.messages == []  # --quiet: no progress at all
    monkeypatch.setattr(common, "stderr_is_tty", lambda: True)
    r = invoke(*args, input=text)
    assert "\r" in r.stderr and "msg/s" in r.stderr and "classifying" in r.stderr, r.stderr


def test_a_closed_stdout_stops_quietly(tiny_run, monkeypatch):
    from nlpgd.cli.classify import classify

    class Closed(CountingSink):
        def write(self, text):
            raise BrokenPipeError(32, "Broken pipe")

    monkeypatch.setattr(sys, "stdin", io.StringIO("free prize\nlunch\n"))
    monkeypatch.setattr(sys, "stdout", Closed())
    import typer

    with pytest.raises(typer.Exit) as exc:
        classify(tiny_run, ["-"], as_json=True, model="naive_bayes")
    assert exc.value.exit_code == 141


def test_json_lines_are_what_json_dumps_writes():
    """The rows are formatted without a dict per row: they must stay exactly json.dumps's."""
    import numpy as np

    from nlpgd.cli.classify import _JsonLines

    chunk = [(1, 'café "quoted" \\ back\tslash'), (4, "£5 \u2028 now"), (5, "plain")]
    p_spam = {"naive_bayes/seed0": np.array([1e-12, 0.7, 0.5]), "gpt2/seed0": np.array([1.0, 0.0, 0.123456789])}
    written = []
    _JsonLines(written.append, {})(chunk, p_spam)
    expected = [
        json.dumps({"line": n, "model": k, "text": t, "label": "spam" if p[i] > 0.5 else "ham", "prob_spam": p[i]})
        for i, (n, t) in enumerate(chunk)
        for k, p in ((k, [float(x) for x in v]) for k, v in p_spam.items())
    ]
    assert written == ["".join(line + "\n" for line in expected)]


def test_score_texts_hands_the_model_one_chunk_at_a_time(tiny_run, monkeypatch):
    """evaluate, compare and the claims score through score_texts: the model never sees more
    than a chunk (GPT-2 tokenized every text at once), and the scores are those of one call."""
    import numpy as np

    from nlpgd.models.naive_bayes import NaiveBayesClassifier
    from nlpgd.scoring import load_run_models, score_texts

    model = load_run_models(tiny_run, "naive_bayes")["naive_bayes/seed0"]
    texts = [f"{WORDS[i % 11]} {WORDS[(i * 5) % 11]} {i}" for i in range(10)]
    whole = score_texts(model, texts)
    seen = []
    joint = NaiveBayesClassifier.predict_log_joint
    monkeypatch.setattr(
        NaiveBayesClassifier, "predict_log_joint", lambda self, t: seen.append(len(t)) or joint(self, t)
    )
    chunked = score_texts(model, texts, chunk_size=4)
    assert seen == [4, 4, 2] and chunked.seconds >= 0
    np.testing.assert_allclose(chunked.log_odds, whole.log_odds, rtol=0, atol=1e-9)
    if whole.log_lik is not None:
        np.testing.assert_allclose(chunked.log_lik, whole.log_lik, rtol=0, atol=1e-9)


def test_a_stacks_members_draw_no_bar_off_a_terminal(tiny_run):
    """The stack's GPT-2 member drew its scoring bar (carriage returns) into a redirected log."""
    text = "".join(f"{WORDS[i % 11]} {WORDS[(i * 7) % 11]} {i}\n" for i in range(1500))
    r = invoke("classify", tiny_run, "-", "--json", "--model", "stack", input=text)
    assert r.exit_code == 0 and len(r.stdout.splitlines()) == 1500
    assert r.stderr == "", r.stderr[:200]


def generated_rows(n: int):
    """``(id, text, label)`` of ``n`` messages of 20 words (about 120 characters), made on demand."""
    for i in range(n):
        words = " ".join(WORDS[(i * k) % 11] for k in range(1, 20))
        yield f"m{i}", f"{words} {i}", int(i % 3 == 0)


@pytest.mark.parametrize("model", ["naive_bayes", "gpt2"])
def test_evaluate_memory_grows_by_the_numbers_the_metrics_need_not_the_texts(tiny_run, tmp_path, model):
    """evaluate's scoring loop on 50,000 generated messages: predictions are written as each
    chunk is scored and only each message's label and log-odds stay for the exact metrics
    (ROC-AUC sorts all of them), so the peak may exceed that of 3 chunks' worth by at most
    128 bytes a message (their arrays and sklearn's copies of them). Keeping the texts and
    ids (about 250 bytes a message here), or scoring everything at once, fails this."""
    from nlpgd.experiments.evaluate import score_rows
    from nlpgd.scoring import load_run_models

    models = load_run_models(tiny_run, model, progress=False)
    small, n = 3 * 4096, 50_000

    def run(count):
        out = tmp_path / f"e{count}"
        metrics, shares = score_rows(models, generated_rows(count), out, "test")
        assert [m["n"] for m in metrics.values()] == [count] and shares == [count]

    run(100)  # imports and one-time caches, outside the measurement
    bound = peak_traced(lambda: run(small))
    peak = peak_traced(lambda: run(n))
    allowed = 1.25 * bound + 256 * 1024 + 128 * (n - small)
    assert peak < allowed, (
        f"{model}: peak {peak / 2**20:.1f} MB at {n:,} messages vs {bound / 2**20:.1f} MB at {small:,}"
    )
    csv = (tmp_path / f"e{n}" / "predictions" / model / "seed0.test.csv").read_text().splitlines()
    assert len(csv) == n + 1 and csv[1].startswith("m0,1,") and csv[-1].startswith(f"m{n - 1},")


@pytest.mark.parametrize("size", ["0", "-3"])
def test_evaluate_chunk_size_below_one_is_one_sentence(tiny_run, no_scoring, size):
    r = invoke("evaluate", tiny_run, "--dataset", f"csv:{TINY_CSV}", "--chunk-size", size)
    one_sentence(r, "--chunk-size", size)
    assert not (tiny_run / "evaluations").exists()


def test_classify_dataset_gives_each_message_of_the_split_by_id(copy_run, monkeypatch):
    """``classify --dataset`` scores a data set's split as ``evaluate`` does, message for
    message, and like it reads a CSV a batch at a time (never the whole data set at once)."""
    import nlpgd.data
    import nlpgd.experiments.evaluate

    def whole(*_, **__):
        raise AssertionError("read whole")

    monkeypatch.setattr(nlpgd.data, "load_splits", whole)
    monkeypatch.setattr(nlpgd.experiments.evaluate, "load_splits", whole)
    run = copy_run()
    spec = ["--dataset", f"csv:{TINY_CSV}", "--split", "all", "--model", "naive_bayes"]
    r = invoke("classify", run, *spec, "--json", "--chunk-size", "9")
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert invoke("evaluate", run, *spec, "--name", "e", "--quiet").exit_code == 0
    assert list(json.loads((run / "evaluations" / "e" / "metrics.json").read_text())) == ["naive_bayes/seed0"]
    import csv

    with (run / "evaluations" / "e" / "predictions" / "naive_bayes" / "seed0.all.csv").open() as f:
        expected = [(r["id"], float(r["prob_spam"])) for r in csv.DictReader(f)]
    assert [row["id"] for row in rows] == [i for i, _ in expected] and len(expected) > 100
    # classify reports predict_proba, evaluate P(spam) from the log-odds: equal to the last bit or two
    assert [row["prob_spam"] for row in rows] == pytest.approx([p for _, p in expected], rel=1e-12, abs=1e-300)


def test_classify_dataset_options_refused_before_scoring(tiny_run, no_scoring, monkeypatch):
    spec = ["--dataset", f"csv:{TINY_CSV}"]
    one_sentence(invoke("classify", tiny_run, "free prize", *spec), "texts or --dataset, not both")
    one_sentence(invoke("classify", tiny_run, *spec, "--split", "dev"), "unknown split 'dev'")
    monkeypatch.setenv("WORLD_SIZE", "2")  # under a launch each process cannot read the same stdin
    one_sentence(invoke("classify", tiny_run, "-", input="free prize\n"), "with --dataset")


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings (Linux)")
def test_freed_memory_is_kept_while_scoring_and_returned_after():
    """Inside the block a freed 64 MB buffer stays with the process (the next batch reuses it
    without page faults); on leaving, glibc's thresholds are put back and the free memory goes
    back to the system, so the rest of the command (the metrics) does not stack on it."""
    from nlpgd import scoring

    size = 64 << 20
    with scoring.freed_memory_kept() as kept:
        assert kept
        before = _rss_mb()
        buf = b"x" * size
        del buf
        assert _rss_mb() - before > 48  # kept
    assert _rss_mb() - before < 16  # returned
    buf = b"x" * size  # and the defaults are back: a large block is unmapped when freed
    del buf
    assert _rss_mb() - before < 16


def test_score_chunks_keeps_freed_memory_only_while_it_scores_and_trims_it_after_each_chunk(monkeypatch):
    from nlpgd import scoring

    events = []

    @contextlib.contextmanager
    def recording():
        events.append("set")
        try:
            yield scoring.KeptMemory(None)  # the real object, without a C library to set
        finally:
            events.append("restored")

    monkeypatch.setattr(scoring, "freed_memory_kept", recording)
    monkeypatch.setattr(scoring, "return_freed_memory", lambda: events.append("trimmed"))
    chunks = scoring.score_chunks({}, iter(["a", "b", "c"]), 1)
    next(chunks)
    assert events == ["set"]
    assert len(list(chunks)) == 2
    # each chunk's free memory goes back once it is written: fragments of batches of every
    # shape cannot pile up over a million messages (MiniLM's RSS crept 10% per 30k without it)
    assert events == ["set", "trimmed", "trimmed", "trimmed", "restored"]
    early = scoring.score_chunks({}, iter(["a", "b"]), 1)
    next(early)
    early.close()  # the reader went away (| head): the settings are put back all the same
    assert events[-1] == "restored"


class _Allocating:
    """A model whose scoring frees a 64 MB block, and records how much of it the process kept."""

    classes_ = np.array(["ham", "spam"])

    def __init__(self, limit: int | None, kept: list):
        self.scoring_block_limit, self.kept = limit, kept

    def predict_proba(self, texts):
        before = _rss_mb()
        block = bytearray(64 << 20)
        block[:: 1 << 12] = b"x" * (16 << 10)  # touch every page
        del block
        self.kept.append((self.scoring_block_limit, round(_rss_mb() - before)))
        return np.full((len(texts), 2), 0.5)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's malloc settings (Linux)")
def test_each_model_keeps_only_blocks_below_its_limit_while_it_scores():
    """An encoder's batch tensors change size with the batch's length and, kept, fragment the
    heap over a stream (MiniLM's peak crept 604 -> 745 MB over 65k messages): while a model with
    a ``scoring_block_limit`` scores, larger blocks are mapped afresh and go back when freed;
    a model without one (the LMs) keeps them, also when the two score the same chunks in turn."""
    from nlpgd import scoring

    kept: list = []
    models = {"limited": _Allocating(16 << 20, kept), "unlimited": _Allocating(None, kept)}
    assert len(list(scoring.score_chunks(models, iter(["a", "b", "c"]), 1))) == 3
    assert [limit for limit, _ in kept] == [16 << 20, None] * 3
    assert all(mb < 16 for limit, mb in kept if limit), kept  # returned when freed
    assert all(mb > 48 for limit, mb in kept if not limit), kept  # kept for the next batch


def test_evaluate_returns_free_memory_after_the_data_pass_and_each_chunk(copy_run, monkeypatch):
    """As classify does: what a chunk's batches left free goes back before the next chunk, so
    heap fragments cannot pile up over an archive (and the first data pass's temporaries too)."""
    import math

    import nlpgd.experiments.evaluate as ev
    from nlpgd import scoring

    calls = []
    for module in (ev, scoring):  # the data pass's, and each chunk's (KeptMemory.chunk_done)
        monkeypatch.setattr(module, "return_freed_memory", lambda: calls.append(1) or True)
    limits = []  # and each model's block limit is set before it scores its share of a chunk
    monkeypatch.setattr(scoring.KeptMemory, "scoring", lambda self, model: limits.append(model.scoring_block_limit))
    run = copy_run()
    spec = ["--dataset", f"csv:{TINY_CSV}", "--split", "all", "--model", "naive_bayes"]
    r = invoke("evaluate", run, *spec, "--chunk-size", "50", "--name", "e", "--quiet")
    assert r.exit_code == 0, r.output
    n = json.loads((run / "evaluations" / "e" / "evaluation.json").read_text())["n"]
    assert n > 100 and len(calls) == 1 + math.ceil(n / 50) + 1  # and on leaving the scoring
    assert limits == [None] * math.ceil(n / 50)  # naive Bayes keeps every block
