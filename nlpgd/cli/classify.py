"""`nlpgd classify`: label texts with the models saved in a run folder."""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import math
import os
import sys
from pathlib import Path
from typing import Annotated, Iterator, Optional

import typer

from nlpgd import CHUNK_SIZE
from nlpgd.cli.common import (
    Quiet,
    Verbose,
    cli_errors,
    echo_table,
    is_first_process,
    parse_dataset_spec,
    parse_prior,
    rate_progress,
)
from nlpgd.errors import NlpgdError
from nlpgd.io import check_output_file, partial_writer

log = logging.getLogger(__name__)

RunDir = Annotated[
    Path, typer.Argument(help="A finished run folder (outputs/<experiment>/<run-id>).", show_default=False)
]
Texts = Annotated[
    Optional[list[str]],
    typer.Argument(help="Messages to classify; '-' reads one per line from stdin.", show_default=False),
]
ModelName = Annotated[Optional[str], typer.Option("--model", help="Only this model (default: every model in the run).")]
Seed = Annotated[Optional[int], typer.Option("--seed", help="Only the model trained with this seed.")]
AsJson = Annotated[
    bool,
    typer.Option(
        "--json",
        help="One JSON object per text and model (line, model, text, label, prob_spam; 'line' is the "
        "stdin line or argument number), printed as each chunk is scored.",
    ),
]
Prior = Annotated[
    Optional[list[str]],
    typer.Option(
        "--prior", help="Class prior for the generative models, e.g. --prior spam=0.5 (label shift); repeatable."
    ),
]
Tokens = Annotated[
    bool,
    typer.Option(
        "--tokens",
        help="Also print each token's log P(token | prefix, class) under every class "
        "(GPT-2 models): which words pull a message towards spam.",
    ),
]
ChunkSize = Annotated[
    int,
    typer.Option(
        "--chunk-size", help="Messages read, scored and written together: memory depends on this, not on the input."
    ),
]
Out = Annotated[
    Optional[Path],
    typer.Option(
        "--out",
        help="Write the JSON lines to this file (FILE.jsonl.partial while scoring, renamed when complete) "
        "instead of stdout.",
    ),
]


Dataset = Annotated[
    Optional[str],
    typer.Option(
        "--dataset",
        help="Classify the messages of a data set instead of TEXTS (a YAML file or SOURCE:LOCATION, as evaluate "
        "takes); JSON lines carry each message's id. Under torchrun the processes share the messages.",
        show_default=False,
    ),
]
Split = Annotated[str, typer.Option("--split", help="With --dataset: train, validation, test or all.")]
DataSet = Annotated[Optional[list[str]], typer.Option("--set", help="With --dataset: override a data setting.")]


