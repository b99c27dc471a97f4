"""The claims experiments: each takes a claim people make about generative and discriminative
classifiers and measures it on real data, with several seeds and intervals, for matched pairs.

One module per experiment, registered in :mod:`nlpgd.claims_registry`, each with ``NAME``,
``TITLE``, ``CLAIM``, ``plan(design) -> Plan`` (the cells it needs) and
``analyse(design, store) -> ExperimentResult`` (:mod:`.result`; pure: saved predictions in,
numbers, verdict, tables and figure data out). Shared: :mod:`.plan`
(cells, pairs), :mod:`.runner` (carrying a plan out with compare's pieces), :mod:`.measure`
(intervals, findings). :func:`run` is the one entry point: one experiment, or ``claims`` (all
of them at their grid's defaults, in one run folder whose fits are shared between experiments,
with the claims page).
"""

from __future__ import annotations

import importlib
import logging
import shutil
import sys
from pathlib import Path

from nlpgd import claims_registry
from nlpgd.config import EXPERIMENT_NAMES, ExperimentConfig, ExperimentGrid
from nlpgd.data import load_splits
from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims.differs import differs_table
from nlpgd.experiments.claims.measure import Store
from nlpgd.experiments.claims.plan import MAIN, Plan, resolve_pairs
from nlpgd.experiments.claims.pool import SERIAL, TIMINGS_FILE, Engine, carry_out
from nlpgd.experiments.claims.runner import EVALS_FILE, Design, Session, load_shifts, load_targets
from nlpgd.experiments.compare import PROGRESS_FILE, Splits, interrupt_note, reopen_run, start_run
from nlpgd.io import read_json

log = logging.getLogger(__name__)
# name -> module, in the order of nlpgd/claims_registry.py (the one place an experiment is registered)
EXPERIMENTS = {e.name: importlib.import_module(e.module) for e in claims_registry.EXPERIMENTS}
CLAIMS = "claims"
NAMES = (*EXPERIMENT_NAMES, CLAIMS)


def check_name(name: str) -> list[str]:
    """The experiments ``name`` runs, or one sentence listing the names there are."""
    if name == CLAIMS:
        return list(EXPERIMENT_NAMES)
    if name not in EXPERIMENTS:
        raise NlpgdError(f"unknown experiment '{name}'; choose one of {', '.join(NAMES)}")
    return [name]


MIN_SEEDS = 2


def check_seeds(cfg: ExperimentConfig) -> None:
    """A verdict needs at least two training seeds: with one, nothing says how much training
    varies, and the interval would hold the test messages' variation only."""
    if len(cfg.seeds) < MIN_SEEDS:
        raise NlpgdError(
            f"config key 'seeds': a claims verdict needs at least {MIN_SEEDS} seeds to see how training varies, "
            f"got {len(cfg.seeds)} (the claims configs use 5, e.g. seeds: [0, 1, 2, 3, 4])"
        )


def design(cfg: ExperimentConfig, names: list[str]):
    """The data, the targets, the pairs and every plan, checked before anything is written."""
    check_seeds(cfg)
    notes: list[str] = []
    prepared = load_splits(cfg.data)
    data = {MAIN: Splits.of(prepared)}
    shifts: dict[str, dict] = {}
    if "robustness" in names:
        data.update(load_targets(cfg, cfg.experiment, notes))
        shift_data, shifts = load_shifts(cfg, cfg.experiment)
        data.update(shift_data)
    pairs, reference, pair_notes = resolve_pairs(cfg, cfg.experiment)
    d = Design(cfg, cfg.experiment, pairs, reference, data, notes + pair_notes, shifts)
    plans = {n: EXPERIMENTS[n].plan(d) for n in names}
    return d, prepared, plans


def _open(kind: str, cfg: ExperimentConfig, prepared, resume: Path | None, command: str):
    """A new run folder, or the interrupted one with its finished fits and evals."""
    if resume is None:
        return start_run(cfg, prepared, command, folder=f"{cfg.name}/{kind}", kind=kind), {}, {}, {}
    run, done = reopen_run(cfg, prepared, resume)
    if run.info.get("kind") != kind:
        raise NlpgdError(f"cannot resume {run.path} with '{kind}': it is a '{run.info.get('kind')}' run")
    extra = [read_json(run.path / f) if (run.path / f).exists() else {} for f in (EVALS_FILE, TIMINGS_FILE)]
    return run, done, extra[0], extra[1]


