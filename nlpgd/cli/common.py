"""Shared CLI plumbing: one-line errors, dataset specs, output helpers."""

from __future__ import annotations

import functools
import logging
import os
import sys

import typer

from nlpgd.errors import NlpgdError


def cli_errors(fn):
    """Turn :class:`NlpgdError` (and Ctrl-C) into one line on stderr and a non-zero exit."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        _quiet_libraries()
        try:
            return fn(*args, **kwargs)
        except NlpgdError as exc:
            typer.echo(f"{exc.prefix}{exc}", err=True)
            raise typer.Exit(code=exc.exit_code) from None
        except KeyboardInterrupt:
            typer.echo("interrupted: partial results are left in a '.partial' folder", err=True)
            raise typer.Exit(code=130) from None

    return wrapper


def _quiet_libraries() -> None:
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    # transformers sets its logger's level from this when first imported, undoing setLevel below;
    # its warnings (e.g. the load report for a freshly initialised classifier head) are expected here
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    for name in ("datasets", "transformers", "evaluate", "huggingface_hub"):
        logging.getLogger(name).setLevel(logging.ERROR)
    logging.getLogger("nlpgd").setLevel(logging.INFO)


def parse_dataset_spec(spec: str, overrides: list[str] | None = None):
    """A data set named on the command line, as a :class:`DataConfig` (see
    :func:`nlpgd.config.dataset_config`)."""
    from nlpgd.config import dataset_config

    return dataset_config(spec, overrides)


def parse_prior(values: list[str] | None) -> dict[str, float] | None:
    """``["spam=0.3"]`` -> ``{"spam": 0.3, "ham": 0.7}``; with two classes, naming one is
    enough (the other gets the rest). The model checks the result (sum, known classes)."""
    if not values:
        return None
    from nlpgd import LABELS

    prior: dict[str, float] = {}
    for item in values:
        for part in item.split(","):
            key, sep, val = part.partition("=")
            try:
                if not sep:
                    raise ValueError
                prior[key.strip()] = float(val)
            except ValueError:
                raise NlpgdError(f"--prior takes CLASS=PROBABILITY (e.g. spam=0.5), got '{part}'") from None
            if not 0.0 <= prior[key.strip()] <= 1.0:
                raise NlpgdError(f"prior probability of class '{key.strip()}' must lie in [0, 1], got {val}")
    if len(prior) == 1 and next(iter(prior)) in LABELS:
        ((known, p),) = prior.items()
        prior[LABELS[1 - LABELS.index(known)]] = 1.0 - p
    return prior


def echo_table(headers: list[str], rows: list[list]) -> None:
    """A plain aligned table (readable in logs and pipes)."""
    cells = [[str(h) for h in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    for j, r in enumerate(cells):
        typer.echo("  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip())
        if j == 0:
            typer.echo("  ".join("-" * w for w in widths))


def stderr_is_tty() -> bool:
    return sys.stderr.isatty()
