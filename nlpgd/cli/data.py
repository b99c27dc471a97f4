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
) -> None:
    """Show sizes, class balance, text lengths and what cleaning removed."""
    progress_bars(not quiet)  # off a terminal or with --quiet: the data layer draws no bars either
    from nlpgd.data import data_notes, describe_where, load_splits

    cfg = parse_dataset_spec(spec, set_)
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
    echo_table(["split", "messages", "ham", "spam", "spam share", "median words", "p95 words", "max words"], rows)