def _log_design(d: Design) -> None:
    for p in d.pairs:
        log.info("pair: %s", p.label)
    if d.reference:
        log.info("reference rows (outside the family verdicts): %s", ", ".join(d.reference))
    for n in d.notes:
        log.info("note: %s", n)


def run(
    kind: str, cfg: ExperimentConfig, *, resume: Path | None = None, command: str = "", engine: Engine = SERIAL
) -> Path:
    """Run experiment ``kind`` (or ``claims``: all of them) on ``cfg``, its cells on ``engine``
    (default: one after another here); returns the finished run folder. A config with
    ``corpora:`` runs on each of them (:mod:`.corpora`)."""
    names = check_name(kind)
    cfg = cfg.model_copy(update={"experiment": cfg.experiment or ExperimentGrid()})
    if cfg.corpora is not None:
        from nlpgd.experiments.claims.corpora import run_corpora

        return run_corpora(kind, names, cfg, resume=resume, command=command, engine=engine)
    d, prepared, plans = design(cfg, names)
    run_, done, evals_done, timings = _open(kind, cfg, prepared, resume, command)
    s = Session(d, run_, done, evals_done, resume=resume is not None, progress=cfg.progress)
    execute_phases(kind, s, plans, timings, command, engine=engine)
    _report(kind, names, d, run_.path, timings)
    tidy(run_.path)
    return run_.finish({"wall_seconds": timings})


def execute_phases(
    kind: str, s: Session, phases: dict[str, Plan], timings: dict, command: str, where=None, engine: Engine = SERIAL
) -> None:
    """Every phase (an experiment's plan) in order, or every cell on ``engine``
    (:func:`~.pool.carry_out`), each cell fitted once however many phases ask for it, each
    phase's wall time in ``timings`` (saved as it goes). An interruption says
    how many fits are saved and which run to resume: ``where`` = ``(run, fits saved in its other
    parts, fits in all)`` when the session is one part of a run (a corpus), else the session's."""
    from collections import ChainMap

    from tqdm.auto import tqdm

    merged = Plan()
    for p in phases.values():
        merged.merge(p)
    _log_design(s.design)
    bar = tqdm(
        total=sum(len(p) for p in phases.values()), desc=kind, unit="cell", disable=not s.progress, file=sys.stderr
    )
    resumed, saved, total = where or (s.run, {}, len(merged))
    with interrupt_note(resumed, ChainMap(s.done, saved), total, command or f"nlpgd experiment {kind} CONFIG", bar):
        carry_out(s, phases, merged, timings, bar, engine)
    bar.close()


def tidy(path: Path) -> None:
    """What only an unfinished run needs: the progress records and the fits' work folders."""
    for f in (PROGRESS_FILE, EVALS_FILE):
        (path / f).unlink(missing_ok=True)
    shutil.rmtree(path / "work", ignore_errors=True)


def context_line(d: Design) -> str:
    main = d.data[MAIN]
    n_test, n_spam = len(main.y["test"]), int(main.y["test"].sum())
    seeds = ", ".join(map(str, d.seeds))
    return (
        f"{d.cfg.name} | {d.main_name} | train {len(main.texts['train'])}, test {n_test} ({n_spam} spam) | "
        f"seed{'s' if len(d.seeds) > 1 else ''} {seeds}"
    )


def _report(kind: str, names: list[str], d: Design, path: Path, timings: dict) -> list[dict]:
    """Every experiment analysed from the run's predictions, its report and the claims page
    written; returns the results (``results.json``'s form)."""
    from nlpgd.report.claims import write_claims_page, write_experiment_report
    from nlpgd.report.verdict import apply_holm

    store = Store(path)
    context = context_line(d)
    differs = differs_table(d.cfg, store, d.pairs, d.seeds)
    results = []
    for name in names:
        r = EXPERIMENTS[name].analyse(d, store)
        r.notes = list(dict.fromkeys([*r.notes, *d.notes, *store.derived_note()]))
        r.wall_seconds = timings.get(name)
        r.pairs = [p.as_dict() for p in d.pairs]
        r.reference = d.reference
        r.tables.append(differs)
        results.append(r)
    holm = apply_holm([r.to_dict() for r in results])  # marks each primary finding (the same dicts)
    for r in results:
        r.holm = holm
    results = [r.to_dict() for r in results]  # the report layer reads results.json's form
    if kind == CLAIMS:
        write_claims_page(path, results, context, list(dict.fromkeys(d.notes)), tables=[differs])
    else:
        write_experiment_report(path, results[0], context, f"{results[0]['title']} — {context}")
    return results
