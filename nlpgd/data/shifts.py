"""Real shifts inside the SpamAssassin corpus: train on some of its groups, test on others.

A shift has two sides. The *train side* is prepared like any data set (cleaned, de-duplicated,
split into train / validation / test with the data settings), so a model fitted on it has an
in-domain test split; the *target side* is the shifted test set. Exact duplicates across the
sides are removed from the target (counted), so no target message was seen in training.

- ``temporal``: train on the earlier groups (easy-ham-1 + spam-1), test on the later ones
  (easy-ham-2 + spam-2).
- ``difficulty``: train on easy ham (easy-ham-1 + easy-ham-2), test on hard ham (hard-ham-1).
  Spam has no difficulty groups, so it is held out the same way at random: the target side gets
  the share of the spam (both groups, drawn with ``data.split_seed``) that hard ham is of all
  ham, and the train side the rest; both sides keep the corpus's class balance.

:func:`load_shift` returns both sides and a report of what each side holds; a later multi-corpus
page can take a shift's two sides as a train corpus and a target like any other.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from nlpgd.config import DataConfig
from nlpgd.data.prepare import (
    PreparedData,
    cut_long,
    dedup,
    drop_empty,
    normalise_labels,
    prepare,
    resolve_conflicts,
    stratified_split,
    subsample,
)
from nlpgd.data.sources import Records
from nlpgd.data.spamassassin import GROUP_DESCRIPTIONS, GROUP_LABELS
from nlpgd.errors import NlpgdError


@dataclass(frozen=True)
class ShiftSpec:
    name: str
    what: str
    train_groups: tuple[str, ...]
    target_groups: tuple[str, ...]
    spam_held_out_at_random: bool = False  # difficulty: spam split at random between the sides

    def side_groups(self, side: str) -> tuple[str, ...]:
        groups = self.train_groups if side == "train" else self.target_groups
        if self.spam_held_out_at_random:
            return (*groups, "spam-1", "spam-2")
        return groups


SHIFTS: dict[str, ShiftSpec] = {
    "temporal": ShiftSpec(
        "temporal",
        "train on the earlier groups, test on the ones collected later",
        ("easy-ham-1", "spam-1"),
        ("easy-ham-2", "spam-2"),
    ),
    "difficulty": ShiftSpec(
        "difficulty",
        "train on easy ham, test on hard ham (spam held out at random in the same share)",
        ("easy-ham-1", "easy-ham-2"),
        ("hard-ham-1",),
        spam_held_out_at_random=True,
    ),
}


@dataclass
class ShiftData:
    """The train side (prepared: train / validation / test), the target side's records, and
    :func:`shift_report` of both."""

    name: str
    train: PreparedData
    target: Records
    report: dict


def _corpus_rows(cfg: DataConfig) -> list[dict]:
    from nlpgd.data.spamassassin import load_spamassassin

    return load_spamassassin(Path(cfg.path).expanduser() if cfg.path else None)


def _sides(spec: ShiftSpec, rows: list[dict], seed: int) -> tuple[Records, Records, float]:
    """The raw records of each side (before cleaning), as the spec draws them, and the share
    of the spam held out for the target side (0 when spam goes by group)."""
    train = [r for r in rows if r["group"] in spec.train_groups]
    target = [r for r in rows if r["group"] in spec.target_groups]
    share = 0.0
    if spec.spam_held_out_at_random:
        ham = [r for r in rows if GROUP_LABELS[r["group"]] == "ham"]
        spam = [r for r in rows if GROUP_LABELS[r["group"]] == "spam"]
        share = sum(r["group"] in spec.target_groups for r in ham) / max(len(ham), 1)
        kept, held = stratified_split(spam, share, seed) if spam and share > 0 else (spam, [])
        train, target = train + kept, target + held
    strip = lambda rs: [{"id": r["id"], "text": r["text"], "label": r["label"]} for r in rs]  # noqa: E731
    return strip(train), strip(target), share


def _clean(records: Records, cfg: DataConfig, where: str) -> tuple[Records, dict]:
    """One side cleaned as :func:`~nlpgd.data.prepare.prepare` cleans a data set (labels,
    empty texts, long texts, label conflicts, exact duplicates), with what each step removed."""
    recs = normalise_labels(records, cfg, where)
    recs, empty = drop_empty(recs)
    recs, _ = cut_long(recs, cfg.max_chars)
    recs, conflicts = resolve_conflicts(recs, cfg.conflicts)
    recs, within = dedup(recs) if cfg.dedup else (recs, 0)
    return recs, {
        "raw": len(records),
        "empty_dropped": empty,
        "label_conflict_rows_dropped": conflicts.get("rows_dropped", 0),
        "duplicates_within": within,
    }


def shift_config(base: DataConfig, groups: tuple[str, ...]) -> DataConfig:
    """The data settings of one side: ``base``'s cleaning and split settings (SpamAssassin's
    cache folder when ``base`` reads SpamAssassin) on the given groups."""
    keep = {
        k: getattr(base, k)
        for k in ("dedup", "conflicts", "max_chars", "validation_size", "test_size", "split_seed")
        if k in base.model_fields_set
    }
    keep.update(max_train_samples=base.max_train_samples, max_eval_samples=base.max_eval_samples)
    if base.source == "spamassassin" and base.path:
        keep["path"] = base.path
    return DataConfig(source="spamassassin", groups=list(groups), **keep)


def load_shift(name: str, base: DataConfig) -> ShiftData:
    """Both sides of shift ``name`` with ``base``'s data settings; an error when a side is
    empty (or lacks a class) after de-duplication."""
    if name not in SHIFTS:
        raise NlpgdError(f"unknown shift '{name}'; the shifts are {', '.join(SHIFTS)}")
    spec = SHIFTS[name]
    cfg = shift_config(base, spec.side_groups("train"))
    train_raw, target_raw, held_share = _sides(spec, _corpus_rows(cfg), cfg.split_seed)
    where = f"shift '{name}'"
    train_recs, train_counts = _clean(train_raw, cfg, where)
    if not train_recs:
        raise NlpgdError(f"{where}: the train side ({' + '.join(spec.train_groups)}) is empty after cleaning")
    target_recs, target_counts = _clean(target_raw, cfg, where)
    train_texts = {r["text"] for r in train_recs}
    target = [r for r in target_recs if r["text"] not in train_texts]
    target_counts["duplicates_of_train"] = len(target_recs) - len(target)
    side = f"{where}: the target side ({' + '.join(spec.target_groups)})"
    if not target:
        raise NlpgdError(
            f"{side} is empty after removing {target_counts['duplicates_of_train']} exact duplicates of "
            "train-side messages"
        )
    present = {r["label"] for r in target}
    if len(present) < 2:
        raise NlpgdError(f"{side} holds only {', '.join(sorted(present))} after de-duplication; need ham and spam")
    train = prepare(cfg, {"all": train_recs})
    target = subsample(target, cfg.max_eval_samples, cfg.split_seed)
    sides = {"train": (train_recs, train_counts), "target": (target, target_counts)}
    return ShiftData(name, train, target, shift_report(spec, train, sides, held_share))


def _side_label(spec: ShiftSpec, side: str, held_share: float) -> str:
    groups = spec.train_groups if side == "train" else spec.target_groups
    if not spec.spam_held_out_at_random:
        return " + ".join(groups)
    part = f"the other {1 - held_share:.0%}" if side == "train" else f"{held_share:.0%} held out at random"
    return f"{' + '.join(groups)} + spam-1/spam-2 ({part})"


def shift_report(spec: ShiftSpec, train: PreparedData, sides: dict, held_share: float) -> dict:
    """What each side holds: its groups (and what each is), messages per class after cleaning
    and de-duplication (the target also without the train side's texts), the train side's
    split sizes, and what was removed."""
    out = {
        "name": spec.name,
        "what": spec.what,
        "groups": {g: GROUP_DESCRIPTIONS[g] for g in dict.fromkeys((*spec.side_groups("train"), *spec.target_groups))},
        "spam_held_out_share": held_share,
    }
    for side, (recs, counts) in sides.items():
        classes = Counter(r["label"] for r in recs)
        out[side] = {
            "groups": _side_label(spec, side, held_share),
            "messages": len(recs),
            "ham": classes.get("ham", 0),
            "spam": classes.get("spam", 0),
            **counts,
        }
    out["train"]["splits"] = dict(train.summary["sizes"])
    return out
