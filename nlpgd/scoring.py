"""Loading a finished run's saved models and scoring texts with them.

Below the experiments: ``compare`` scores the models it has just fitted with
:func:`score_model`; ``classify``, ``evaluate`` and ``generate`` load a run's models with
:func:`load_run_models`. A model that cannot be loaded is one sentence naming it and the file.
:func:`score_chunks` scores any number of texts a chunk at a time (``classify -``), in memory
that does not grow with their number.
"""

from __future__ import annotations

import ctypes
import functools
import itertools
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, TypeVar

import numpy as np

from nlpgd import CHUNK_SIZE
from nlpgd.distributed import gather_on_main, share
from nlpgd.errors import NlpgdError
from nlpgd.models.base import Classifier
from nlpgd.models.registry import load_model
from nlpgd.runs import open_run

T = TypeVar("T")
log = logging.getLogger(__name__)


def spam_column(model: Classifier) -> int:
    matches = np.flatnonzero(np.asarray(model.classes_) == "spam")
    if not len(matches):
        raise NlpgdError(f"model classes {list(model.classes_)} do not include 'spam'")
    return int(matches[0])


@dataclass
class Scores:
    """What a model says about each text: the spam log-odds ``log P(spam | x) - log P(ham | x)``
    (never saturated), for a generative model ``log P(x | y)`` per class (``(n, 2)``, ham then
    spam; None otherwise), and the wall time of scoring."""

    log_odds: np.ndarray
    log_lik: np.ndarray | None
    seconds: float

    @property
    def prob_spam(self) -> np.ndarray:
        from nlpgd.stats import prob

        return prob(self.log_odds)


def score_texts(model: Classifier, texts: list[str], *, prefix: bool = False, chunk_size: int = CHUNK_SIZE) -> Scores:
    """The spam log-odds of each text (and the class log-likelihoods of a generative model,
    from the same pass: ``log P(x, y) - log P(y)`` with the prior its outputs assume).
    ``prefix``: each text is the observed beginning of a message (a model with an
    end-of-message term leaves it out; any other scores the text as it is). The model sees
    ``chunk_size`` texts at a time, so what it builds per text (token ids, encodings) is
    bounded by the chunk however many texts there are (``evaluate`` on a whole archive)."""
    t0 = time.perf_counter()
    parts = [_score_chunk(model, chunk, prefix) for chunk in chunked(texts, chunk_size)]
    parts = parts or [_score_chunk(model, [], prefix)]
    z = np.concatenate([z for z, _ in parts])
    log_lik = None if parts[0][1] is None else np.concatenate([ll for _, ll in parts])
    return Scores(z, log_lik, time.perf_counter() - t0)


def _score_chunk(model: Classifier, texts: list[str], prefix: bool) -> tuple[np.ndarray, np.ndarray | None]:
    spam = spam_column(model)
    log_lik = None
    if model.can("generative"):
        options = {"prefix": True} if prefix and model.can("prefix_scores") else {}
        joint = np.asarray(model.predict_log_joint(texts, **options), dtype=np.float64)
        z = joint[:, spam] - joint[:, 1 - spam]
        if model.output_prior() is not None:
            log_lik = (joint - model.log_output_prior())[:, [1 - spam, spam]]
    else:
        z = model.predict_log_odds(texts) * (1 if spam == 1 else -1)
    return np.asarray(z, dtype=np.float64), log_lik


def score_model(model: Classifier, texts: list[str]) -> tuple[np.ndarray, float]:
    """P(spam) for each text (from its log-odds) and the wall time in seconds."""
    scores = score_texts(model, texts)
    return scores.prob_spam, scores.seconds


def load_named_model(key: str, folder: Path, *, progress: bool = True) -> Classifier:
    """The model saved in ``folder``; a failure names the model (``gpt2/seed0``) and the file.
    ``progress`` switches its scoring and sampling progress bars."""
    try:
        model = load_model(folder)
    except NlpgdError as exc:
        raise NlpgdError(f"cannot load model '{key}': {exc}") from None
    model.progress = progress
    model.name_ = key  # its log lines name it as the run does (``n512/distilbert/seed0``), not by type
    return model


