"""`nlpgd report`: rebuild a run's report from its saved predictions (no model is loaded),
or put several runs side by side."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from nlpgd.cli.common import Verbose, cli_errors


@cli_errors
def report(
    run_dirs: Annotated[
        list[Path], typer.Argument(help="One or more finished run folders.", show_default=False, metavar="RUN_DIR")
    ],
    out: Annotated[
        Optional[Path],
        typer.Option(help="Folder for the report (required with several runs; default with one: the run folder)."),
    ] = None,
    resamples: Annotated[int, typer.Option(help="Bootstrap resamples of the test messages.", min=100)] = 1000,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Print only where the files went.")] = False,
    verbose: Verbose = False,
) -> None:
    """Rebuild report.md, report.html, results.json and figures/ from saved predictions alone.

    With one run the files are rewritten in the run folder (or --out); with several runs a combined
    comparison goes into --out.
    """
    from nlpgd.errors import NlpgdError
    from nlpgd.report import write_comparison, write_report

    if len(run_dirs) > 1 and out is None:
        raise NlpgdError("several run folders need --out DIR for the combined report")
    if len(run_dirs) == 1:
        md = write_report(run_dirs[0], out_dir=out, n_resamples=resamples)
    else:
        md = write_comparison(run_dirs, out, n_resamples=resamples)
    if not quiet:
        typer.echo(md.read_text())
    typer.echo(f"report: {md}")
    typer.echo(f"html: {md.with_name('report.html')}")
    typer.echo(f"results: {md.with_name('results.json')}")
