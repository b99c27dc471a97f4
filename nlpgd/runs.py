"""Run folders: creating one, opening a finished one, and its predictions files.

This module lays out and opens the folder; the experiments fill it (through ``nlpgd.io``),
models write their own sub-folders with ``save``, and the report package writes the report
files. A run folder ``outputs/<experiment>/<run-id>/`` describes itself:

- ``run.json``: format version, status, seeds, models, timings, versions, device
- ``config.yaml``: the resolved experiment config
- ``data.json``: what the data layer did (sizes, class counts, duplicates and empties dropped)
- ``split_manifest.json``: ids, content hashes and labels of every split
- ``train_texts.jsonl``: the train split (for generation copy checks)
- ``generated/<model>/seed<k>.<label>.jsonl`` and ``.quality.json``: samples drawn by
  ``compare`` when the config has a ``generation`` section, and their quality report
- ``models/<model>/seed<k>/``: each fitted model, as written by its ``save``
- ``predictions/<model>/seed<k>.<split>.csv``: id, label, prob_spam, pred, log_odds (``log
  P(spam | x) - log P(ham | x)``, what every metric is computed from) and, for a generative
  model, log_lik_ham and log_lik_spam (``log P(x | y)``, nats; empty otherwise)
- ``metrics.json``, ``costs.json``, ``report.md`` (and the richer report files)

While it runs the folder is called ``<run-id>.partial`` and ``run.json`` says
``"status": "running"``; only a finished run is renamed to ``<run-id>``, with status
``complete``. A crash or Ctrl-C therefore never leaves a folder that looks finished.

One process writes a run folder at a time: a writer (``compare``, ``compare --resume``,
``evaluate``, ``generate`` into the run) holds an OS lock on ``.nlpgd.lock`` inside it
(:func:`lock_run`), released when the command ends or by the system when the process dies;
``.nlpgd.writer`` says which process holds it. Readers (``report``, ``classify``) take no lock.
"""

from __future__ import annotations

import contextlib
import csv
import os
import socket
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

import numpy as np

from nlpgd.errors import NlpgdError, first_line
from nlpgd.io import atomic_writer, check_writable, existing, inside_folder, read_json, write_error, write_json

FORMAT_VERSION = 1
PARTIAL = ".partial"


