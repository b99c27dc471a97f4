"""`nlpgd classify`: label texts with the models saved in a run folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlpgd.cli.common import cli_errors, echo_table, parse_prior
from nlpgd.errors import NlpgdError


@cli_errors
def classify(
    run_dir: Annotated[Path, typer.Argument(help="A finished run folder (outputs/<experiment>/<run-id>).", show_default=False)],
    texts: Annotated[Optional[list[str]], typer.Argument(help="Messages to classify; '-' reads one per line from stdin.", show_default=False)] = None,
    model: Annotated[Optional[str], typer.Option(help="Only this model (default: every model in the run).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Only the model trained with this seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per text and model.")] = False,
    prior: Annotated[
        Optional[list[str]],
        typer.Option(help="Class prior for the generative models, e.g. --prior spam=0.5 (label shift); repeatable."),
    ] = None,
) -> None:
    """Print each model's label and spam probability for each text."""
    from nlpgd.experiments.compare import load_run_models, spam_column

    items = list(texts or [])
    if items == ["-"]:
        items = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not items:
        raise NlpgdError("no text to classify: pass messages as arguments or '-' to read stdin")
    prior_map = parse_prior(prior)
    models = load_run_models(run_dir, model, seed)
    from nlpgd.models.base import apply_prior

    unchanged = apply_prior(models, prior_map)
    if unchanged:
        typer.echo(f"note: --prior applies to generative models only; unchanged: {', '.join(unchanged)}", err=True)
    rows = []
    for key, m in models.items():
        p = m.predict_proba(items)[:, spam_column(m)]
        for text, ps in zip(items, p):
            label = "spam" if ps > 0.5 else "ham"
            if as_json:
                typer.echo(json.dumps({"model": key, "text": text, "label": label, "prob_spam": float(ps)}))
            rows.append([key, label, f"{ps:.4f}", text if len(text) <= 60 else text[:57] + "..."])
    if not as_json:
        echo_table(["model", "label", "P(spam)", "text"], rows)
