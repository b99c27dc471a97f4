"""`nlpgd compare`: train and evaluate every configured model on one split."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from nlpgd.cli.common import (
    OutputDir,
    Quiet,
    Resume,
    Verbose,
    cli_errors,
    command_finished,
    config_options,
    is_first_process,
    load_run_config,
    progress_bars,
    progress_output,
)

Config, Overrides = config_options("configs/default.yaml", "models.naive_bayes.alpha=0.5")


@cli_errors
def compare(
    config: Config,
    set_: Overrides = None,
    resume: Resume = None,
    output_dir: OutputDir = None,
    quiet: Quiet = False,
    as_json: Annotated[
        bool,
        typer.Option("--json", help="Print one JSON object (the run folder and its metrics) instead of the summary."),
    ] = False,
    verbose: Verbose = False,
) -> None:
    """Train every model in CONFIG on the same split and write a run folder with a report.

    Under ``torchrun --nproc_per_node N -m nlpgd compare CONFIG`` (or ``accelerate launch -m
    nlpgd compare CONFIG``) the neural models train across the N processes; the first one
    writes the run folder."""
    from nlpgd.distributed import finish_launch
    from nlpgd.experiments.compare import compare as run_compare

    cfg = load_run_config(config, set_, output_dir, quiet)
    progress = progress_bars(cfg.progress)
    with progress_output(progress):
        run_dir = run_compare(cfg, resume=resume, command=shlex.join(["nlpgd", *sys.argv[1:]]), progress=progress)
    finish_launch()
    command_finished()  # the run is saved: a Ctrl-C from here on must not turn it into a failure
    if not is_first_process():
        return
    if as_json:
        typer.echo(json.dumps(_json_summary(run_dir), indent=2))
        return
    typer.echo(_headline(run_dir / "report.md"))
    typer.echo(f"full report: {run_dir / 'report.md'} (and report.html, figures/)")
    typer.echo(f"run folder: {run_dir}")


def _json_summary(run_dir: Path) -> dict:
    """What ``--json`` prints: where the run is and its metrics (``metrics.json``:
    model -> seed -> split -> metric)."""
    from nlpgd.io import read_json

    info = read_json(run_dir / "run.json")
    return {
        "run_dir": str(run_dir),
        "experiment": info.get("experiment"),
        "run_id": info.get("run_id"),
        "report": str(run_dir / "report.md"),
        "metrics": read_json(run_dir / "metrics.json"),
    }


def _headline(report: Path) -> str:
    """The report's opening and its first table (the rest is in the files)."""
    lines = report.read_text(encoding="utf-8").splitlines()
    out, headings = [], 0
    for line in lines:
        if line.startswith("## "):
            headings += 1
            if headings > 1:
                break
        out.append(line)
    return "\n".join(out).rstrip() + "\n"
