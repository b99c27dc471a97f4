"""An evaluation data set read a batch at a time: the same messages, in the same order, with the
same summary as :func:`nlpgd.data.prepare.prepare`, without holding the messages.

A first pass over each file maps labels, drops empty texts and cuts long ones batch by batch
(:mod:`nlpgd.data.prepare`'s own functions), and keeps per message only its label (1 byte), a
hash of its text (8 bytes), its length in characters and in words (4 bytes each) and which
split it falls in (1 byte). Label conflicts, exact duplicates and texts of the test split also
in train are found among the messages whose hashes collide, then checked on their texts in one
more pass over those messages alone; the seeded stratified split is drawn from the labels
(:func:`~nlpgd.data.prepare.split_positions`, which the in-memory path uses too). Each split's
messages are then read again, a batch at a time, when they are scored.

A hub data set is read from the Arrow files ``datasets`` keeps in its cache, a batch at a time.
Not streamed (:func:`stream_refusal` says why): the SpamAssassin corpus (read whole by its
loader), ``data.id_column`` (an id used twice is renamed, which needs every id),
several UCI SMS files (their line ids repeat across files), ``max_train_samples`` /
``max_eval_samples`` (seeded subsamples).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

from nlpgd import LABELS
from nlpgd.config import DataConfig
from nlpgd.data.prepare import (
    SPLITS,
    bad_labels,
    conflict_info,
    conflict_rule,
    cut_long,
    describe_lengths,
    drop_empty,
    label_mapping,
    map_labels,
    merge_counts,
    source_where,
    split_positions,
    tally_labels,
)
from nlpgd.data.sources import (
    Records,
    check_columns,
    check_file,
    dataset_records,
    load_hub,
    load_local,
    local_files,
    uci_sms_records,
)
from nlpgd.errors import NlpgdError

BATCH = 1024  # messages read together


def stream_refusal(cfg: DataConfig) -> str | None:
    """Why ``cfg``'s data set is read whole rather than a batch at a time (None: it streams)."""
    if cfg.source == "spamassassin":
        return "the SpamAssassin corpus is read whole by its loader"
    if cfg.id_column:
        return "data.id_column is set (an id used twice is renamed, which needs every id)"
    if cfg.source == "uci_sms" and cfg.files:
        return "several UCI SMS files (their line ids repeat across files and are renamed)"
    if cfg.max_train_samples or cfg.max_eval_samples:
        return "a subsample (max_train_samples / max_eval_samples) is drawn from the whole split"
    return None


@dataclass
class _Part:
    """One file of the source (``all``, or one of its own splits) and what is kept per message."""

    name: str
    batches: Callable[[], Iterator[Records]]  # a fresh pass over its raw records
    raw_rows: int = 0
    columns: dict = field(default_factory=dict)  # label, hash, chars, words: one entry per cleaned message
    keep: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=bool))  # not dropped (conflict, duplicate)
    split: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int8))  # index into SPLITS, -1: dropped


