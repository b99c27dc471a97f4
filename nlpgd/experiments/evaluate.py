"""evaluate: score a finished run's saved models on another data set."""

from __future__ import annotations

import contextlib
import csv
import logging
import os
import shutil
from pathlib import Path
from typing import Callable, Iterable, Iterator

import numpy as np

from nlpgd import CHUNK_SIZE, LABELS
from nlpgd.config import DataConfig
from nlpgd.data import PreparedData, data_notes, load_splits
from nlpgd.data.prepare import SPLITS
from nlpgd.data.stream import BATCH, StreamedData, stream_refusal
from nlpgd.distributed import gather_on_main, init_launch, is_main_process, on_main_process, share
from nlpgd.errors import NlpgdError
from nlpgd.io import (
    atomic_write_text,
    atomic_writer,
    check_name,
    check_owned_folder,
    check_writable,
    ensure_dir,
    remove_owned_folder,
    write_error,
    write_json,
)
from nlpgd.metrics import evaluate_predictions
from nlpgd.models.base import apply_prior
from nlpgd.runs import PREDICTION_COLUMNS, now_iso, open_run, prediction_rows, writing
from nlpgd.scoring import (
    KeptMemory,
    Truncations,
    chunked,
    freed_memory_kept,
    load_run_models,
    return_freed_memory,
    score_texts,
)

log = logging.getLogger(__name__)
SPLIT_CHOICES = ("train", "validation", "test", "all")
# written first into every evaluation folder: only a folder holding it is ever removed (by a
# later evaluation of the same name), so no name can make nlpgd delete something it did not write
MARKER = ".nlpgd-evaluation"


def evaluate_run(
    run_dir: Path,
    data_cfg: DataConfig,
    *,
    split: str = "test",
    name: str = "eval",
    prior: dict | None = None,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
    model: str | None = None,
) -> tuple[Path, dict]:
    """Score every saved model of ``run_dir`` on a data set; ``prior`` replaces the class
    prior of the generative models (label shift). Results go to ``evaluations/<name>/``,
    written as ``<name>.partial`` and renamed once complete; a failure leaves neither.
    Data with one class only is accepted: the metrics it leaves undefined are noted.

    Messages are scored and written ``chunk_size`` at a time (``on_chunk(n)`` after each);
    under torchrun / accelerate launch each chunk is shared between the processes and the
    first one alone writes (the others return an empty dict). ``model``: only that model's seeds."""
    if chunk_size < 1:
        raise NlpgdError(f"--chunk-size must be at least 1, got {chunk_size}")
    if split not in SPLIT_CHOICES:
        raise NlpgdError(f"unknown split '{split}'; choose one of {', '.join(SPLIT_CHOICES)}")
    check_name(name, "evaluation name")
    init_launch()
    run = open_run(run_dir)
    owner = run.path / "evaluations"
    with contextlib.ExitStack() as held:
        # one writer per run folder: a second one stops here, having changed nothing; a
        # read-only run folder fails before any work; a refusal reaches every process
        on_main_process(lambda: (held.enter_context(writing(run.path)), check_writable(owner))[-1])
        return _evaluate_into(run.path, owner, name, data_cfg, split, prior, (model, chunk_size, on_chunk))


def _evaluate_into(
    run_path: Path, owner: Path, name: str, data_cfg: DataConfig, split: str, prior, scoring: tuple
) -> tuple[Path, dict]:
    """:func:`evaluate_run` once the run folder is this process's to write."""
    final = owner / name
    tmp = final.with_name(name + ".partial")
    on_main_process(lambda: _check_place(tmp, final, owner))
    data = read_data(data_cfg)  # bad data fails before any model is loaded
    for note in data_notes(data.summary):
        log.info("data: %s", note)
    splits = SPLITS if split == "all" else (split,)
    n = sum(data.summary["sizes"][s] for s in splits)
    if not n:  # a file of one or two messages leaves splits empty
        n_all = sum(data.summary["sizes"].values())
        raise NlpgdError(
            f"the {split} split of {data_cfg.path or data_cfg.source} is empty ({n_all} messages in all); "
            "use --split all"
        )
    only, *chunks = scoring
    models = load_run_models(run_path, only, progress=False)  # the caller's progress counts messages
    unchanged = apply_prior(models, prior)
    if unchanged:
        log.warning("the prior applies to generative models only; unchanged: %s", ", ".join(unchanged))
    main = is_main_process()
    try:
        if main:
            ensure_dir(tmp)
            atomic_write_text(tmp / MARKER, "written by nlpgd evaluate\n")
        results, shares = score_rows(models, (row for s in splits for row in data.rows(s)), tmp, split, *chunks)
        if main:
            counts = {c: sum(data.summary["class_counts"][s].get(c, 0) for s in splits) for c in LABELS}
            info = {
                "data": data_cfg.model_dump(mode="json"),
                "split": split,
                "summary": data.summary,
                "n": n,
                "prior": prior,
                "prior_not_applied_to": unchanged,
                "messages_per_process": shares,
                "class_counts": counts,
                "notes": sorted({n for r in results.values() for n in r["notes"]}),
                "finished": now_iso(),
            }
            write_json(tmp / "evaluation.json", info)
            _replace_folder(tmp, final, owner)
    except BaseException:
        if main and tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        raise
    return final, results


def _check_place(tmp: Path, final: Path, owner: Path) -> None:
    remove_owned_folder(tmp, owner, MARKER)  # a crashed earlier evaluation's leftovers
    check_owned_folder(final, owner, MARKER)  # an earlier evaluation of this name: refused now, not after scoring


