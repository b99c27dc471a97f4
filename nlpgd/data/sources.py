"""Data sources: each returns raw records ``{"id", "text", "label"}`` per split.

``label`` is still the raw value here (``"spam"``, ``1``, ``"junk"`` ...); normalisation,
cleaning, de-duplication and splitting happen in :mod:`nlpgd.data.prepare`. A source
returns ``{"all": records}`` when it has no splits of its own.
"""

from __future__ import annotations

import codecs
from pathlib import Path
from typing import Any, Iterator

from nlpgd.config import DataConfig
from nlpgd.errors import NlpgdError
from nlpgd.io import existing

Records = list[dict[str, Any]]


def check_file(path: Path, *, text: bool = True) -> Path:
    path = existing(path, "data file")
    if path.stat().st_size == 0:
        raise NlpgdError(f"data file is empty: {path}")
    if text:
        _check_utf8(path)
    return path


def _check_utf8(path: Path, block: int = 1 << 20) -> None:
    """The file decodes as UTF-8, checked a block at a time (memory does not grow with it); the
    first bad byte is named with its line."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    lines = 0  # line ends in the blocks already decoded
    with path.open("rb") as f:
        while True:
            data = f.read(block)
            try:
                decoder.decode(data, final=not data)
            except UnicodeDecodeError as exc:
                line = lines + exc.object[: exc.start].count(b"\n") + 1
                raise NlpgdError(
                    f"data file {path} is not UTF-8 text (invalid byte 0x{exc.object[exc.start]:02x} on line {line})"
                ) from None
            if not data:
                return
            lines += data.count(b"\n")


def read_uci_sms(path: Path) -> Records:
    """The UCI SMS Spam Collection format: ``label<TAB>text`` per line, no header, no quoting."""
    path = check_file(path)
    records = list(uci_sms_records(path))
    if not records:
        raise NlpgdError(f"data file {path} has no messages")
    return records


def uci_sms_records(path: Path) -> Iterator[dict[str, Any]]:
    """The records of a (checked) UCI SMS file, one line at a time; blank lines are skipped."""
    with path.open(encoding="utf-8", newline="") as f:
        for lineno, line in enumerate(f, start=1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            label, tab, text = line.partition("\t")
            if not tab:
                raise NlpgdError(
                    f"{path}, line {lineno}: expected 'label<TAB>text' (UCI SMS Spam Collection format), found no tab"
                )
            yield {"id": f"line-{lineno}", "text": text, "label": label}


def _columns_error(path: str, what: str, column: str, found: list[str]) -> NlpgdError:
    return NlpgdError(
        f"{path}: no {what} column '{column}' (columns found: {', '.join(found) or 'none'}); set data.{what}_column"
    )


def check_columns(ds, cfg: DataConfig, where: str) -> list[str] | None:
    """The configured columns are there (else one sentence); the label names of a ClassLabel column."""
    cols = list(ds.column_names)
    if cfg.text_column not in cols:
        raise _columns_error(where, "text", cfg.text_column, cols)
    if cfg.label_column not in cols:
        raise _columns_error(where, "label", cfg.label_column, cols)
    if cfg.id_column and cfg.id_column not in cols:
        raise _columns_error(where, "id", cfg.id_column, cols)
    feature = ds.features.get(cfg.label_column)
    return getattr(feature, "names", None)  # ClassLabel: ints -> names


def dataset_records(texts, labels, ids, names: list[str] | None) -> Records:
    """Records from a data set's columns (a ClassLabel's ints become its names)."""
    out: Records = []
    for i, t, y in zip(ids, texts, labels):
        if names is not None and isinstance(y, int) and 0 <= y < len(names):
            y = names[y]
        out.append({"id": str(i), "text": t, "label": y})
    return out


def _from_dataset(ds, cfg: DataConfig, where: str, id_prefix: str) -> Records:
    """Turn a ``datasets.Dataset`` into records, mapping the configured columns."""
    names = check_columns(ds, cfg, where)
    ids = ds[cfg.id_column] if cfg.id_column else [f"{id_prefix}{i}" for i in range(len(ds))]
    return dataset_records(ds[cfg.text_column], ds[cfg.label_column], ids, names)


_BUILDERS = {"csv": "csv", "tsv": "csv", "jsonl": "json", "parquet": "parquet"}


def local_files(cfg: DataConfig) -> dict[str, str]:
    """The local file of each of the source's splits (``all``: one file, no splits of its own)."""
    return dict(cfg.files) if cfg.files else {"all": cfg.path}


