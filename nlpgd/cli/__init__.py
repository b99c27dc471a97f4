"""The nlpgd command line: one small module per command, each calling one library function."""

from __future__ import annotations

import os

# Before torch is imported anywhere: idle OpenMP threads sleep instead of spinning (on a
# 2-core machine spinning threads steal the cores the tokenizer and data loader need),
# and the Rust tokenizers do not fork-warn under the Trainer's data loader.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from typing import Annotated  # noqa: E402

import typer  # noqa: E402

from nlpgd.cli.classify import classify
from nlpgd.cli.common import GLOBAL_FLAGS, Quiet, Verbose  # noqa: E402
from nlpgd.cli.compare import compare
from nlpgd.cli.data import data
from nlpgd.cli.evaluate import evaluate
from nlpgd.cli.experiment import experiment
from nlpgd.cli.fetch import fetch
from nlpgd.cli.report import report

app = typer.Typer(
    name="nlpgd",
    help="Generative vs discriminative text classifiers, side by side, on spam detection.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _print_version(value: bool) -> None:
    if value:
        import nlpgd

        typer.echo(f"nlpgd {nlpgd.__version__}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool, typer.Option("--version", callback=_print_version, is_eager=True, help="Print nlpgd's version and exit.")
    ] = False,
    quiet: Quiet = False,
    verbose: Verbose = False,
) -> None:
    # `nlpgd --quiet CMD` is `nlpgd CMD --quiet`, for every command (likewise --verbose)
    GLOBAL_FLAGS.update(quiet=quiet, verbose=verbose)


app.command("data")(data)
app.command("compare")(compare)
app.command("classify")(classify)
app.command("evaluate")(evaluate)
app.command("experiment")(experiment)
app.command("report")(report)
app.command("fetch")(fetch)

try:  # the generator command lives with the GPT-2 arm
    from nlpgd.cli.generate import generate

    app.command("generate")(generate)
except ImportError:  # pragma: no cover
    pass


def main() -> None:
    """The ``nlpgd`` console script, ``python cli.py`` and ``python -m nlpgd`` (torchrun, accelerate)."""
    from nlpgd.cli import common

    common.IN_MAIN = True
    app()
