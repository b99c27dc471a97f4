"""`nlpgd experiment`: put one claim about the two families to the test, or all of them (`claims`)."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlpgd.claims_registry import EXPERIMENT_NAMES, EXPERIMENTS
from nlpgd.cli.common import (
    OutputDir,
    Quiet,
    Resume,
    Verbose,
    cli_errors,
    config_options,
    load_run_config,
    progress_bars,
    progress_output,
)

NAMES = ", ".join(EXPERIMENT_NAMES)
HELP = (
    "Put a claim about generative vs discriminative classifiers to the test on CONFIG's data.\n\n"
    "NAME is one of:\n\n"
    + "".join(f"- {e.name}: {e.summary}\n\n" for e in EXPERIMENTS)
    + "- claims: all of them at their default grid, with one claims page (md + html)\n\n"
    "CONFIG is an ordinary experiment config; its optional `experiment:` section sets the grid "
    "(every value has a default). Each run writes a run folder (`.partial` until finished, resumable "
    "with --resume) with results.json, report.md, report.html, verdict.md and figures.\n"
)

Workers = Annotated[
    int,
    typer.Option(
        help="Run independent cells (experiment x size x seed x model) in N local processes (one GPU each when "
        "the config runs on GPUs, else the cores divided by N as torch and BLAS threads, or OMP_NUM_THREADS when "
        "set); a cell that reads another's output waits for it. The numbers are a serial run's with the same "
        "threads per process.",
        metavar="N",
    ),
]
Ray = Annotated[
    Optional[str],
    typer.Option(
        help="Run the cells on a Ray cluster instead: auto (the cluster this machine belongs to), local (start one "
        'here) or HOST:PORT. Needs the optional extra: pip install "nlpgd\\[ray]"; the output folder must be on '
        "storage every node sees.",
        metavar="ADDRESS",
    ),
]
Config, Overrides = config_options("configs/claims.yaml", "experiment.learning_curve.sizes=[16,64]")


@cli_errors
def experiment(
    name: Annotated[
        str,
        typer.Argument(
            help=f"{NAMES}, or claims.",
            show_default=False,
        ),
    ],
    config: Config,
    set_: Overrides = None,
    output_dir: OutputDir = None,
    resume: Resume = None,
    quiet: Quiet = False,
    verbose: Verbose = False,
    workers: Workers = 1,
    ray: Ray = None,
) -> None:
    from nlpgd.experiments.claims import CLAIMS, check_name, run
    from nlpgd.experiments.claims.pool import Engine, check_workers
    from nlpgd.hardware import use_hardware

    check_workers(workers)
    check_name(name)  # an unknown name fails before the config is read
    if ray is not None:
        from nlpgd.experiments.claims.engines import check_reachable, import_ray

        import_ray()  # Ray missing, or nothing at the address: one sentence before any work
        check_reachable(ray)
    cfg = load_run_config(config, set_, output_dir, quiet)
    progress = progress_bars(cfg.progress)  # off a terminal: no bars, a plain log
    cfg = cfg.model_copy(update={"progress": progress})
    engine = Engine(workers, ray)
    with progress_output(progress), use_hardware(cfg.device, cfg.precision):  # the config's device and precision
        run_dir = run(name, cfg, resume=resume, command=shlex.join(["nlpgd", *sys.argv[1:]]), engine=engine)
    page = name == CLAIMS or cfg.corpora is not None  # several corpora: one claims page, whatever NAME
    summary = run_dir / ("claims.md" if page else "verdict.md")
    typer.echo(_verdicts(run_dir) if page else summary.read_text(encoding="utf-8").rstrip())
    typer.echo(f"report: {run_dir / ('claims.md' if page else 'report.md')} (and .html, figures/)")
    typer.echo(f"run folder: {run_dir}")


experiment.__doc__ = HELP


def _verdicts(run_dir: Path) -> str:
    """One line per claim (and corpus): its verdict, metric and key numbers; then the cross-corpus matrix."""
    from nlpgd.experiments.claims.measure import drop_key
    from nlpgd.io import read_json

    lines = []
    for c in read_json(run_dir / "results.json")["claims"]:
        wall = c.get("wall_seconds")
        metric = ", ".join(c["verdict"]["metric"]) or "n/a"
        on = f" on {c['corpus']}" if c.get("corpus") else ""
        lines.append(
            f"{c['experiment']}{on}: {c['verdict']['label']} (on {metric}; {wall or 0:.0f} s): {c['key_numbers']}"
        )
    for p in read_json(run_dir / "results.json").get("matrix", {}).get("pairs", []):
        for f in p["findings"]:  # several corpora: the cross-corpus matrix, one line per direction
            lines.append(f"cross-corpus: {f['verdict']} ({drop_key(f)})")
    return "\n".join(lines)