class StreamedData:
    """``summary`` as :func:`~nlpgd.data.prepare.prepare` writes it; :meth:`rows` reads a split."""

    def __init__(self, cfg: DataConfig):
        self.cfg, self.where = cfg, source_where(cfg)
        self.mapping = label_mapping(cfg)
        self.summary: dict = {"source": cfg.source, "where": dict(cfg.files) if cfg.files else self.where}
        self.parts = _open_parts(cfg)
        cuts: list[dict] = []
        self.summary["raw_rows"] = {}
        self.summary["empty_dropped"] = sum(self._first_pass(part, cuts) for part in self.parts.values())
        self.summary["long_texts_cut"] = merge_counts(cuts)
        self.summary["label_conflicts"] = merge_counts([self._resolve_conflicts(p) for p in self.parts.values()])
        if not any(part.keep.any() for part in self.parts.values()):
            raise NlpgdError(
                f"{self.where}: every text is empty or whitespace (or dropped as a label conflict); nothing is left"
            )
        self._assign()
        self.summary["reused_ids"] = {"count": 0}  # ids made from row or line numbers are unique
        self._describe()
        for part in self.parts.values():  # scoring needs only the hashes (to check the file) and splits
            part.columns = {"hash": part.columns["hash"]}

    def cleaned(self, part: _Part) -> Iterator[tuple[int, dict]]:
        """``(position, record)`` of each message of ``part`` that is not empty, label mapped and
        cut; a message that is not the one the first pass saw there (the file changed) is an error."""
        pos, hashes = 0, part.columns["hash"]
        for batch in part.batches():
            recs, _ = cut_long(drop_empty(map_labels(batch, self.mapping, Counter()))[0], self.cfg.max_chars)
            for r in recs:
                if pos >= len(hashes) or hash(r["text"]) != hashes[pos]:
                    raise NlpgdError(f"{self.where} changed while it was being read; run the command again")
                yield pos, r
                pos += 1

    def scan(self, part: _Part, mask: np.ndarray) -> Iterator[tuple[int, dict]]:
        return ((pos, r) for pos, r in self.cleaned(part) if mask[pos])

    def rows(self, split: str) -> Iterator[tuple[str, str, int]]:
        """``(id, text, label)`` of each message of ``split``, in the order the in-memory path gives."""
        k = SPLITS.index(split)
        for part in self.parts.values():
            mask = part.split == k
            if mask.any():
                for _, r in self.scan(part, mask):
                    yield r["id"], r["text"], LABELS.index(r["label"])

    def _first_pass(self, part: _Part, cuts: list[dict]) -> int:
        """Labels mapped (every bad value in the file named at once), empty texts dropped, long ones
        cut; the per-message columns. Returns the number of empty texts."""
        bad: Counter = Counter()
        empty = 0
        cols: dict[str, list] = {"label": [], "hash": [], "chars": [], "words": []}
        for batch in part.batches():
            part.raw_rows += len(batch)
            recs, n_empty = drop_empty(map_labels(batch, self.mapping, bad))
            recs, info = cut_long(recs, self.cfg.max_chars)
            empty += n_empty
            cuts.append(info)
            cols["label"].append(np.array([LABELS.index(r["label"]) for r in recs], dtype=np.int8))
            cols["hash"].append(np.array([hash(r["text"]) for r in recs], dtype=np.int64))
            cols["chars"].append(np.array([len(r["text"]) for r in recs], dtype=np.int32))
            cols["words"].append(np.array([len(r["text"].split()) for r in recs], dtype=np.int32))
        if bad:
            raise bad_labels(bad, self.cfg, self.where)
        if not part.raw_rows and self.cfg.source == "uci_sms":
            raise NlpgdError(f"data file {Path(local_files(self.cfg)[part.name]).expanduser()} has no messages")
        self.summary["raw_rows"][part.name] = part.raw_rows
        part.columns = {k: np.concatenate(v) if v else np.zeros(0, dtype=np.int8) for k, v in cols.items()}
        part.keep = np.ones(len(part.columns["label"]), dtype=bool)
        return empty

    def _resolve_conflicts(self, part: _Part) -> dict:
        """:func:`~nlpgd.data.prepare.resolve_conflicts` on ``part``: only the messages whose hash
        comes with both labels are read again, and their texts decide."""
        label, h = part.columns["label"], part.columns["hash"]
        both = np.intersect1d(h[label == 0], h[label == 1])
        if not both.size:  # no text with both labels (nor a hash that two texts share)
            return {"count": 0}
        mask = np.isin(h, both)
        hits = [(pos, r["text"], r["label"]) for pos, r in self.scan(part, mask)]  # the colliding few, read once
        counts: dict = {}
        first: dict = {}
        tally_labels(({"text": t, "label": y} for _, t, y in hits), counts, first)
        conflicting, keep = conflict_rule(counts, first, self.cfg.conflicts)
        if not conflicting:
            return {"count": 0}
        for pos, text, label in hits:
            if text in keep and label != keep[text]:
                part.keep[pos] = False
        return conflict_info(conflicting, self.cfg.conflicts, int(mask.sum() - part.keep[mask].sum()))

    def _dedup(self, part: _Part) -> int:
        """Exact duplicates after the first copy dropped (:func:`~nlpgd.data.prepare.dedup`)."""
        h = part.columns["hash"]
        values, counts = np.unique(h[part.keep], return_counts=True)
        mask = part.keep & np.isin(h, values[counts > 1])
        seen: set[str] = set()
        removed = 0
        for pos, r in self.scan(part, mask):
            if r["text"] in seen:
                part.keep[pos] = False
                removed += 1
            seen.add(r["text"])
        return removed

    def _assign(self) -> None:
        """Each message's split, as :func:`~nlpgd.data.prepare._split` draws it."""
        cfg = self.cfg
        self.summary["duplicates_removed"] = 0
        for part in self.parts.values():
            part.split = np.where(part.keep, SPLITS.index(part.name) if part.name in SPLITS else 0, -1).astype(np.int8)
        if "all" in self.parts:
            part = self.parts["all"]
            if cfg.dedup:
                self.summary["duplicates_removed"] = self._dedup(part)
                part.split[~part.keep] = -1
            rest = _carve(part, 0, 2, cfg.test_size, cfg.split_seed)
            _carve(part, 0, 1, cfg.validation_size / (1 - cfg.test_size), cfg.split_seed, among=rest)
            self.summary["splits_given"] = False
            return
        train = self.parts["train"]
        if "validation" not in self.parts:
            _carve(train, 0, 1, cfg.validation_size, cfg.split_seed)
        if "test" not in self.parts:
            _carve(train, 0, 2, cfg.test_size / (1 - cfg.validation_size), cfg.split_seed)
        self.summary["splits_given"] = True
        self.summary["test_texts_also_in_train"] = self._test_in_train()

    def _test_in_train(self) -> int:
        """How many test messages have a text the train split has too."""
        train, test = self.parts["train"], self.parts.get("test", self.parts["train"])
        in_train, in_test = train.split == 0, test.split == 2
        both = np.intersect1d(train.columns["hash"][in_train], test.columns["hash"][in_test])
        if not both.size:
            return 0
        texts = {r["text"] for _, r in self.scan(train, in_train & np.isin(train.columns["hash"], both))}
        return sum(r["text"] in texts for _, r in self.scan(test, in_test & np.isin(test.columns["hash"], both)))

    def _describe(self) -> None:
        """Sizes, class counts (in the order the classes first appear) and lengths per split."""
        sizes, classes, lengths = {}, {}, {}
        for k, s in enumerate(SPLITS):
            cols = {
                name: np.concatenate([p.columns[name][p.split == k] for p in self.parts.values()])
                for name in ("label", "chars", "words")
            }
            sizes[s] = len(cols["label"])
            values, first, counts = np.unique(cols["label"], return_index=True, return_counts=True)
            classes[s] = {LABELS[values[i]]: int(counts[i]) for i in np.argsort(first)}
            lengths[s] = describe_lengths(cols["chars"], cols["words"])
        self.summary.update(sizes=sizes, class_counts=classes, lengths=lengths)


