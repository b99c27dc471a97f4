"""From raw records to the one ``DatasetDict`` every model sees.

Steps, each counted in the summary: map labels to ham/spam; drop empty texts; drop exact
duplicates (when the source has no splits); split train/validation/test stratified and
seeded (only a missing validation split is carved out of a given train split); optionally
subsample. The split manifest (ids and content hashes) pins the split for later commands.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

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


def normalise_labels(records: Records, cfg: DataConfig, where: str) -> Records:
    mapping = {**DEFAULT_LABEL_MAP, **{str(k).strip().lower(): v for k, v in cfg.label_map.items()}}
    bad: Counter = Counter()
    out = []
    for r in records:
        key = str(r["label"]).strip().lower()
        if key not in mapping:
            bad[str(r["label"])] += 1
            continue
        out.append({**r, "label": mapping[key]})
    if bad:
        shown = ", ".join(repr(v) for v, _ in bad.most_common(8))
        raise NlpgdError(
            f"{where}: label values {shown} in column '{cfg.label_column}' do not map to ham/spam; "
            "add them to data.label_map (e.g. label_map: {junk: spam})"
        )
    return out


def drop_empty(records: Records) -> tuple[Records, int]:
    kept = [r for r in records if isinstance(r["text"], str) and r["text"].strip()]
    return kept, len(records) - len(kept)


def dedup(records: Records) -> tuple[Records, int]:
    seen: set[str] = set()
    kept = []
    for r in records:
        if r["text"] in seen:
            continue
        seen.add(r["text"])
        kept.append(r)
    return kept, len(records) - len(kept)


def stratified_split(records: Records, fraction: float, seed: int) -> tuple[Records, Records]:
    """Split off ``fraction`` of the records, stratified by label; deterministic for a seed."""
    from sklearn.model_selection import train_test_split

    if not records:
        return [], []
    labels = [r["label"] for r in records]
    counts = Counter(labels)
    stratify = labels if min(counts.values()) >= 2 and len(counts) > 1 else None
    n_take = max(1, int(round(fraction * len(records))))
    if stratify is not None and n_take < len(counts):
        stratify = None
    idx = np.arange(len(records))
    keep, take = train_test_split(idx, test_size=n_take, random_state=seed, stratify=stratify)
    return [records[i] for i in sorted(keep)], [records[i] for i in sorted(take)]


def subsample(records: Records, n: int | None, seed: int) -> Records:
    if n is None or n >= len(records):
        return records
    kept, _ = stratified_split(records, 1 - n / len(records), seed)
    return kept if len(kept) == n else kept[:n]


def _ensure_unique_ids(splits: dict[str, Records]) -> None:
    seen: set[str] = set()
    for name, recs in splits.items():
        for r in recs:
            if r["id"] in seen:
                r["id"] = f"{name}-{r['id']}"
            if r["id"] in seen:
                raise NlpgdError(f"duplicate message id '{r['id']}' in split '{name}'")
            seen.add(r["id"])


def _describe(texts: list[str]) -> dict:
    if not texts:
        return {}
    chars = np.array([len(t) for t in texts])
    words = np.array([len(t.split()) for t in texts])
    q = lambda a: {k: float(np.percentile(a, p)) for k, p in (("p5", 5), ("median", 50), ("p95", 95))}  # noqa: E731
    return {
        "chars": {**q(chars), "mean": float(chars.mean()), "max": int(chars.max())},
        "words": {**q(words), "mean": float(words.mean()), "max": int(words.max())},
    }


def prepare(cfg: DataConfig, raw: dict[str, Records] | None = None) -> PreparedData:
    """Load (unless ``raw`` is given), clean and split according to ``cfg``."""
    where = {"hub": f"hub data set '{cfg.name}'", "spamassassin": "SpamAssassin corpus"}.get(
        cfg.source, str(cfg.path or cfg.files)
    )
    raw = read_source(cfg) if raw is None else raw
    summary: dict[str, Any] = {"source": cfg.source, "where": where}
    cleaned = _clean(raw, cfg, where, summary)
    splits = _split(cleaned, cfg, where, summary)
    splits["train"] = subsample(splits["train"], cfg.max_train_samples, cfg.split_seed)
    for s in ("validation", "test"):
        splits[s] = subsample(splits[s], cfg.max_eval_samples, cfg.split_seed)
    _ensure_unique_ids(splits)
    dd = _to_dataset_dict(splits)
    summary["sizes"] = {s: len(dd[s]) for s in SPLITS}
    summary["class_counts"] = {s: dict(Counter(LABELS[y] for y in dd[s]["label"])) for s in SPLITS}
    summary["lengths"] = {s: _describe(dd[s]["text"]) for s in SPLITS}
    return PreparedData(dd, summary)


def _clean(raw: dict[str, Records], cfg: DataConfig, where: str, summary: dict) -> dict[str, Records]:
    """Labels mapped to ham/spam and empty texts dropped, split by split (counted in ``summary``)."""
    summary["raw_rows"] = {}
    cleaned: dict[str, Records] = {}
    empty_total = 0
    for split, recs in raw.items():
        summary["raw_rows"][split] = len(recs)
        recs = normalise_labels(recs, cfg, where)
        recs, n_empty = drop_empty(recs)
        empty_total += n_empty
        cleaned[split] = recs
    summary["empty_dropped"] = empty_total
    if sum(len(r) for r in cleaned.values()) == 0:
        raise NlpgdError(f"{where}: every text is empty or whitespace; nothing is left to use")
    return cleaned


def _split(cleaned: dict[str, Records], cfg: DataConfig, where: str, summary: dict) -> dict[str, Records]:
    """Train / validation / test: given splits are kept (a missing validation or test split is
    carved from train); one pool of messages is de-duplicated and split stratified."""
    summary["duplicates_removed"] = 0
    if "all" in cleaned:
        recs = cleaned["all"]
        if cfg.dedup:
            recs, summary["duplicates_removed"] = dedup(recs)
        present = sorted({r["label"] for r in recs})
        if len(present) < 2:
            raise NlpgdError(f"{where}: only one class present ({present[0]}); need both ham and spam")
        rest, test = stratified_split(recs, cfg.test_size, cfg.split_seed)
        train, val = stratified_split(rest, cfg.validation_size / (1 - cfg.test_size), cfg.split_seed)
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
    if len(present) < 2:
        raise NlpgdError(f"{where}: the train split has only one class ({present[0]}); need both ham and spam")
    return splits


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
