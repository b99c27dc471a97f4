"""Data layer: sources (hub, csv/tsv/jsonl/parquet, UCI SMS, SpamAssassin) -> one DatasetDict."""

from nlpgd.config import DataConfig
from nlpgd.data.prepare import PreparedData, check_manifest, data_notes, describe_where, prepare, text_hash


def load_splits(cfg: DataConfig, *, need_both_classes: bool = True) -> PreparedData:
    """Load, clean and split a data set: ``.dataset`` is a DatasetDict (train/validation/test).
    An evaluation set (``need_both_classes`` False) may hold one class only."""
    return prepare(cfg, need_both_classes=need_both_classes)


__all__ = [
    "DataConfig",
    "PreparedData",
    "check_manifest",
    "data_notes",
    "describe_where",
    "load_splits",
    "prepare",
    "text_hash",
]
