"""From raw records to the one ``DatasetDict`` every model sees.

Steps, each counted in the summary (``data.json`` of a run): map labels to ham/spam; drop
empty texts; cut texts longer than ``data.max_chars``; resolve identical texts with
different labels by ``data.conflicts`` (drop them, keep the first label, or keep the
majority label); drop exact duplicates (when the source has no splits); split
train/validation/test stratified and seeded (only a missing validation split is carved out
of a given train split); optionally subsample; give every message a unique id (an id used
twice is renamed and reported). The split manifest (ids and content hashes) pins the split
for later commands. :func:`data_notes` says in sentences what cleaning changed.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from nlpgd import LABELS
from nlpgd.config import DataConfig
from nlpgd.data.sources import Records, read_source
from nlpgd.errors import NlpgdError

DEFAULT_LABEL_MAP = {
    "spam": "spam",
    "ham": "ham",
    "1": "spam",
    "0": "ham",
    "1.0": "spam",
    "0.0": "ham",
    "true": "spam",
    "false": "ham",
}
SPLITS = ("train", "validation", "test")


def text_hash(text: str) -> str:
    return hashlib.sha1(text.encode("utf-8")).hexdigest()[:16]


@dataclass
class PreparedData:
    dataset: Any  # datasets.DatasetDict with train/validation/test: id, text, label (ClassLabel)
    summary: dict = field(default_factory=dict)

    def texts(self, split: str) -> list[str]:
        return list(self.dataset[split]["text"])

    def labels(self, split: str) -> list[str]:
        return [LABELS[i] for i in self.dataset[split]["label"]]

    def manifest(self) -> dict:
        return {
            "format": 1,
            "label_names": list(LABELS),
            "splits": {
                s: [[i, text_hash(t), LABELS[y]] for i, t, y in zip(d["id"], d["text"], d["label"])]
                for s, d in self.dataset.items()
            },
        }


def label_mapping(cfg: DataConfig) -> dict[str, str]:
    """Raw label value (stripped, lower case) -> ham/spam: the defaults and ``data.label_map``."""
    return {**DEFAULT_LABEL_MAP, **{str(k).strip().lower(): v for k, v in cfg.label_map.items()}}


def map_labels(records: Records, mapping: dict[str, str], bad: Counter) -> Records:
    """Records whose label maps to ham/spam, mapped; the other values are counted in ``bad``."""
    out = []
    for r in records:
        key = str(r["label"]).strip().lower()
        if key not in mapping:
            bad[str(r["label"])] += 1
            continue
        out.append({**r, "label": mapping[key]})
    return out


def bad_labels(bad: Counter, cfg: DataConfig, where: str) -> NlpgdError:
    shown = ", ".join(repr(v) for v, _ in bad.most_common(8))
    return NlpgdError(
        f"{where}: label values {shown} in column '{cfg.label_column}' do not map to ham/spam; "
        "add them to data.label_map (e.g. label_map: {junk: spam})"
    )


def normalise_labels(records: Records, cfg: DataConfig, where: str) -> Records:
    bad: Counter = Counter()
    out = map_labels(records, label_mapping(cfg), bad)
    if bad:
        raise bad_labels(bad, cfg, where)
    return out


def drop_empty(records: Records) -> tuple[Records, int]:
    kept = [r for r in records if isinstance(r["text"], str) and r["text"].strip()]
    return kept, len(records) - len(kept)


def cut_long(records: Records, max_chars: int | None) -> tuple[Records, dict]:
    """Texts longer than ``max_chars`` cut to it; how many, and the longest length seen."""
    if max_chars is None:
        return records, {"count": 0}
    long = [len(r["text"]) for r in records if len(r["text"]) > max_chars]
    if not long:
        return records, {"count": 0}
    out = [{**r, "text": r["text"][:max_chars]} if len(r["text"]) > max_chars else r for r in records]
    return out, {"count": len(long), "max_chars": max_chars, "longest": max(long)}


def resolve_conflicts(records: Records, rule: str) -> tuple[Records, dict]:
    """Identical texts with different labels, resolved by ``rule``: ``drop`` (every copy goes),
    ``first`` (copies with the first label seen stay) or ``majority`` (copies with the label
    most copies have stay; a tie is dropped). Returns the records and what was found."""
    counts: dict[str, Counter] = {}
    first: dict[str, str] = {}
    tally_labels(records, counts, first)
    conflicting, keep = conflict_rule(counts, first, rule)
    if not conflicting:
        return records, {"count": 0}
    kept = [r for r in records if r["text"] not in keep or r["label"] == keep[r["text"]]]
    return kept, conflict_info(conflicting, rule, len(records) - len(kept))


def tally_labels(records: Iterable[dict], counts: dict[str, Counter], first: dict[str, str]) -> None:
    """Each text's label counts and first label seen, added to ``counts`` and ``first``."""
    for r in records:
        counts.setdefault(r["text"], Counter())[r["label"]] += 1
        first.setdefault(r["text"], r["label"])