def write_predictions(path: Path, ids, labels, log_odds, log_lik=None) -> None:
    """One predictions file from each message's log-odds (P(spam) and the decision at 0.5 are
    written beside them, derived) and, for a generative model, ``log_lik``: ``(n, 2)`` log P(x
    | ham), log P(x | spam)."""
    with atomic_writer(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(PREDICTION_COLUMNS)
        w.writerows(prediction_rows(ids, labels, log_odds, log_lik))


def prediction_rows(ids, labels, log_odds, log_lik=None) -> Iterator[list]:
    """The rows of a predictions file (after its header :data:`PREDICTION_COLUMNS`), so that a
    file can also be written a chunk at a time (``evaluate``)."""
    from nlpgd.stats import prob

    z = np.asarray(log_odds, dtype=np.float64)
    p = prob(z)
    ll = None if log_lik is None else np.asarray(log_lik, dtype=np.float64)
    for i, row in enumerate(zip(ids, labels, z, p)):
        lik = ["", ""] if ll is None else [repr(float(v)) for v in ll[i]]
        yield [row[0], int(row[1]), repr(float(row[3])), int(row[2] > 0), repr(float(row[2])), *lik]


PREDICTION_COLUMNS = ("id", "label", "prob_spam", "pred", "log_odds", "log_lik_ham", "log_lik_spam")
OLD_PREDICTION_COLUMNS = PREDICTION_COLUMNS[:4]  # before log-odds were stored
DERIVED_NOTE = (
    "{what} stored P(spam) without log-odds (written by an older nlpgd): their log-odds are derived from "
    "P(spam) clipped to [1e-300, 1 - 2**-53], so scores beyond about +-37 are tied as they were stored"
)


def read_predictions(path: Path) -> dict:
    """A predictions file as arrays (``log_odds`` always; ``log_lik`` ``(n, 2)`` or None; and
    ``log_odds_derived``: True for an older file without log-odds, whose log-odds come from
    its clipped P(spam)), or one sentence naming the file and the line that is missing, cut
    short or not a number."""
    path = Path(path)
    if not path.is_file():
        raise NlpgdError(f"missing predictions file: {path}")
    try:
        with path.open(encoding="utf-8", newline="") as f:
            reader = csv.reader(f)
            header = tuple(next(reader, None) or ())
            if header not in (PREDICTION_COLUMNS, OLD_PREDICTION_COLUMNS):
                raise NlpgdError(f"{path} does not have the columns {', '.join(PREDICTION_COLUMNS)}")
            rows = [_prediction_row(path, reader.line_num, row, len(header)) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise NlpgdError(f"cannot read predictions file {path}: {first_line(exc)}") from None
    return _prediction_arrays(rows, derived=len(header) == len(OLD_PREDICTION_COLUMNS))


def _prediction_arrays(rows: list[tuple], derived: bool) -> dict:
    from nlpgd.stats import logit

    p = np.array([r[2] for r in rows], dtype=np.float64)
    liks = [r[5] for r in rows]
    return {
        "id": [r[0] for r in rows],
        "label": np.array([r[1] for r in rows], dtype=int),
        "prob_spam": p,
        "pred": np.array([r[3] for r in rows], dtype=int),
        "log_odds": logit(p) if derived else np.array([r[4] for r in rows], dtype=np.float64),
        "log_lik": np.array(liks, dtype=np.float64) if rows and all(v is not None for v in liks) else None,
        "log_odds_derived": derived,
    }


def _prediction_row(path: Path, line: int, row: list[str], width: int) -> tuple:
    if len(row) != width:
        raise NlpgdError(
            f"{path}, line {line}: {len(row)} fields where {width} belong (the file is truncated or damaged)"
        )
    try:
        out = [row[0], int(row[1]), float(row[2]), int(row[3])]
        if width == len(OLD_PREDICTION_COLUMNS):
            return (*out, None, None)
        lik = None if row[5] == row[6] == "" else (float(row[5]), float(row[6]))
        return (*out, float(row[4]), lik)
    except ValueError:
        raise NlpgdError(
            f"{path}, line {line}: label, prob_spam, pred, log_odds and the log-likelihoods must be numbers, "
            f"got {', '.join(row[1:])!r}"
        ) from None


def quality_path(samples_file: Path) -> Path:
    """Where the quality report of a samples file is written: ``<samples file>.quality.json``."""
    samples_file = Path(samples_file)
    return samples_file.with_name(samples_file.name + ".quality.json")


def now_iso() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


class Run:
    """A run folder being written (``<id>.partial``) or a finished one."""

    def __init__(self, path: Path):
        self.path = Path(path)

    # paths
    def model_dir(self, model: str, seed: int) -> Path:
        return self.path / "models" / model / f"seed{seed}"

    def model_folders(self) -> dict[str, list[Path]]:
        """``{model name: [its seed<k> folders, lowest seed first]}`` of the saved models."""
        root = self.path / "models"
        out: dict[str, list[Path]] = {}
        self.check_inside(root)
        for d in sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []:
            seeds = [p for p in d.iterdir() if p.is_dir() and p.name.startswith("seed") and p.name[4:].isdigit()]
            if seeds:
                out[d.name] = sorted(seeds, key=lambda p: int(p.name[4:]))
        return out

    def check_inside(self, path: Path) -> None:
        """One sentence when ``path`` (a folder of this run) or a link anywhere below it resolves
        outside the run folder: a run is scored with its own models, never someone else's."""
        candidates = [Path(path)]
        if candidates[0].is_dir() and not candidates[0].is_symlink():
            for top, dirs, files in os.walk(path):  # links are listed, not followed
                candidates += [Path(top) / n for n in dirs + files if os.path.islink(os.path.join(top, n))]
        for link in candidates:
            if not inside_folder(link, self.path):
                raise NlpgdError(
                    f"{link} is a link to {link.resolve()}, outside run {self.path}: refused (a run's saved "
                    "state stays inside its folder)"
                )

    def predictions_path(self, model: str, seed: int, split: str) -> Path:
        return self.path / "predictions" / model / f"seed{seed}.{split}.csv"

    def generated_path(self, model: str, seed: int, label: str) -> Path:
        """Samples drawn by ``compare`` (``generation:`` in the config); the quality report
        lies beside them, at :func:`quality_path` of this path."""
        return self.path / "generated" / model / f"seed{seed}.{label}.jsonl"

    def work_dir(self, model: str, seed: int) -> Path:
        return self.path / "work" / model / f"seed{seed}"

    @property
    def is_partial(self) -> bool:
        return self.path.name.endswith(PARTIAL)

    @classmethod
    def create(cls, output_dir: Path, experiment: str, run_id: str | None = None) -> "Run":
        base = Path(output_dir) / experiment
        if not inside_folder(base, Path(output_dir)) or base.resolve() == Path(output_dir).resolve():
            raise NlpgdError(f"experiment name {experiment!r} puts its runs outside output folder {output_dir}")
        check_writable(base, f"cannot write to output folder {base}")
        stem = run_id or datetime.now().strftime("%Y%m%d-%H%M%S")
        for n in range(1, 10_000):  # two runs started in the same second each get their own folder
            run_id = stem if n == 1 else f"{stem}-{n}"
            path = base / (run_id + PARTIAL)
            if (base / run_id).exists() or path.exists():
                continue
            try:
                path.mkdir()
            except FileExistsError:
                continue
            except OSError as exc:
                raise write_error(path, exc) from None
            run = cls(path)
            lock_run(path)  # this process writes it from the first file on
            return run
        raise NlpgdError(f"cannot find a free run folder name for {stem} in {base}")

    def start(self, info: dict) -> None:
        self.info = {"format": FORMAT_VERSION, "status": "running", "started": now_iso(), **info}
        write_json(self.path / "run.json", self.info)

    def finish(self, extra: dict | None = None) -> Path:
        """Mark complete and rename ``<id>.partial`` -> ``<id>``. Returns the final path."""
        info = read_json(self.path / "run.json")
        info.update(extra or {})
        info.update(status="complete", finished=now_iso())
        write_json(self.path / "run.json", info)
        final = self.path.with_name(self.path.name.removesuffix(PARTIAL))
        if final != self.path:
            os.replace(self.path, final)
            _moved(self.path, final)
            self.path = final
            latest = final.parent / "latest"
            try:
                if latest.is_symlink() or latest.exists():
                    latest.unlink()
                latest.symlink_to(final.name)
            except OSError:
                pass
        return self.path


LOCK_FILE = ".nlpgd.lock"  # the OS lock held by the process writing the folder (left in place: waiters share it)
WRITER_FILE = ".nlpgd.writer"  # who holds it (pid, host, command), for the sentence a second writer gets
_HELD: dict[Path, object] = {}  # run folder (resolved) -> this process's FileLock on it


def lock_run(folder: Path) -> None:
    """Hold the OS lock of run folder ``folder`` for as long as this process writes it (until
    :func:`release_runs`, or until the process ends, crash or kill included). A folder that
    another process holds: one sentence naming the run and that process; nothing is changed."""
    from filelock import FileLock, Timeout

    folder = Path(folder).resolve()
    if folder in _HELD:
        return
    lock = FileLock(str(folder / LOCK_FILE), timeout=0)
    try:
        lock.acquire()
    except Timeout:
        raise NlpgdError(
            f"run {folder} is being written by {_holder(folder)}; it is left as it is: wait for that "
            "process to end (or stop it), then try again"
        ) from None
    except FileNotFoundError:
        raise NlpgdError(f"run folder {folder} is gone: another process finished, moved or removed it") from None
    except OSError as exc:
        raise write_error(folder / LOCK_FILE, exc) from None
    _HELD[folder] = lock
    writer = {"pid": os.getpid(), "host": socket.gethostname(), "command": " ".join(sys.argv), "since": now_iso()}
    with contextlib.suppress(NlpgdError):  # who holds it is a courtesy to a second writer, not a condition
        write_json(folder / WRITER_FILE, writer)


def _holder(folder: Path) -> str:
    """``process PID (COMMAND, since TIME)`` from the holder's ``.nlpgd.writer``, as far as known."""
    try:
        w = read_json(folder / WRITER_FILE)
        where = "" if w.get("host") in (None, socket.gethostname()) else f" on {w['host']}"
        return f"process {int(w['pid'])}{where} ({w.get('command') or 'nlpgd'}, since {w.get('since', '?')})"
    except (NlpgdError, KeyError, TypeError, ValueError, AttributeError):
        return "another process"


def _moved(old: Path, new: Path) -> None:
    """A held run folder renamed (``.partial`` -> final): the lock moves with it (same inode)."""
    lock = _HELD.pop(Path(old).resolve(), None)
    if lock is not None:
        _HELD[Path(new).resolve()] = lock


def release_run(folder: Path) -> None:
    """Release this process's lock on run folder ``folder`` (nothing if it holds none)."""
    lock = _HELD.pop(Path(folder).resolve(), None)
    if lock is not None:
        with contextlib.suppress(OSError):
            (Path(folder) / WRITER_FILE).unlink(missing_ok=True)
        lock.release()


def held_runs() -> list[Path]:
    """The run folders this process holds now (resolved paths)."""
    return list(_HELD)


def release_runs() -> None:
    """Release every run folder this process holds (each command ends with this)."""
    for folder in list(_HELD):
        release_run(folder)


@contextlib.contextmanager
def writing(folder: Path):
    """The block writes into run folder ``folder``: its lock is held throughout (see :func:`lock_run`)."""
    held = Path(folder).resolve() in _HELD
    lock_run(folder)
    try:
        yield
    finally:
        if not held:
            release_run(folder)


REQUIRED = ("run.json", "config.yaml", "split_manifest.json", "metrics.json")


def open_run(path: Path, *, allow_partial: bool = False) -> Run:
    """Open a finished run folder, or say in one sentence what is wrong with it."""
    path = existing(path, "run folder", folder=True)
    if path.is_symlink():
        path = path.resolve()
    if not (path / "run.json").is_file():
        raise NlpgdError(f"{path} is not an nlpgd run folder (no run.json)")
    info = read_json(path / "run.json")
    if info.get("format") != FORMAT_VERSION:
        raise NlpgdError(
            f"{path} was written by another nlpgd format ({info.get('format')!r}, this version reads {FORMAT_VERSION})"
        )
    if info.get("status") != "complete" and not allow_partial:
        raise NlpgdError(
            f"{path} is an unfinished run (status {info.get('status')!r}); "
            "rerun it or continue it with `nlpgd compare CONFIG --resume RUN_DIR`"
        )
    if info.get("status") == "complete":
        missing = [f for f in REQUIRED if not (path / f).exists()]
        if missing:
            raise NlpgdError(f"{path} is incomplete: missing {', '.join(missing)}")
    run = Run(path)
    run.info = info
    return run


class PeakMemory:
    """Peak resident memory (MB) of this process while the block runs (Linux /proc)."""

    def __init__(self, interval: float = 0.05):
        self.interval = interval
        self.peak_mb: float | None = None

    @staticmethod
    def rss_mb() -> float | None:
        try:
            with open("/proc/self/statm") as f:
                return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
        except (OSError, ValueError):
            return None

    def __enter__(self):
        import threading

        self._stop = threading.Event()
        self.peak_mb = self.rss_mb()

        def sample():
            while not self._stop.wait(self.interval):
                v = self.rss_mb()
                if v is not None and (self.peak_mb is None or v > self.peak_mb):
                    self.peak_mb = v

        self._t = threading.Thread(target=sample, daemon=True)
        self._t.start()
        self.t0 = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.t0
        self._stop.set()
        self._t.join()
        v = self.rss_mb()
        if v is not None and (self.peak_mb is None or v > self.peak_mb):
            self.peak_mb = v
        return False
