"""`nlpgd evaluate`: score a run's saved models on another data set (e.g. cross-domain)."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlpgd import CHUNK_SIZE
from nlpgd.cli import common
from nlpgd.cli.common import Quiet, Verbose, cli_errors
from nlpgd.errors import NlpgdError

AsJson = Annotated[
    bool, typer.Option("--json", help="Print one JSON object (where the results went and each model's metrics).")
]
ChunkSize = Annotated[
    int,
    typer.Option(
        "--chunk-size", help="Messages scored and written together: memory depends on this, not on the data set's size."
    ),
]

ModelName = Annotated[Optional[str], typer.Option("--model", help="Only this model (default: every model in the run).")]


@cli_errors
def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder.", show_default=False)],
    dataset: Annotated[
        str,
        typer.Option(
            help="Data set: a YAML file or SOURCE:LOCATION (uci_sms:FILE, csv:FILE, hub:NAME, spamassassin).",
            show_default=False,
        ),
    ],
    split: Annotated[str, typer.Option(help="Which split of that data set: train, validation, test or all.")] = "test",
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="Override a data setting (repeatable).")] = None,
    name: Annotated[Optional[str], typer.Option(help="Name of the evaluation folder (default: from the spec).")] = None,
    prior: Annotated[
        Optional[list[str]],
        typer.Option(help="Class prior for the generative models, e.g. --prior spam=0.5 (label shift); repeatable."),
    ] = None,
    quiet: Quiet = False,
    as_json: AsJson = False,
    chunk_size: ChunkSize = CHUNK_SIZE,
    model: ModelName = None,
    verbose: Verbose = False,
) -> None:
    """Score every saved model on DATASET; results go to RUN_DIR/evaluations/NAME/.

    Messages are scored and written a chunk at a time (--chunk-size). A local file (csv, tsv,
    jsonl, parquet, one uci_sms file, or one file per split) or a hub data set is also read a
    batch at a time, with any --split and de-duplication on or off; spamassassin, data.id_column,
    several uci_sms files and max_train/eval_samples are read whole. Under ``torchrun
    --nproc_per_node N -m nlpgd evaluate ...`` (or ``accelerate launch``) the N processes
    share every chunk and the first one writes."""
    from nlpgd.distributed import finish_launch
    from nlpgd.experiments.evaluate import evaluate_run

    if chunk_size < 1:
        raise NlpgdError(f"--chunk-size must be at least 1, got {chunk_size}")
    cfg = common.parse_dataset_spec(dataset, set_)
    if name is None:  # an explicit --name "" is checked (and refused) like any other name
        name = re.sub(r"[^A-Za-z0-9._-]+", "_", dataset).strip("_")[:80] + f"-{split}"
    with common.rate_progress("evaluating", wanted=not quiet) as progress:
        out, rows = evaluate_run(
            run_dir,
            cfg,
            split=split,
            name=name,
            prior=common.parse_prior(prior),
            chunk_size=chunk_size,
            on_chunk=progress.update,
            model=model,
        )
    finish_launch()
    if not common.is_first_process():
        return
    _print_results(rows, out, as_json, {"run_dir": str(run_dir), "dataset": dataset, "split": split})


def _print_results(rows: dict, out: Path, as_json: bool, summary: dict) -> None:
    notes = sorted({n for m in rows.values() for n in m.get("notes", ())})
    if as_json:  # stdout holds the JSON object alone; notes go to stderr as always
        for note in notes:
            typer.echo(f"note: {note}", err=True)
        summary = {"run_dir": summary["run_dir"], "results": str(out), **summary, "metrics": rows}
        typer.echo(json.dumps(summary, indent=2))
        return
    common.echo_table(
        ["model", "n", "accuracy", "f1", "roc_auc", "log_loss"],
        [
            [
                k,
                m["n"],
                f"{m['accuracy']:.4f}",
                f"{m['f1']:.4f}",
                "n/a" if m["roc_auc"] is None else f"{m['roc_auc']:.4f}",
                f"{m['log_loss']:.4f}",
            ]
            for k, m in rows.items()
        ],
    )
    for note in notes:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"results: {out}")