def conflict_rule(counts: dict[str, Counter], first: dict[str, str], rule: str) -> tuple[dict, dict]:
    """The texts seen with both labels, and the label whose copies stay for each (None: none stay)."""
    conflicting = {t: c for t, c in counts.items() if len(c) > 1}
    keep: dict[str, str | None] = {}
    for text, c in conflicting.items():
        (top, n_top), (_, n_next) = c.most_common(2)
        keep[text] = {"first": first[text], "majority": top if n_top > n_next else None}.get(rule)
    return conflicting, keep


def conflict_info(conflicting: dict[str, Counter], rule: str, rows_dropped: int) -> dict:
    examples = [{"text": _short(t), "labels": dict(sorted(c.items()))} for t, c in list(conflicting.items())[:3]]
    return {"count": len(conflicting), "rule": rule, "rows_dropped": rows_dropped, "examples": examples}


def dedup(records: Records) -> tuple[Records, int]:
    seen: set[str] = set()
    kept = []
    for r in records:
        if r["text"] in seen:
            continue
        seen.add(r["text"])
        kept.append(r)
    return kept, len(records) - len(kept)


def _short(text: str, n: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= n else text[: n - 3] + "..."


def stratified_split(records: Records, fraction: float, seed: int) -> tuple[Records, Records]:
    """Split off ``fraction`` of the records, stratified by label; deterministic for a seed."""
    keep, take = split_positions([r["label"] for r in records], fraction, seed)
    return [records[i] for i in keep], [records[i] for i in take]


def split_positions(labels, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """:func:`stratified_split` on the labels alone: the positions kept and split off, each sorted."""
    from sklearn.model_selection import train_test_split

    n = len(labels)
    if not n:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    values, counts = np.unique(np.asarray(labels), return_counts=True)
    stratify = labels if counts.min() >= 2 and len(values) > 1 else None
    n_take = max(1, int(round(fraction * n)))
    if n_take >= n:  # one or two messages: the part split off takes what there is
        return np.zeros(0, dtype=np.int64), np.arange(n)
    if stratify is not None and n_take < len(values):
        stratify = None
    keep, take = train_test_split(np.arange(n), test_size=n_take, random_state=seed, stratify=stratify)
    return np.sort(keep), np.sort(take)


def subsample(records: Records, n: int | None, seed: int) -> Records:
    if n is None or n >= len(records):
        return records
    kept, _ = stratified_split(records, 1 - n / len(records), seed)
    return kept if len(kept) == n else kept[:n]


def unique_ids(splits: dict[str, Records]) -> dict:
    """Give a message whose id is already taken (in any split) the id ``<id>-<k>``, the first
    ``k`` >= 2 that is free; returns how many were renamed, with a few of the reused ids."""
    taken = {r["id"] for recs in splits.values() for r in recs}
    seen: set[str] = set()
    reused: list[str] = []
    for recs in splits.values():
        for r in recs:
            if r["id"] in seen:
                reused.append(r["id"])
                k = 2
                while f"{r['id']}-{k}" in taken:
                    k += 1
                r["id"] = f"{r['id']}-{k}"
                taken.add(r["id"])
            seen.add(r["id"])
    if not reused:
        return {"count": 0}
    return {"count": len(reused), "examples": list(dict.fromkeys(reused))[:3]}


def _describe(texts: list[str]) -> dict:
    return describe_lengths([len(t) for t in texts], [len(t.split()) for t in texts])


def describe_lengths(n_chars, n_words) -> dict:
    """Percentiles, mean and maximum of the messages' lengths in characters and in words."""
    if not len(n_chars):
        return {}
    chars, words = np.asarray(n_chars, dtype=np.int64), np.asarray(n_words, dtype=np.int64)
    q = lambda a: {k: float(np.percentile(a, p)) for k, p in (("p5", 5), ("median", 50), ("p95", 95))}  # noqa: E731
    return {
        "chars": {**q(chars), "mean": float(chars.mean()), "max": int(chars.max())},
        "words": {**q(words), "mean": float(words.mean()), "max": int(words.max())},
    }


def prepare(cfg: DataConfig, raw: dict[str, Records] | None = None, *, need_both_classes: bool = True) -> PreparedData:
    """Load (unless ``raw`` is given), clean and split according to ``cfg``. Training needs
    both classes; an evaluation set (``need_both_classes`` False) may hold one."""
    where = source_where(cfg)
    raw = read_source(cfg) if raw is None else raw
    summary: dict[str, Any] = {"source": cfg.source, "where": dict(cfg.files) if cfg.files else where}
    cleaned = _clean(raw, cfg, where, summary)
    splits = _split(cleaned, cfg, where, summary, need_both_classes)
    splits["train"] = subsample(splits["train"], cfg.max_train_samples, cfg.split_seed)
    for s in ("validation", "test"):
        splits[s] = subsample(splits[s], cfg.max_eval_samples, cfg.split_seed)
    summary["reused_ids"] = unique_ids(splits)
    dd = _to_dataset_dict(splits)
    summary["sizes"] = {s: len(dd[s]) for s in SPLITS}
    summary["class_counts"] = {s: dict(Counter(LABELS[y] for y in dd[s]["label"])) for s in SPLITS}
    summary["lengths"] = {s: _describe(dd[s]["text"]) for s in SPLITS}
    return PreparedData(dd, summary)


def source_where(cfg: DataConfig) -> str:
    """The data set as errors name it: a hub name, the SpamAssassin corpus, a file or the files."""
    corpus = "SpamAssassin corpus" + (f" ({' + '.join(cfg.groups)})" if cfg.groups else "")
    where = {"hub": f"hub data set '{cfg.name}'", "spamassassin": corpus}.get(cfg.source)
    if where is None:
        where = ", ".join(f"{k}: {v}" for k, v in cfg.files.items()) if cfg.files else str(cfg.path)
    return where


def _clean(raw: dict[str, Records], cfg: DataConfig, where: str, summary: dict) -> dict[str, Records]:
    """Labels mapped to ham/spam, empty texts dropped, long texts cut and label conflicts
    resolved, split by split (counted in ``summary``)."""
    summary["raw_rows"] = {}
    cleaned: dict[str, Records] = {}
    empty_total = 0
    cut: list[dict] = []
    conflicts: list[dict] = []
    for split, recs in raw.items():
        summary["raw_rows"][split] = len(recs)
        recs = normalise_labels(recs, cfg, where)
        recs, n_empty = drop_empty(recs)
        empty_total += n_empty
        recs, info = cut_long(recs, cfg.max_chars)
        cut.append(info)
        cleaned[split], info = resolve_conflicts(recs, cfg.conflicts)
        conflicts.append(info)
    summary["empty_dropped"] = empty_total
    summary["long_texts_cut"] = merge_counts(cut)
    summary["label_conflicts"] = merge_counts(conflicts)
    if sum(len(r) for r in cleaned.values()) == 0:
        raise NlpgdError(
            f"{where}: every text is empty or whitespace (or dropped as a label conflict); nothing is left"
        )
    return cleaned


def merge_counts(parts: list[dict]) -> dict:
    """One count record from one per split: counts added, largest ``longest``, first examples."""
    found = [p for p in parts if p["count"]]
    if not found:
        return {"count": 0}
    out = {**found[0], "count": sum(p["count"] for p in found)}
    for key in ("rows_dropped",):
        if key in out:
            out[key] = sum(p[key] for p in found)
    if "longest" in out:
        out["longest"] = max(p["longest"] for p in found)
    if "examples" in out:
        out["examples"] = [e for p in found for e in p["examples"]][:3]
    return out


def _one_class(present: list[str], where: str, what: str) -> NlpgdError:
    return NlpgdError(f"{where}: {what.format(present[0] if present else 'none')}; need both ham and spam")


def _split(
    cleaned: dict[str, Records], cfg: DataConfig, where: str, summary: dict, need_both_classes: bool = True
) -> dict[str, Records]:
    """Train / validation / test: given splits are kept (a missing validation or test split is
    carved from train); one pool of messages is de-duplicated and split stratified."""
    summary["duplicates_removed"] = 0
    if "all" in cleaned:
        recs = cleaned["all"]
        if cfg.dedup:
            recs, summary["duplicates_removed"] = dedup(recs)
        present = sorted({r["label"] for r in recs})
        if len(present) < 2 and need_both_classes:
            raise _one_class(present, where, "only one class present ({})")
        rest, test = stratified_split(recs, cfg.test_size, cfg.split_seed)
        train, val = stratified_split(rest, cfg.validation_size / (1 - cfg.test_size), cfg.split_seed)
        left = sorted({r["label"] for r in train})
        if len(left) < 2 and need_both_classes:  # too few messages of a class to leave some for training
            raise _one_class(left, where, f"the train split of {len(recs)} messages has only one class ({{}})")
        summary["splits_given"] = False
        return {"train": train, "validation": val, "test": test}
    if "train" not in cleaned:
        raise NlpgdError(f"{where}: has splits {', '.join(cleaned)} but no 'train' split")
    splits = dict(cleaned)
    if "validation" not in splits:
        splits["train"], splits["validation"] = stratified_split(splits["train"], cfg.validation_size, cfg.split_seed)
    if "test" not in splits:
        splits["train"], splits["test"] = stratified_split(
            splits["train"], cfg.test_size / (1 - cfg.validation_size), cfg.split_seed
        )
    train_texts = {r["text"] for r in splits["train"]}
    summary["splits_given"] = True
    summary["test_texts_also_in_train"] = sum(r["text"] in train_texts for r in splits["test"])
    present = sorted({r["label"] for r in splits["train"]})
    if len(present) < 2 and need_both_classes:
        raise _one_class(present, where, "the train split has only one class ({})")
    return splits


def data_notes(summary: dict) -> list[str]:
    """What cleaning changed that a person should know, one sentence each (``nlpgd data`` prints
    them, ``compare`` logs them): label conflicts, reused ids, texts cut to ``max_chars``."""
    notes = []
    conflicts = summary.get("label_conflicts", {"count": 0})
    if conflicts["count"]:
        how = {
            "drop": "every copy dropped",
            "first": "the first label seen kept",
            "majority": "the majority label kept, ties dropped",
        }[conflicts["rule"]]
        shown = "; ".join(
            f"{e['text']!r} ({', '.join(f'{k} {v}' for k, v in e['labels'].items())})" for e in conflicts["examples"]
        )
        notes.append(
            f"{_count(conflicts['count'], 'text appears', 'texts appear')} with both labels ({how}, "
            f"data.conflicts: {conflicts['rule']}; "
            f"{_count(conflicts['rows_dropped'], 'row', 'rows')} dropped), e.g. {shown}"
        )
    reused = summary.get("reused_ids", {"count": 0})
    if reused["count"]:
        shown = ", ".join(repr(i) for i in reused["examples"])
        notes.append(
            f"{_count(reused['count'], 'message reuses', 'messages reuse')} an id already taken (e.g. {shown}); "
            "each was renamed <id>-2, <id>-3, ..."
        )
    cut = summary.get("long_texts_cut", {"count": 0})
    if cut["count"]:
        notes.append(
            f"{_count(cut['count'], 'text', 'texts')} longer than data.max_chars = {cut['max_chars']:,} characters "
            f"{'was' if cut['count'] == 1 else 'were'} cut to it (the longest had {cut['longest']:,})"
        )
    return notes


def _count(n: int, one: str, many: str) -> str:
    return f"{n:,} {one if n == 1 else many}"


def describe_where(where) -> str:
    """``data.json``'s ``where`` for a person: a file, a hub name, or ``train: a.csv, test: b.csv``."""
    if isinstance(where, dict):
        return ", ".join(f"{k}: {v}" for k, v in where.items())
    return str(where)


def _to_dataset_dict(splits: dict[str, Records]):
    import datasets

    features = datasets.Features(
        {
            "id": datasets.Value("string"),
            "text": datasets.Value("string"),
            "label": datasets.ClassLabel(names=list(LABELS)),
        }
    )
    columns = {
        s: {
            "id": [r["id"] for r in splits[s]],
            "text": [r["text"] for r in splits[s]],
            "label": [LABELS.index(r["label"]) for r in splits[s]],
        }
        for s in SPLITS
    }
    return datasets.DatasetDict({s: datasets.Dataset.from_dict(columns[s], features=features) for s in SPLITS})


def check_manifest(data: PreparedData, manifest: dict) -> None:
    """Error unless ``data`` holds exactly the split recorded in ``manifest``."""
    mine = data.manifest()["splits"]
    for split, rows in manifest.get("splits", {}).items():
        if mine.get(split) != rows:
            raise NlpgdError(
                f"the data no longer matches the run's split manifest (split '{split}' differs); "
                "the source file or the data settings changed"
            )
