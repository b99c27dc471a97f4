"""`nlpgd classify`: label texts with the models saved in a run folder."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlpgd.cli.common import Quiet, Verbose, cli_errors, echo_table, parse_prior, progress_bars
from nlpgd.errors import NlpgdError


@cli_errors
def classify(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished run folder (outputs/<experiment>/<run-id>).", show_default=False)
    ],
    texts: Annotated[
        Optional[list[str]],
        typer.Argument(help="Messages to classify; '-' reads one per line from stdin.", show_default=False),
    ] = None,
    model: Annotated[Optional[str], typer.Option(help="Only this model (default: every model in the run).")] = None,
    seed: Annotated[Optional[int], typer.Option(help="Only the model trained with this seed.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per text and model.")] = False,
    prior: Annotated[
        Optional[list[str]],
        typer.Option(help="Class prior for the generative models, e.g. --prior spam=0.5 (label shift); repeatable."),
    ] = None,
    tokens: Annotated[
        bool,
        typer.Option(
            "--tokens",
            help="Also print each token's log P(token | prefix, class) under every class "
            "(GPT-2 models): which words pull a message towards spam.",
        ),
    ] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    """Print each model's label and spam probability for each text."""
    from nlpgd.scoring import load_run_models, spam_column

    items = list(texts or [])
    if items == ["-"]:
        items = [line.rstrip("\n") for line in sys.stdin if line.strip()]
    if not items:
        raise NlpgdError("no text to classify: pass messages as arguments or '-' to read stdin")
    blank = [i for i, text in enumerate(items, start=1) if not text.strip()]
    if blank:
        raise NlpgdError(f"text {blank[0]} is empty or whitespace only: there is nothing to classify")
    prior_map = parse_prior(prior)
    models = load_run_models(run_dir, model, seed, progress=progress_bars())
    from nlpgd.models.base import apply_prior

    unchanged = apply_prior(models, prior_map)
    if unchanged:
        typer.echo(f"note: --prior applies to generative models only; unchanged: {', '.join(unchanged)}", err=True)
    per_token = {k: m for k, m in models.items() if m.can("token_scores")}
    if tokens:
        if not per_token:
            raise NlpgdError(
                f"--tokens needs a model with per-token scores (gpt2); the selected models are {', '.join(models)}"
            )
        skipped = [k for k in models if k not in per_token]
        if skipped and not as_json:
            typer.echo(f"note: no per-token scores for {', '.join(skipped)}", err=True)
    rows = []
    for key, m in models.items():
        p = m.predict_proba(items)[:, spam_column(m)]
        for text, ps in zip(items, p):
            label = "spam" if ps > 0.5 else "ham"
            if as_json:
                row = {"model": key, "text": text, "label": label, "prob_spam": float(ps)}
                if tokens and key in per_token:
                    row["tokens"] = _token_rows(m, text)
                typer.echo(json.dumps(row))
            rows.append([key, label, f"{ps:.4f}", text if len(text) <= 60 else text[:57] + "..."])
    if not as_json:
        echo_table(["model", "label", "P(spam)", "text"], rows)
        if tokens:
            for key, m in per_token.items():
                for text in items:
                    _echo_tokens(key, m, text)


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
    typer.echo(f"\n{key}: {text if len(text) <= 60 else text[:57] + '...'}")
    typer.echo("  log P(x|y): " + ", ".join(f"{c} {totals[c]:.2f}" for c in classes) + " (nats, before the prior)")
    table = [[repr(r["token"]), *(f"{r[c]:.2f}" for c in classes), f"{r[high] - r[low]:+.2f}"] for r in rows]
    echo_table(["token", *(f"log P(.|{c})" for c in classes), f"{high} - {low}"], table)