def run_model_folders(run_dir: Path, model: str | None = None, seed: int | None = None) -> dict[str, Path]:
    """``{"<model>/seed<k>": folder}`` of a finished run's saved models, optionally one model
    and/or one seed; an unknown model or an empty selection is one sentence."""
    run = open_run(run_dir)
    folders = run.model_folders()
    if model is not None and model not in folders:
        raise NlpgdError(f"run {run.path} has no model '{model}' (models: {', '.join(folders) or 'none'})")
    out = {
        f"{name}/{p.name}": p
        for name, seed_dirs in folders.items()
        if model is None or name == model
        for p in seed_dirs
        if seed is None or int(p.name[4:]) == seed
    }
    if not out:
        raise NlpgdError(f"run {run.path} has no saved models matching the request")
    return out


def load_run_models(
    run_dir: Path, model: str | None = None, seed: int | None = None, *, progress: bool = True
) -> dict[str, Classifier]:
    """Load the saved models of a finished run: ``{"<model>/seed<k>": Classifier}``."""
    folders = run_model_folders(run_dir, model, seed)
    return {key: load_named_model(key, folder, progress=progress) for key, folder in folders.items()}


#: glibc's mallopt parameters, the values :func:`freed_memory_kept` sets, and glibc's defaults
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3
MMAP_THRESHOLD = 2**30  # bytes: smaller blocks come from the heap
TRIM_THRESHOLD = 2**31 - 1  # bytes of free heap kept before any is returned to the system
GLIBC_DEFAULT = 128 * 1024  # both thresholds' starting values


@functools.cache
def _glibc():
    """The C library, where it is glibc's (it has ``mallopt`` and ``malloc_trim``); else None.
    Looked up once: it is asked after every chunk."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None)
        libc.mallopt, libc.malloc_trim  # noqa: B018 (both or neither)
    except (OSError, AttributeError):
        return None
    return libc


def return_freed_memory() -> bool:
    """Give the memory the C allocator holds free back to the system (glibc's ``malloc_trim``,
    which also releases free pages inside the heap); whether it could. Between the phases of a
    command (reading a data set, scoring, the metrics) so that one phase's temporaries are not
    counted again under the next one's."""
    libc = _glibc()
    if libc is None:
        return False
    libc.malloc_trim(0)  # its result says whether anything was released, not whether it worked
    return True