def read_data(cfg: DataConfig):
    """The data set, read a batch at a time where that gives the same messages in the same order
    (:mod:`nlpgd.data.stream`), else read, cleaned and split whole (``load_splits``). Either has a
    ``summary`` and ``rows(split)``."""
    why = stream_refusal(cfg)
    if why is None:
        log.info("data: read a batch at a time")
        data = StreamedData(cfg)
        return_freed_memory()  # the first pass's temporaries (the split of a million labels: ~140 MB)
        return data
    log.info("data: read whole: %s", why)
    return _InMemory(load_splits(cfg, need_both_classes=False))


class _InMemory:
    def __init__(self, data: PreparedData):
        self.dataset, self.summary = data.dataset, data.summary

    def rows(self, split: str) -> Iterator[tuple[str, str, int]]:
        """``(id, text, label)`` of each message of ``split``, taken from the data set a batch at a time."""
        for batch in self.dataset[split].iter(batch_size=BATCH):
            yield from zip(batch["id"], batch["text"], batch["label"])


def score_rows(
    models: dict,
    rows: Iterable[tuple[str, str, int]],
    out: Path,
    split: str,
    chunk_size: int = CHUNK_SIZE,
    on_chunk: Callable[[int], None] | None = None,
) -> tuple[dict, list[int]]:
    """Each model's metrics on ``(id, text, label)`` rows, read, scored and written a chunk at a
    time: predictions go to ``out/predictions/<model>/<seed>.<split>.csv`` as each chunk is
    scored, and only each message's label and scores stay for the metrics (never its text), so
    memory grows by a few bytes per message. Under a launch each process scores its share of
    every chunk; the first gathers, writes and returns the metrics and how many messages each
    process scored, the others return ``({}, [])``."""
    main = is_main_process()
    kept = {key: _Kept() for key in models}
    labels: list[np.ndarray] = []
    mine = 0  # messages this process scored
    with contextlib.ExitStack() as files, Truncations(models) as truncated:
        writers = {key: _open_predictions(files, out, key, split) for key in models} if main else {}
        memory = files.enter_context(freed_memory_kept())  # left (and the memory returned) before the metrics
        for chunk in chunked(rows, chunk_size):
            part = share([text for _, text, _ in chunk])
            scored = gather_on_main({key: _score_part(m, part, memory) for key, m in models.items()})
            mine += len(part)
            if part:  # a process with no share of the last chunk scored nothing
                truncated.count()
            if main:
                y = np.fromiter((label for _, _, label in chunk), dtype=np.int8, count=len(chunk))
                labels.append(y)
                for key, parts in _merge(scored).items():
                    writers[key].writerows(prediction_rows([i for i, _, _ in chunk], y, *parts[:2]))
                    kept[key].add(*parts)
            if on_chunk is not None:
                on_chunk(len(chunk))
            memory.chunk_done()
    y = np.concatenate(labels) if labels else np.zeros(0, dtype=np.int8)
    truncated.report(len(y))
    shares = gather_on_main(mine)
    if not main:
        return {}, []
    results = {key: {**evaluate_predictions(y, k.log_odds()), "seconds": k.seconds} for key, k in kept.items()}
    write_json(out / "metrics.json", results)
    return results, shares


def _open_predictions(files: contextlib.ExitStack, out: Path, key: str, split: str):
    mname, seed = key.split("/")
    f = files.enter_context(atomic_writer(out / "predictions" / mname / f"{seed}.{split}.csv", "w", newline=""))
    writer = csv.writer(f)
    writer.writerow(PREDICTION_COLUMNS)
    return writer


def _score_part(model, texts: list[str], memory: KeptMemory) -> tuple[np.ndarray, np.ndarray | None, float]:
    """One process's share of a chunk: log-odds, class log-likelihoods (or None), seconds."""
    if not texts:  # more processes than messages in the last chunk
        return np.zeros(0), None, 0.0
    memory.scoring(model)
    s = score_texts(model, texts, chunk_size=len(texts))
    return s.log_odds, s.log_lik, s.seconds


def _merge(gathered: list[dict]) -> dict[str, tuple]:
    """The processes' shares of a chunk put back in order, per model: log-odds, log-likelihoods
    (or None) and the wall time (the slowest process's)."""
    out = {}
    for key in gathered[0]:
        parts = [g[key] for g in gathered]
        lls = [ll for z, ll, _ in parts if len(z)]
        ll = None if lls[0] is None else np.concatenate(lls)
        out[key] = (np.concatenate([z for z, _, _ in parts]), ll, max(sec for _, _, sec in parts))
    return out


class _Kept:
    """What the metrics need of one model's scores: each message's log-odds (8 bytes), and the time."""

    def __init__(self):
        self.parts: list[np.ndarray] = []
        self.seconds = 0.0

    def add(self, log_odds: np.ndarray, log_lik, seconds: float) -> None:
        self.parts.append(log_odds)
        self.seconds += seconds

    def log_odds(self) -> np.ndarray:
        return np.concatenate(self.parts) if self.parts else np.zeros(0)


def _replace_folder(new: Path, final: Path, owner: Path) -> None:
    """``new`` takes the place of ``final`` (an earlier evaluation of the same name goes, and
    only if an evaluation wrote it)."""
    remove_owned_folder(final, owner, MARKER)
    try:
        os.replace(new, final)
    except OSError as exc:
        raise write_error(final, exc) from None
