"""Shared CLI plumbing: one-line errors, what reaches the screen, dataset specs, output helpers.

What a person sees is decided here, once: progress bars only when asked for and stderr is a
terminal (and only on the first process of a torchrun launch); log lines through ``logging``
as ``HH:MM:SS message``; library chatter (datasets, transformers, the hub) off. The decision
is passed down to the library as a plain ``progress`` flag.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from nlpgd.errors import NlpgdError
from nlpgd.io import left_partial
from nlpgd.runs import PARTIAL, held_runs, release_runs

IN_MAIN = False  # set by nlpgd.cli.main(): this process is the command itself (not a test's CliRunner)
# `nlpgd --quiet CMD` / `nlpgd --verbose CMD` (the app's options), for the one command that follows
GLOBAL_FLAGS = {"quiet": False, "verbose": False}
# the command being run: no progress bars (--quiet), the libraries' own log messages (--verbose)
_flags = {"quiet": False, "verbose": False}
LIBRARY_LOGGERS = ("datasets", "transformers", "evaluate", "huggingface_hub", "accelerate", "torch")

Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bars.")]
OutputDir = Annotated[Optional[Path], typer.Option(help="Where run folders go (default: the config's output_dir).")]
Resume = Annotated[
    Optional[Path], typer.Option(help="Continue an interrupted run folder (<run-id>.partial) with the same config.")
]
Verbose = Annotated[
    bool, typer.Option("--verbose", "-v", help="Also show the libraries' log messages (transformers, datasets, ...).")
]


def optional(kind, help: str):
    """The type of an option that is unset (None) unless given; ``--help`` shows no default."""
    return Annotated[Optional[kind], typer.Option(help=help, show_default=False)]


def cli_errors(fn):
    """Turn :class:`NlpgdError` (and Ctrl-C) into one line on stderr and a non-zero exit; once
    the command is done, a late Ctrl-C is ignored (see :func:`command_finished`)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        verbosity = os.environ.get("TRANSFORMERS_VERBOSITY")
        _flags.update(
            quiet=GLOBAL_FLAGS["quiet"] or bool(kwargs.get("quiet")),
            verbose=GLOBAL_FLAGS["verbose"] or bool(kwargs.get("verbose")),
        )
        _setup_logging(_flags["verbose"])
        left_partial()  # what an earlier command in this process left is not this one's
        try:
            result = fn(*args, **kwargs)
        except NlpgdError as exc:
            if is_first_process():
                typer.echo(f"{exc.prefix}{exc}", err=True)
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            if is_first_process():
                typer.echo(interrupted_line(), err=True)
            raise typer.Exit(code=130) from None
        finally:  # the flags hold for this command only (a test runs many in one process)
            release_runs()  # a run folder this command wrote is free for the next writer
            GLOBAL_FLAGS.update(quiet=False, verbose=False)
            _flags.update(quiet=False, verbose=False)
            if verbosity is None:
                os.environ.pop("TRANSFORMERS_VERBOSITY", None)
            else:
                os.environ["TRANSFORMERS_VERBOSITY"] = verbosity
        command_finished()
        return result

    return wrapper


def interrupted_line() -> str:
    """What Ctrl-C left, in one line: the ``.partial`` file of an output written as it goes
    (``classify --out``), a run folder still named ``.partial``, or nothing half-written."""
    left = [f"{tmp} (what was written so far; {final} was not written)" for tmp, final in left_partial()]
    left += [f"the run folder {folder}" for folder in held_runs() if folder.name.endswith(PARTIAL)]
    if not left:
        return "interrupted"
    return f"interrupted: partial results are left in {' and '.join(left)}"


def command_finished() -> None:
    """From here on Ctrl-C is ignored: the work is saved, and the interpreter's shutdown (seconds
    once torch is loaded) must end with exit code 0, not with ``Exception ignored in: <module
    'threading'>`` or an atexit traceback. Only in the real process: a test's CliRunner shares
    the test runner's process, whose Ctrl-C must keep working."""
    if IN_MAIN and threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class LogFormat(logging.Formatter):
    """``HH:MM:SS message`` for information, ``HH:MM:SS warning: message`` above it."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%H:%M:%S")
        kind = "" if record.levelno < logging.WARNING else f"{record.levelname.lower()}: "
        return f"{stamp} {kind}{record.getMessage()}"


def _setup_logging(verbose: bool = False) -> None:
    """nlpgd's own log lines on stderr; the libraries' only with ``verbose`` (else errors only)."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # transformers sets its logger's level from this when first imported, undoing setLevel below;
    # its warnings (e.g. the load report for a freshly initialised classifier head) are expected here
    if verbose:
        os.environ["TRANSFORMERS_VERBOSITY"] = "info"
    else:
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LogFormat())
    logging.basicConfig(level=logging.WARNING, handlers=[handler])  # no-op when the root logger has handlers
    for name in LIBRARY_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO if verbose else logging.ERROR)
    # under torchrun every process runs the command: only the first one talks
    logging.getLogger("nlpgd").setLevel(logging.INFO if is_first_process() else logging.ERROR)


def is_first_process() -> bool:
    """False on the other processes of a torchrun / accelerate launch."""
    from nlpgd.distributed import launched_rank

    return launched_rank() == 0


