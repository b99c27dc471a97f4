"""What a person sees. Off a terminal (a log file, CI): no cursor codes, no raw dicts, one
readable log line per epoch. In a terminal: one bar per phase. After a run has finished, a
Ctrl-C exits 0 without interpreter-shutdown noise."""

import logging
import os
import re
import signal
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from nlpgd.cli import app
from nlpgd.cli.common import LogFormat

from conftest import REPO

TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"
TINY_CFG = REPO / "configs" / "smoke" / "tiny.yaml"
NEURAL = ("distilbert", "gpt2")
EPOCH_LINE = re.compile(
    r"^(?P<time>\d\d:\d\d:\d\d )?(?P<model>\w+)/seed0 epoch (?P<epoch>\d)/2: train loss \d+\.\d{4}, "
    r"validation loss \d+\.\d{4}.* \(\d+\.\d s\)$"
)
CURSOR = re.compile(r"\x1b\[|\r")


def _neural_config(tmp_path):
    """configs/smoke/tiny.yaml with its two Trainer arms only (2 epochs each)."""
    import yaml

    cfg = yaml.safe_load(TINY_CFG.read_text())
    cfg["models"] = {k: v for k, v in cfg["models"].items() if k in NEURAL}
    cfg["data"]["path"] = str(TINY_CSV)
    path = tmp_path / "neural.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def _epoch_lines(lines):
    found = {}
    for line in lines:
        m = EPOCH_LINE.match(line)
        if m:
            found.setdefault(m["model"], []).append(int(m["epoch"]))
    return found


def test_log_lines_read_as_time_and_message():
    def record(level, msg):
        return logging.LogRecord("nlpgd.train", level, __file__, 1, msg, None, None)

    line = LogFormat().format(record(logging.INFO, "gpt2/seed0 epoch 2/2: train loss 1.0000 (0.1 s)"))
    assert re.fullmatch(r"\d\d:\d\d:\d\d gpt2/seed0 epoch 2/2: train loss 1\.0000 \(0\.1 s\)", line)
    assert re.fullmatch(
        r"\d\d:\d\d:\d\d warning: disk nearly full", LogFormat().format(record(logging.WARNING, "disk nearly full"))
    )


def test_off_a_terminal_no_bars_no_dicts_one_line_per_epoch(tmp_path, caplog):
    # CliRunner's stderr is not a terminal: the config's progress: true must not draw bars
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        r = CliRunner().invoke(
            app, ["compare", str(_neural_config(tmp_path)), "--output-dir", str(tmp_path / "o")], catch_exceptions=False
        )
    assert r.exit_code == 0, r.output
    assert not CURSOR.search(r.output), repr(r.output[:500])
    assert "{'loss'" not in r.output and "{'eval_loss'" not in r.output and "{'train_runtime'" not in r.output
    lines = [rec.getMessage() for rec in caplog.records]
    assert _epoch_lines(lines) == {m: [1, 2] for m in NEURAL}, lines


