"""Data layer: sources (hub, csv/tsv/jsonl/parquet, UCI SMS, SpamAssassin) -> one DatasetDict."""

from nlpgd.config import DataConfig
from nlpgd.data.prepare import PreparedData, check_manifest, prepare, text_hash


def load_splits(cfg: DataConfig) -> PreparedData:
    """Load, clean and split a data set: ``.dataset`` is a DatasetDict (train/validation/test)."""
    return prepare(cfg)


__all__ = ["DataConfig", "PreparedData", "check_manifest", "load_splits", "prepare", "text_hash"]