@cli_errors
def classify(
    run_dir: RunDir,
    texts: Texts = None,
    model: ModelName = None,
    seed: Seed = None,
    as_json: AsJson = False,
    prior: Prior = None,
    tokens: Tokens = False,
    chunk_size: ChunkSize = CHUNK_SIZE,
    out: Out = None,
    dataset: Dataset = None,
    split: Split = "test",
    set_: DataSet = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Print each model's label and spam probability for each text.

    With '-', stdin is read, scored and written one chunk at a time (--chunk-size), so any
    number of messages fits in memory and results appear as they are ready. Under ``torchrun
    --nproc_per_node N -m nlpgd classify RUN --dataset ...`` the N processes share every chunk
    and the first one writes."""
    from nlpgd.distributed import finish_launch
    from nlpgd.scoring import load_run_models

    _check_options(texts, dataset, chunk_size, out)
    messages, total = _messages(texts) if dataset is None else _dataset_messages(dataset, split, set_)
    prior_map = parse_prior(prior)
    models = load_run_models(run_dir, model, seed, progress=False)  # the bar below counts messages
    from nlpgd.models.base import apply_prior

    unchanged = apply_prior(models, prior_map)
    if unchanged and is_first_process():
        typer.echo(f"note: --prior applies to generative models only; unchanged: {', '.join(unchanged)}", err=True)
    per_token = _per_token_models(models, tokens, quiet=as_json or out is not None or not is_first_process())
    key = "line" if dataset is None else "id"
    done = None
    with rate_progress("classifying", total=total) as progress:
        if not is_first_process():  # scores its share of each chunk; the first process writes
            _stream(models, messages, chunk_size, progress, None)
        elif out is not None:
            with partial_writer(out) as f:
                done = _stream(models, messages, chunk_size, progress, _JsonLines(f.write, per_token, key))
        else:
            sink = _JsonLines(_echo, per_token, key) if as_json else _Table(models, per_token)
            _stream(models, messages, chunk_size, progress, sink)
    if done is not None:  # once the bar is gone from the terminal, not on its line
        typer.echo(f"wrote {done * len(models):,} lines ({done:,} messages x {len(models)} models) to {out}", err=True)
    finish_launch()


def _check_options(texts: list[str] | None, dataset: str | None, chunk_size: int, out: Path | None) -> None:
    """Options refused before any work (and, under a launch, the process group started)."""
    from nlpgd.distributed import init_launch, launched_world_size, on_main_process

    if chunk_size < 1:
        raise NlpgdError(f"--chunk-size must be at least 1, got {chunk_size}")
    if dataset is not None and texts:
        raise NlpgdError("give texts or --dataset, not both")
    if launched_world_size() > 1 and dataset is None:
        raise NlpgdError("under torchrun / accelerate launch, classify reads its messages with --dataset")
    init_launch()
    if out is not None:
        on_main_process(lambda: check_output_file(out))


def _dataset_messages(spec: str, split: str, overrides: list[str] | None) -> tuple[Iterator[tuple[str, str]], int]:
    """``(id, text)`` of each message of a data set's ``split``, read a batch at a time where the
    source allows (as ``evaluate`` reads it), and their number. Every process of a launch reads
    the same messages (the split is seeded)."""
    from nlpgd.data import data_notes
    from nlpgd.experiments.evaluate import SPLIT_CHOICES, read_data

    if split not in SPLIT_CHOICES:
        raise NlpgdError(f"unknown split '{split}'; choose one of {', '.join(SPLIT_CHOICES)}")
    data = read_data(parse_dataset_spec(spec, overrides))
    for note in data_notes(data.summary):
        log.info("data: %s", note)
    splits = ("train", "validation", "test") if split == "all" else (split,)
    total = sum(data.summary["sizes"][s] for s in splits)
    if not total:
        raise NlpgdError(f"the {split} split of {spec} is empty; use --split all")
    return ((i, text) for s in splits for i, text, _ in data.rows(s)), total


def _messages(texts: list[str] | None) -> tuple[Iterator[tuple[int, str]], int | None]:
    """``(number, text)`` of every message to classify: the arguments (numbered from 1), or
    with '-' the non-blank lines of stdin (numbered by line), read lazily. No message at all
    is one sentence, found before any model is loaded. Also their number (None for stdin)."""
    items = list(texts or [])
    if items == ["-"]:
        source = _stdin_lines(sys.stdin)
    else:
        blank = [i for i, text in enumerate(items, start=1) if not text.strip()]
        if blank:
            raise NlpgdError(f"text {blank[0]} is empty or whitespace only: there is nothing to classify")
        source = iter(enumerate(items, start=1))
    first = next(source, None)
    if first is None:
        raise NlpgdError("no text to classify: pass messages as arguments or '-' to read stdin")
    return itertools.chain([first], source), None if items == ["-"] else len(items)


def _stdin_lines(stream) -> Iterator[tuple[int, str]]:
    """``(line number, text)`` of each non-blank line; bytes that are not UTF-8 are one sentence."""
    raw = getattr(stream, "buffer", None)
    for number, line in enumerate(raw if raw is not None else stream, start=1):
        if isinstance(line, bytes):
            try:
                line = line.decode("utf-8")
            except UnicodeDecodeError:
                raise NlpgdError(f"stdin line {number} is not UTF-8 text") from None
        if line.strip():
            yield number, line.rstrip("\r\n")


def _per_token_models(models: dict, tokens: bool, quiet: bool) -> dict:
    """The models whose per-token scores ``--tokens`` prints (none without ``--tokens``)."""
    if not tokens:
        return {}
    per_token = {k: m for k, m in models.items() if m.can("token_scores")}
    if not per_token:
        raise NlpgdError(
            f"--tokens needs a model with per-token scores (gpt2); the selected models are {', '.join(models)}"
        )
    skipped = [k for k in models if k not in per_token]
    if skipped and not quiet:
        typer.echo(f"note: no per-token scores for {', '.join(skipped)}", err=True)
    return per_token


def _stream(models: dict, messages: Iterator[tuple[int, str]], chunk_size: int, progress, sink) -> int:
    """Score ``messages`` chunk by chunk and hand each scored chunk to ``sink``; the count."""
    from nlpgd.scoring import Truncations, score_chunks

    done, truncated = 0, Truncations(models)
    try:
        with truncated:
            for chunk, p_spam in score_chunks(models, messages, chunk_size, text=lambda item: item[1]):
                truncated.count()
                if sink is not None:  # None: another process of a launch, which writes nothing
                    sink(chunk, p_spam)
                done += len(chunk)
                progress.update(len(chunk))
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as other tools do
        _silence_stdout()
        raise typer.Exit(code=141) from None
    truncated.report(done)
    return done


def _label(p: float) -> str:
    return "spam" if p > 0.5 else "ham"


def _echo(text: str) -> None:
    typer.echo(text, nl=False)


class _JsonLines:
    """One JSON object per message and model, a chunk at a time, through ``write``. The
    common row is formatted directly (``json.dumps`` of a dict per row took a third of naive
    Bayes' time); the same text as ``json.dumps`` gives (ASCII, escaped), key for key."""

    def __init__(self, write, per_token: dict, key: str = "line"):
        self.write, self.per_token, self.key = write, per_token, key

    def __call__(self, chunk: list[tuple[int, str]], p_spam: dict) -> None:
        keys = {key: json.dumps(key) for key in p_spam}
        lines = []
        for i, (number, text) in enumerate(chunk):
            where = number if type(number) is int else json.dumps(number)  # a line number or a message id
            quoted = json.dumps(text)
            for key, p in p_spam.items():
                ps = float(p[i])
                if key in self.per_token or not math.isfinite(ps):
                    row = {self.key: number, "model": key, "text": text, "label": _label(ps), "prob_spam": ps}
                    if key in self.per_token:
                        row["tokens"] = _token_rows(self.per_token[key], text)
                    lines.append(json.dumps(row) + "\n")
                    continue
                lines.append(
                    f'{{"{self.key}": {where}, "model": {keys[key]}, "text": {quoted}, '
                    f'"label": "{_label(ps)}", "prob_spam": {ps!r}}}\n'
                )
        self.write("".join(lines))


class _Table:
    """The plain table, printed a chunk at a time: its columns are sized on the first chunk
    (the text column is last, so a longer text later shifts nothing); with ``--tokens`` each
    chunk's token tables follow its rows, and the next chunk repeats the header."""

    HEADERS = ["model", "label", "P(spam)", "text"]

    def __init__(self, models: dict, per_token: dict):
        self.keys, self.per_token, self.widths = list(models), per_token, None

    def __call__(self, chunk: list[tuple[int, str]], p_spam: dict) -> None:
        rows = [
            [key, _label(p[i]), f"{p[i]:.4f}", _short(text)]
            for i, (_, text) in enumerate(chunk)
            for key, p in p_spam.items()
        ]
        if self.widths is None or self.per_token:
            self.widths = self.widths or [max(len(r[j]) for r in [self.HEADERS, *rows]) for j in range(4)]
            rows = [self.HEADERS, ["-" * w for w in self.widths], *rows]
        typer.echo("\n".join("  ".join(c.ljust(w) for c, w in zip(r, self.widths)).rstrip() for r in rows))
        for key, m in self.per_token.items():
            for _, text in chunk:
                _echo_tokens(key, m, text)


def _short(text: str) -> str:
    return text if len(text) <= 60 else text[:57] + "..."


def _silence_stdout() -> None:
    """Point stdout at /dev/null so that the interpreter's last flush does not fail again."""
    with contextlib.suppress(OSError, ValueError, AttributeError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())


def _token_rows(model, text: str) -> list[dict]:
    """``[{"token": t, "<class>": log P, ...}]`` for every scored token of ``text``."""
    per_class = {str(c): model.token_log_likelihoods(text, str(c)) for c in model.classes_}
    lengths = {len(v) for v in per_class.values()}
    if len(lengths) != 1:  # cannot happen with one shared tokenizer; never misalign silently
        raise NlpgdError(f"token counts differ between classes for {text[:40]!r}: {sorted(lengths)}")
    first = next(iter(per_class.values()))
    return [{"token": tok, **{c: float(v[i][1]) for c, v in per_class.items()}} for i, (tok, _) in enumerate(first)]


def _echo_tokens(key: str, model, text: str) -> None:
    rows = _token_rows(model, text)
    classes = [str(c) for c in model.classes_]
    low, high = ("ham", "spam") if set(classes) == {"ham", "spam"} else (classes[0], classes[-1])
    totals = {c: sum(r[c] for r in rows) for c in classes}
    typer.echo(f"\n{key}: {_short(text)}")
    typer.echo("  log P(x|y): " + ", ".join(f"{c} {totals[c]:.2f}" for c in classes) + " (nats, before the prior)")
    table = [[repr(r["token"]), *(f"{r[c]:.2f}" for c in classes), f"{r[high] - r[low]:+.2f}"] for r in rows]
    echo_table(["token", *(f"log P(.|{c})" for c in classes), f"{high} - {low}"], table)