class KeptMemory:
    """See :func:`freed_memory_kept`: glibc's settings made on entering (its truth value says
    whether they were) and put back on leaving; :meth:`scoring` before each model scores its
    share of a chunk, :meth:`chunk_done` after each chunk."""

    def __init__(self, libc):
        self.libc, self.kept = libc, False

    def __enter__(self) -> KeptMemory:
        libc = self.libc
        self.kept = libc is not None and bool(libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD))
        self.kept = self.kept and bool(libc.mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
        return self

    def __exit__(self, *exc) -> None:
        if self.libc is not None:
            self.libc.mallopt(M_MMAP_THRESHOLD, GLIBC_DEFAULT)
            self.libc.mallopt(M_TRIM_THRESHOLD, GLIBC_DEFAULT)
            return_freed_memory()
        self.kept = False

    def __bool__(self) -> bool:
        return self.kept

    def scoring(self, model: Classifier) -> None:
        """Keep the blocks ``model`` frees up to its :attr:`~Classifier.scoring_block_limit`
        (every block when it has none) while it scores."""
        if self.kept:
            self.libc.mallopt(M_MMAP_THRESHOLD, model.scoring_block_limit or MMAP_THRESHOLD)

    def chunk_done(self) -> None:
        """Return what the chunk's batches left free, so that fragments of batches of every
        shape cannot pile up over millions of messages."""
        return_freed_memory()


def freed_memory_kept() -> KeptMemory:
    """While scoring batches that are alike, let the C allocator (glibc's malloc, on Linux)
    keep the memory that freed tensors give back, for the next batch, instead of returning it
    to the system; entered, a :class:`KeptMemory`, true when the settings were made.

    By default a block of 128 KB or more (a batch's logits and activations) is a fresh ``mmap``
    that is unmapped when freed, and the heap's free top is trimmed: every scoring batch then
    page-faults all its tensors in again (a fifth of the GPT-2 arm's scoring CPU time went to
    the kernel). Inside the block, peak memory stays that of one batch (what is kept is reused,
    not added to), with two limits against heap fragments, which would otherwise add up over
    millions of messages: a model whose batch tensors change size from batch to batch (an
    encoder scoring a fixed count of messages padded to the longest) keeps only blocks below
    its ``scoring_block_limit`` (:meth:`KeptMemory.scoring`), and the free memory goes back
    after each chunk (:meth:`KeptMemory.chunk_done`). On leaving it, the thresholds go back to
    glibc's starting values (fixed there, no longer adjusted on the fly) and the free memory is
    returned (``malloc_trim``), so what the rest of the process allocates (reading a data set,
    the metrics) is not added on top of the kept batches. A C library other than glibc's is
    left as it is."""
    return KeptMemory(_glibc())


def chunked(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """Consecutive lists of ``size`` items (the last one shorter), reading ``items`` lazily:
    at most one chunk is held at a time."""
    if size < 1:
        raise NlpgdError(f"chunk size must be at least 1, got {size}")
    it = iter(items)
    while chunk := list(itertools.islice(it, size)):
        yield chunk


def score_chunks(
    models: dict[str, Classifier],
    items: Iterable[T],
    chunk_size: int = CHUNK_SIZE,
    *,
    text: Callable[[T], str] | None = None,
) -> Iterator[tuple[list[T], dict[str, np.ndarray] | None]]:
    """``(chunk, {key: P(spam) of each item})`` for consecutive chunks of ``items``, each
    yielded as soon as every model has scored it; ``text`` picks an item's text (default: the
    item is the text). ``items`` may be any iterable (a generator, a file, stdin) and is read
    one chunk at a time, so memory depends on ``chunk_size`` and the models, never on how
    many items there are. Under torchrun / accelerate launch every process reads the same
    items and scores its share of each chunk; the first gets the whole chunk's scores, the
    others ``None`` in their place."""
    columns = {key: spam_column(m) for key, m in models.items()}
    with freed_memory_kept() as memory:
        for chunk in chunked(items, chunk_size):
            texts = share(chunk if text is None else [text(item) for item in chunk])
            mine = {key: _p_spam(m, texts, columns[key], memory) for key, m in models.items()}
            gathered = gather_on_main(mine)
            yield chunk, None if gathered is None else {key: np.concatenate([g[key] for g in gathered]) for key in mine}
            memory.chunk_done()


def _p_spam(model: Classifier, texts: list[str], column: int, memory: KeptMemory) -> np.ndarray:
    if not texts:  # more processes than items in the last chunk
        return np.zeros(0)
    memory.scoring(model)
    return np.asarray(model.predict_proba(texts), dtype=np.float64)[:, column]


class Truncations:
    """One line for the texts an encoder cut to its ``max_length``, after the last chunk,
    instead of the model's own line for every chunk (``count()`` after each chunk, on every
    process of a launch; ``report(n)`` adds them up on the first)."""

    def __init__(self, models: dict[str, Classifier]):
        self.models = {k: m for k, m in models.items() if hasattr(m, "n_truncated_predict_")}
        self.totals = dict.fromkeys(self.models, 0)
        self.loggers = {logging.getLogger(type(m).__module__) for m in self.models.values()}

    def __enter__(self):
        self.levels = {lg: lg.level for lg in self.loggers}
        for lg in self.loggers:
            lg.setLevel(logging.WARNING)
        return self

    def __exit__(self, *exc) -> None:
        for lg, level in self.levels.items():
            lg.setLevel(level)

    def count(self) -> None:
        for key, m in self.models.items():
            self.totals[key] += m.n_truncated_predict_

    def report(self, done: int) -> None:
        gathered = gather_on_main(self.totals)
        for key in self.totals if gathered else ():
            n = sum(g[key] for g in gathered)
            if n:
                limit = self.models[key].params.max_length
                log.info("%s: %s of %s texts truncated to %d tokens", key, f"{n:,}", f"{done:,}", limit)