def test_a_late_ctrl_c_is_ignored_once_the_command_is_done():
    """The mechanism: after command_finished() SIGINT no longer interrupts the process (the
    interpreter's shutdown takes seconds once torch is loaded; a Ctrl-C there printed
    'Exception ignored in: <module 'threading'>' and turned a finished run into a failure)."""
    # Ctrl-C raises KeyboardInterrupt, as in a terminal (a test run started in the background
    # hands its children an ignored SIGINT)
    code = (
        "import os, signal, time\n"
        "signal.signal(signal.SIGINT, signal.default_int_handler)\n"
        "from nlpgd.cli import common\n"
        "common.IN_MAIN = True\n"
        "common.command_finished()\n"
        "os.kill(os.getpid(), signal.SIGINT)\n"
        "time.sleep(0.3)\n"
        "print('still here')\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0 and "still here" in done.stdout and not done.stderr, done.stderr
    # without it, the same SIGINT is a KeyboardInterrupt
    code = code.replace("common.command_finished()\n", "")
    plain = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert plain.returncode != 0 and "KeyboardInterrupt" in plain.stderr


def test_command_finished_leaves_a_test_runners_ctrl_c_alone():
    from nlpgd.cli.common import command_finished

    before = signal.getsignal(signal.SIGINT)
    command_finished()  # IN_MAIN is False here: the test process is not the command
    assert signal.getsignal(signal.SIGINT) is before


@pytest.mark.slow
def test_the_log_of_a_real_compare_and_a_ctrl_c_after_it(tmp_path):
    """The command as CI runs it, stderr to a pipe; SIGINT as soon as it prints the run folder."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("HF_DATASETS_DISABLE_PROGRESS_BARS", None)  # the CLI must turn datasets' bars off itself
    cmd = [sys.executable, str(REPO / "cli.py"), "compare", str(TINY_CFG), "--set", f"data.path={TINY_CSV}"]
    proc = subprocess.Popen(
        [*cmd, "--output-dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),  # Ctrl-C acts, even from a background run
    )
    for line in proc.stdout:
        if line.startswith("run folder:"):
            proc.send_signal(signal.SIGINT)
            break
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err[-3000:]
    assert "Exception ignored" not in err and "Traceback" not in err and "KeyboardInterrupt" not in err
    assert not CURSOR.search(err), repr(err[:800])
    assert "{'" not in err
    lines = err.splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines), lines
    assert _epoch_lines(lines) == {m: [1, 2] for m in NEURAL}, lines


def _run_in_a_terminal(cmd, env, cols=120):
    import fcntl
    import struct
    import termios

    master, slave = os.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, cols, 0, 0))
    proc = subprocess.Popen(cmd, stdin=slave, stdout=slave, stderr=slave, env=env, close_fds=True)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the terminal closed
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=300)
    os.close(master)
    return proc.returncode, b"".join(chunks).decode("utf-8", "replace")


@pytest.mark.slow
def test_in_a_terminal_one_bar_per_phase(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cmd = [sys.executable, str(REPO / "cli.py"), "compare", str(_neural_config(tmp_path))]
    rc, screen = _run_in_a_terminal([*cmd, "--output-dir", str(tmp_path / "o")], env)
    assert rc == 0, screen[-3000:]
    bars = set(re.findall(r"([\w/]+):\s+\d+%\|", screen))
    assert bars == {"compare", "distilbert/seed0", "gpt2/seed0"}, bars
    assert "Writing model shards" not in screen and "{'loss'" not in screen
    assert len(re.findall(r"epoch \d/2: train loss", screen)) == 4


def test_the_log_of_an_experiment_off_a_terminal(tmp_path):
    """`nlpgd experiment` with stderr to a pipe: plain time-stamped lines, no bars."""
    import yaml

    cfg = yaml.safe_load(TINY_CFG.read_text())
    cfg["models"] = {k: v for k, v in cfg["models"].items() if k in ("naive_bayes", "logreg")}
    cfg["data"]["path"] = str(TINY_CSV)
    cfg["seeds"] = [0, 1]  # a claims verdict needs two
    path = tmp_path / "linear.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    cmd = [
        sys.executable,
        str(REPO / "cli.py"),
        "experiment",
        "missing-words",
        str(path),
        "--output-dir",
        str(tmp_path),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert not CURSOR.search(proc.stderr), repr(proc.stderr[:800])
    lines = proc.stderr.splitlines()
    assert lines and all(re.match(r"\d\d:\d\d:\d\d ", line) for line in lines), lines
    assert "run folder:" in proc.stdout


# -- what the libraries and the encoder say (nothing to warn about; one line per split) ----


@pytest.fixture
def transformers_warnings():
    """The warnings transformers logs during the test, its once-per-process ones included."""
    import transformers.utils.logging  # noqa: F401 (adds Logger.warning_once)

    records: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            records.append(record.getMessage())

    logger, handler = logging.getLogger("transformers"), Keep(level=logging.WARNING)
    before = logger.level
    logging.Logger.warning_once.cache_clear()  # transformers' warning_once: an earlier test may have used it up
    logger.addHandler(handler)
    logger.setLevel(logging.WARNING)
    yield records
    logger.removeHandler(handler)
    logger.setLevel(before)


def test_a_gpt2_fit_and_its_samples_give_transformers_nothing_to_warn_about(transformers_warnings, tmp_path):
    """Once each fit, transformers said "`loss_type=None` ... unrecognized" (training) and "There were
    missing keys in the checkpoint model loaded: ['lm_head.weight']" (the best epoch reloaded), and
    sampling said "We strongly recommend passing in an `attention_mask`"."""
    from nlpgd.models.base import FitContext
    from nlpgd.models.gpt2 import GPT2Classifier
    from nlpgd.params import GPT2Params

    from conftest import make_corpus

    params = GPT2Params(n_layer=1, n_embd=32, n_head=2, vocab_size=300, n_positions=64, max_length=32, epochs=2)
    ctx = FitContext(seed=0, validation=make_corpus(5, seed=1), work_dir=tmp_path, progress=False)
    model = GPT2Classifier(params).fit(*make_corpus(20, seed=0), ctx)
    assert len(model.generate("spam", 20, seed=0, progress=False)) == 20
    assert transformers_warnings == []
    lm = model.lms_["spam"]  # the best epoch reloaded: its output layer is still the input embedding
    assert lm.get_output_embeddings().weight is lm.get_input_embeddings().weight


def test_the_encoder_names_each_split_it_truncated_once(tmp_path, caplog):
    """One line per split, naming it: training (a warning), validation, test; validation was
    said twice (at the fit, then unnamed when it was scored) and test without its name."""
    import yaml

    cfg = yaml.safe_load(TINY_CFG.read_text())
    cfg["models"] = {"distilbert": cfg["models"]["distilbert"]}
    cfg["data"]["path"] = str(TINY_CSV)
    path = tmp_path / "encoder.yaml"
    path.write_text(yaml.safe_dump(cfg))
    with caplog.at_level(logging.INFO, logger="nlpgd"):
        r = CliRunner().invoke(app, ["compare", str(path), "--output-dir", str(tmp_path / "o")], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    lines = [(rec.levelname, rec.getMessage()) for rec in caplog.records if "truncat" in rec.getMessage()]
    said = re.compile(
        r"distilbert/seed0: \d+ of \d+ (\w+) texts are longer than max_length=32 tokens and were truncated"
    )
    splits = [m[1] for _, line in lines if (m := said.fullmatch(line))]
    assert len(splits) == len(lines) and splits == ["training", "validation", "test"], lines
    assert [level for level, _ in lines] == ["WARNING", "INFO", "INFO"]


def test_a_split_scored_in_chunks_is_one_truncation_line():
    from nlpgd.models.hf_logging import report_truncated, scoring_split

    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(record.getMessage())

    log = logging.getLogger("nlpgd.test_truncation")
    log.addHandler(Keep())
    log.setLevel(logging.INFO)
    with scoring_split("test"):
        for n, total in ((2, 10), (0, 10), (1, 5)):
            report_truncated(log, "m/seed0", n, total, 16)
    report_truncated(log, "m/seed0", 0, 4, 16)  # nothing cut: nothing said
    report_truncated(log, "m/seed0", 1, 4, 16)  # no split named: what was scored
    tail = "texts are longer than max_length=16 tokens and were truncated"
    assert seen == [f"m/seed0: 3 of 25 test {tail}", f"m/seed0: 1 of 4 scored {tail}"]
