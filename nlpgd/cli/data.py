"""`nlpgd data`: inspect a data set the way compare will see it."""

from __future__ import annotations

import json
from typing import Annotated, Optional

import typer

from nlpgd.cli.common import Quiet, Verbose, cli_errors, echo_table, parse_dataset_spec, progress_bars


@cli_errors
def data(
    spec: Annotated[
        str,
        typer.Argument(
            help="A config YAML (its data section is used) or SOURCE:LOCATION, e.g. "
            "uci_sms:SMSSpamCollection, csv:mail.csv, hub:ucirvine/sms_spam, spamassassin.",
            show_default=False,
        ),
    ],
    set_: Annotated[
        Optional[list[str]],
        typer.Option("--set", help="Override a data setting, e.g. --set text_column=sms (repeatable)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the full summary as JSON.")] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
    groups: Annotated[
        bool,
        typer.Option("--groups", help="SpamAssassin: list its groups (class, messages, what each is) and stop."),
    ] = False,
) -> None:
    """Show sizes, class balance, text lengths and what cleaning removed."""
    progress_bars(not quiet)  # off a terminal or with --quiet: the data layer draws no bars either
    from nlpgd.data import data_notes, describe_where, load_splits

    cfg = parse_dataset_spec(spec, set_)
    if groups:
        _list_groups(cfg, as_json)
        return
    prepared = load_splits(cfg)
    s = prepared.summary
    if as_json:
        typer.echo(json.dumps(s, indent=2))
        return
    typer.echo(f"source: {s['source']} ({describe_where(s['where'])})")
    typer.echo(
        f"raw rows: {sum(s['raw_rows'].values())}; empty texts dropped: {s['empty_dropped']}; "
        f"exact duplicates removed: {s['duplicates_removed']}"
        + ("; splits as given by the source" if s.get("splits_given") else "")
    )
    if s.get("splits_given"):
        typer.echo(f"test texts that also appear in train: {s.get('test_texts_also_in_train', 0)}")
    for note in data_notes(s):
        typer.echo(f"note: {note}")
    rows = _split_rows(s)
    echo_table(["split", "messages", "ham", "spam", "spam share", "median words", "p95 words", "max words"], rows)


def _list_groups(cfg, as_json: bool) -> None:
    """The SpamAssassin groups: class, messages, distinct texts, what each is."""
    from nlpgd.data.spamassassin import spamassassin_groups
    from nlpgd.errors import NlpgdError

    if cfg.source != "spamassassin":
        raise NlpgdError(f"--groups lists the SpamAssassin groups; data source '{cfg.source}' has none")
    table = spamassassin_groups(cfg.path)
    if as_json:
        typer.echo(json.dumps(table, indent=2))
        return
    rows = [[g["group"], g["label"], g["messages"], g["distinct_texts"], g["what"]] for g in table]
    echo_table(["group", "class", "messages", "distinct texts", "what it is"], rows)
    typer.echo("select some with e.g. spamassassin:groups=easy_ham_1+spam_1 (or data.groups in a config)")


def _split_rows(s: dict) -> list[list]:
    """One table row per split: size, class counts, spam share, word lengths."""
    rows = []
    for split in ("train", "validation", "test"):
        c = s["class_counts"][split]
        n = s["sizes"][split]
        w = s["lengths"][split].get("words", {})
        rows.append(
            [
                split,
                n,
                c.get("ham", 0),
                c.get("spam", 0),
                f"{c.get('spam', 0) / max(n, 1):.1%}",
                f"{w.get('median', 0):.0f}",
                f"{w.get('p95', 0):.0f}",
                w.get("max", 0),
            ]
        )
    return rows