def _carve(part: _Part, src: int, dst: int, fraction: float, seed: int, among=None) -> np.ndarray:
    """Move a stratified ``fraction`` of ``part``'s messages in split ``src`` to split ``dst``
    (:func:`~nlpgd.data.prepare.stratified_split`); returns the positions left in ``src``."""
    pos = np.flatnonzero(part.split == src) if among is None else among
    keep, take = split_positions(part.columns["label"][pos], fraction, seed)
    part.split[pos[take]] = dst
    return pos[keep]


def _open_parts(cfg: DataConfig) -> dict[str, _Part]:
    """The source's files (or hub splits), checked (exist, UTF-8, have the columns) and ready to
    read in batches."""
    if cfg.source == "hub":
        where = f"hub data set '{cfg.name}'"
        return {ours: _dataset_part(cfg, ours, ds, where, f"{theirs}-") for ours, (ds, theirs) in load_hub(cfg).items()}
    parts = {}
    for name, file in local_files(cfg).items():
        if cfg.source == "uci_sms":
            path = check_file(Path(file))
            parts[name] = _Part(name, lambda path=path: _batched(uci_sms_records(path)))
        else:
            prefix = f"{name}-" if name != "all" else ""
            parts[name] = _dataset_part(cfg, name, load_local(cfg, file), str(Path(file).expanduser()), prefix)
    return parts


def _dataset_part(cfg: DataConfig, name: str, ds, where: str, prefix: str) -> _Part:
    """A ``datasets.Dataset`` (Arrow on disk) read a batch at a time; ids as the in-memory path makes them."""
    names = check_columns(ds, cfg, where)
    columns = list(dict.fromkeys([cfg.text_column, cfg.label_column]))

    def batches() -> Iterator[Records]:
        start = 0
        for b in ds.select_columns(columns).iter(batch_size=BATCH):
            ids = [f"{prefix}{i}" for i in range(start, start + len(b[cfg.text_column]))]
            start += len(ids)
            yield dataset_records(b[cfg.text_column], b[cfg.label_column], ids, names)

    return _Part(name, batches)


def _batched(records: Iterator[dict]) -> Iterator[Records]:
    while batch := list(islice(records, BATCH)):
        yield batch