def progress_bars(wanted: bool = True) -> bool:
    """Whether to draw progress bars: ``wanted`` (e.g. the config's ``progress``), no ``--quiet``,
    stderr is a terminal, and this is the first process of a launch. When not, the libraries'
    own bars (datasets, transformers, the hub) are switched off too, so a log has no cursor codes."""
    on = bool(wanted) and not _flags["quiet"] and stderr_is_tty() and is_first_process()
    if not on:
        os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # read when datasets is imported
        os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")  # transformers follows the hub
        if "datasets" in sys.modules and os.environ["HF_DATASETS_DISABLE_PROGRESS_BARS"] != "0":
            import datasets

            datasets.disable_progress_bars()
        if "transformers" in sys.modules:
            from transformers.utils import logging as hf_logging

            hf_logging.disable_progress_bar()
    return on


@contextlib.contextmanager
def progress_output(on: bool) -> Iterator[None]:
    """With bars on screen, log lines go through tqdm so that they do not tear a bar apart."""
    if not on:
        yield
        return
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm():
        yield


@contextlib.contextmanager
def rate_progress(what: str, unit: str = "msg", *, wanted: bool = True, total: int | None = None):
    """A :class:`RateProgress` for the block: a bar where :func:`progress_bars` allows one (log
    lines then go through tqdm), plain periodic lines otherwise; closed when the block ends."""
    bars = progress_bars(wanted)
    progress = RateProgress(what, unit, bar=bars, total=total)
    with progress_output(bars):
        try:
            yield progress
        finally:
            progress.close()


def config_options(example_config: str, example_override: str):
    """The CONFIG argument and the ``--set`` option of a command that reads an experiment YAML
    (``(Config, Overrides)``, for annotations), with that command's examples in their help."""
    config = Annotated[Path, typer.Argument(help=f"Experiment YAML, e.g. {example_config}.", show_default=False)]
    overrides = Annotated[
        Optional[list[str]],
        typer.Option("--set", help=f"Dotted override, e.g. --set {example_override} (repeatable)."),
    ]
    return config, overrides


def load_run_config(config: Path, set_: list[str] | None, output_dir: Path | None, quiet: bool):
    """CONFIG with its ``--set`` overrides, ``--output-dir`` and ``--quiet`` (progress off) applied."""
    from nlpgd.config import load_config

    overrides = list(set_ or [])
    if output_dir is not None:
        overrides.append(f"output_dir={output_dir}")
    if quiet:
        overrides.append("progress=false")
    return load_config(config, overrides)


def parse_dataset_spec(spec: str, overrides: list[str] | None = None):
    """A data set named on the command line, as a :class:`DataConfig` (see
    :func:`nlpgd.config.dataset_config`)."""
    from nlpgd.config import dataset_config

    return dataset_config(spec, overrides)


def parse_prior(values: list[str] | None) -> dict[str, float] | None:
    """``["spam=0.3"]`` -> ``{"spam": 0.3, "ham": 0.7}``; with two classes, naming one is
    enough (the other gets the rest). The model checks the result (sum, known classes)."""
    if not values:
        return None
    from nlpgd import LABELS

    prior: dict[str, float] = {}
    for item in values:
        for part in item.split(","):
            key, sep, val = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                prior[key.strip()] = float(val)
            except ValueError:
                raise NlpgdError(f"--prior takes CLASS=PROBABILITY (e.g. spam=0.5), got '{part}'") from None
            if not 0.0 <= prior[key.strip()] <= 1.0:
                raise NlpgdError(f"prior probability of class '{key.strip()}' must lie in [0, 1], got {val}")
    if len(prior) == 1 and next(iter(prior)) in LABELS:
        ((known, p),) = prior.items()
        prior[LABELS[1 - LABELS.index(known)]] = 1.0 - p
    return prior


def echo_table(headers: list[str], rows: list[list]) -> None:
    """A plain aligned table (readable in logs and pipes)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, r in enumerate(cells):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            typer.echo("  ".join("-" * w for w in widths))


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()


class RateProgress:
    """How far a long command has got, in items and items per second: a tqdm bar when ``bar``
    (see :func:`progress_bars`), otherwise a plain log line every ``every`` seconds, so a log
    file gets a readable line now and then and a short run prints nothing; ``--quiet``: neither."""

    every = 30.0  # seconds between plain lines

    def __init__(self, what: str, unit: str, *, bar: bool, total: int | None = None):
        self.what, self.unit, self.done, self.lines = what, unit, 0, 0
        self.start = self.last = time.monotonic()
        self.bar = None
        if bar:
            from tqdm.auto import tqdm

            self.bar = tqdm(total=total, desc=what, unit=f" {unit}", unit_scale=True, leave=False, dynamic_ncols=True)

    def update(self, n: int) -> None:
        self.done += n
        if self.bar is not None:
            self.bar.update(n)
            return
        if _flags["quiet"]:
            return
        now = time.monotonic()
        if now - self.last >= self.every:
            self.last = now
            self.lines += 1
            logging.getLogger("nlpgd").info("%s: %s", self.what, self._rate(now))

    def close(self) -> None:
        """Ends the bar; after plain lines, one more with the totals."""
        if self.bar is not None:
            self.bar.close()
        elif self.lines:
            logging.getLogger("nlpgd").info("%s: done, %s", self.what, self._rate(time.monotonic()))

    def _rate(self, now: float) -> str:
        seconds = max(now - self.start, 1e-9)
        return f"{self.done:,} {self.unit} in {seconds:.0f} s ({self.done / seconds:,.0f} {self.unit}/s)"
