"""Data layer: sources (hub, csv/tsv/jsonl/parquet, UCI SMS, SpamAssassin) -> one DatasetDict."""

from nlpgd.config import DataConfig
from nlpgd.data.prepare import PreparedData, check_manifest, data_notes, describe_where, prepare, text_hash
from nlpgd.errors import NlpgdError


def load_splits(cfg: DataConfig | None, *, need_both_classes: bool = True) -> PreparedData:
    """Load, clean and split a data set: ``.dataset`` is a DatasetDict (train/validation/test).
    An evaluation set (``need_both_classes`` False) may hold one class only. ``None`` (a config
    with ``corpora:`` instead of ``data:``) is one sentence: only ``nlpgd experiment`` reads corpora."""
    if cfg is None:
        raise NlpgdError(
            "the config has a 'corpora' list and no 'data' section: only `nlpgd experiment` runs on several "
            "corpora; give this command a config with one 'data' section"
        )
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