def load_local(cfg: DataConfig, file: str):
    """One CSV / TSV / JSON Lines / Parquet file as a ``datasets.Dataset`` (Arrow, on disk)."""
    import datasets

    path = check_file(Path(file), text=cfg.source != "parquet")
    kwargs: dict[str, Any] = {}
    if cfg.source in ("csv", "tsv"):
        # no NA parsing: a message reading "NA", "null", "None", "N/A", "nan" or "#N/A" is a
        # message; only a truly empty cell is empty (an empty string, dropped as empty later)
        kwargs.update(keep_default_na=False, na_filter=False)
    if cfg.source == "tsv":
        kwargs["delimiter"] = "\t"
    try:
        ds = datasets.load_dataset(_BUILDERS[cfg.source], data_files=str(path), split="train", **kwargs)
    except Exception as exc:  # parser errors from pandas/pyarrow
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NlpgdError(f"could not read {path} as {cfg.source}: {first}") from None
    if len(ds) == 0:
        raise NlpgdError(f"data file {path} has no rows")
    return ds


def read_local(cfg: DataConfig) -> dict[str, Records]:
    """CSV / TSV / JSON Lines / Parquet through ``datasets``; one file, or one file per split."""
    out: dict[str, Records] = {}
    for split, file in local_files(cfg).items():
        prefix = f"{split}-" if split != "all" else ""
        out[split] = _from_dataset(load_local(cfg, file), cfg, str(Path(file).expanduser()), prefix)
    return out


def read_hub(cfg: DataConfig) -> dict[str, Records]:
    """A Hugging Face hub data set by name (needs internet or the local cache)."""
    where = f"hub data set '{cfg.name}'"
    return {ours: _from_dataset(ds, cfg, where, f"{theirs}-") for ours, (ds, theirs) in load_hub(cfg).items()}


def load_hub(cfg: DataConfig) -> dict[str, tuple[Any, str]]:
    """The hub data set's splits as ``datasets.Dataset`` (Arrow, in the cache): our split name
    -> (its Dataset, the hub's split name). A single ``train`` split is ``all``."""
    import datasets

    from nlpgd.hub import datasets_offline, offline_error, prepare_hub

    offline = prepare_hub(cfg.name, "data set")
    kwargs: dict[str, Any] = {}
    if cfg.config_name:
        kwargs["name"] = cfg.config_name
    if cfg.revision:
        kwargs["revision"] = cfg.revision
    try:
        with datasets_offline(offline):
            dd = datasets.load_dataset(cfg.name, **kwargs)
    except Exception as exc:
        text = str(exc)
        if offline or "OfflineModeIsEnabled" in text or "Couldn't reach" in text:
            raise offline_error(
                cfg.name, "data set", "use a local file instead (source: csv, jsonl, parquet or uci_sms)"
            ) from None
        if "scripts are no longer supported" in text and cfg.revision is None:
            raise NlpgdError(
                f"hub data set '{cfg.name}' ships a loading script, which datasets>=4 refuses; "
                "set data.revision: refs/convert/parquet to use the hub's Parquet export"
            ) from None
        first = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
        raise NlpgdError(f"could not load hub data set '{cfg.name}': {first}") from None
    wanted = cfg.splits or {s: s for s in dd}
    out: dict[str, tuple[Any, str]] = {}
    for ours, theirs in wanted.items():
        if theirs not in dd:
            raise NlpgdError(f"hub data set '{cfg.name}' has no split '{theirs}' (splits: {', '.join(dd)})")
        out[ours] = (dd[theirs], theirs)
    # A single split (sms_spam has only 'train') is not a real train/test split.
    if set(out) == {"train"}:
        out = {"all": out["train"]}
    unknown = set(out) - {"train", "validation", "test", "all"}
    if unknown:
        raise NlpgdError(
            f"hub data set '{cfg.name}' has splits {', '.join(sorted(unknown))}; map them with "
            "data.splits: {train: ..., test: ...}"
        )
    return out


def read_spamassassin(cfg: DataConfig) -> dict[str, Records]:
    from nlpgd.data.spamassassin import load_spamassassin

    cache = Path(cfg.path).expanduser() if cfg.path else None
    rows = load_spamassassin(cache)
    groups = set(cfg.groups or ())
    return {
        "all": [
            {"id": r["id"], "text": r["text"], "label": r["label"]} for r in rows if not groups or r["group"] in groups
        ]
    }


def read_source(cfg: DataConfig) -> dict[str, Records]:
    if cfg.source == "uci_sms":
        if cfg.files:
            return {split: read_uci_sms(Path(p)) for split, p in cfg.files.items()}
        return {"all": read_uci_sms(Path(cfg.path))}
    if cfg.source in _BUILDERS:
        return read_local(cfg)
    if cfg.source == "hub":
        return read_hub(cfg)
    if cfg.source == "spamassassin":
        return read_spamassassin(cfg)
    raise NlpgdError(f"unknown data source '{cfg.source}'")  # pragma: no cover (schema checks it)
