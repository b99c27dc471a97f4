"""Carrying out a claims run's cells one after another, on a local process pool
(``--workers N``) or on a Ray cluster (``--ray ADDRESS``).

In parallel a *task* is one cell of the merged plan: its fit (unless it is saved) and every
eval of it not yet written, in one process, so a model is evaluated where it was fitted. A task
waits for the cells whose outputs it reads (:func:`needs`: augmentation's cells train on
their generator cell's samples). Cells that two experiments ask for are one cell of the merged
plan (calibration and the learning curve share their fits), so they are one task. The stack of
a claims run cross-fits and fits its members inside its own cell (its fit context carries no
other cell's models), so it reads no other cell's output and waits for none.

A worker writes its own cell's files only (model, predictions, generated messages, each through
:mod:`nlpgd.io`'s atomic writers) and hands back the records of the run's shared tables
(:class:`~nlpgd.experiments.claims.session.Session`'s outbox); the parent writes them, deletes
finished models and keeps the timings, so the run folder, the finished-cell record and
``--resume`` are the same whatever ran the cells. Seeds are set per fit, so the numbers are
those of a serial run. An experiment's ``wall_seconds`` is then the sum of the seconds its cells
and evals took in the workers (a shared fit counted for the first experiment that asks for it,
as a serial run counts it).
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import FIRST_COMPLETED, Future, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims.plan import Cell, Plan
from nlpgd.experiments.claims.runner import Design, Session, cleanup, evaluate_cell, execute, fit_cell
from nlpgd.hardware import use_hardware
from nlpgd.io import write_json
from nlpgd.runs import Run

log = logging.getLogger(__name__)
RAY_EXTRA = 'pip install "nlpgd[ray]"'
TIMINGS_FILE = "timings.json"


@dataclass(frozen=True)
class Engine:
    """How the cells are run: ``workers`` local processes, or on the Ray cluster at ``ray``."""

    workers: int = 1
    ray: str | None = None

    @property
    def serial(self) -> bool:
        return self.ray is None and self.workers == 1


SERIAL = Engine()


@dataclass(frozen=True)
class Task:
    """One cell for a worker: fit it unless ``fitted``, then write ``evals``."""

    cell: Cell
    fitted: bool
    evals: tuple[str, ...]


@dataclass
class Outcome:
    key: str
    records: list  # the shared-table records, for Session.apply
    units: list[tuple[str, float]]  # ("fit" or an eval's name, seconds)


def needs(cell: Cell, plan: Plan) -> set[str]:
    """The keys of the cells whose outputs ``cell`` reads: its generator's, when it trains on
    generated messages."""
    generator = cell.generator_key()
    return {generator} if generator is not None and generator in plan.cells else set()


def check_workers(workers: int) -> None:
    if workers < 1:
        raise NlpgdError(f"--workers must be at least 1 (the number of processes that fit cells), got {workers}")


def carry_out(s: Session, plans: dict[str, Plan], merged: Plan, timings: dict, bar, engine: Engine) -> None:
    """Every experiment's cells: serially, phase by phase, or in parallel on ``engine``."""
    if engine.serial:
        for name in plans:
            t0 = time.perf_counter()
            execute(s, plans[name], merged, bar)
            timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
            write_json(s.run.path / TIMINGS_FILE, timings)
        return
    from nlpgd.experiments.claims.engines import start

    pool = start(engine, s.design, s.run.path, s.resume)
    try:
        _parallel(s, plans, merged, timings, bar, pool)
    except BaseException:
        pool.close(cancel=True)
        raise
    pool.close()
    cleanup(s, merged)  # the folders left empty while workers were making theirs
    _prune(s.run.path / "models")


def tasks_of(s: Session, plans: dict[str, Plan], merged: Plan) -> dict[str, Task]:
    """Every cell of the run, in the serial run's order, with what is left to do of it."""
    keys = dict.fromkeys(own.key for p in plans.values() for own in p.ordered())
    out = {}
    for key in keys:
        cell = merged.cells[key]
        out[key] = Task(cell, bool(s.done.get(key)), tuple(n for n in cell.evals if not s.eval_done(cell, n)))
    return out


def _parallel(s: Session, plans: dict[str, Plan], merged: Plan, timings: dict, bar, pool) -> None:
    """Submit each task once the cells it reads are finished; the parent writes what each
    returns. After a failure nothing new starts, the running tasks' results are kept, and the
    first error is raised."""
    tasks = tasks_of(s, plans, merged)
    finished = {k for k, t in tasks.items() if t.fitted and not t.evals}
    _advance(bar, plans, finished)
    pending = [k for k in tasks if k not in finished]
    running: dict[Future, str] = {}
    error: BaseException | None = None
    while pending or running:
        ready = [k for k in pending if needs(tasks[k].cell, merged) <= finished] if error is None else []
        for key in ready[: max(0, pool.limit - len(running))]:
            pending.remove(key)
            running[pool.submit(tasks[key])] = key
        if not running:
            break
        for future in wait(running, return_when=FIRST_COMPLETED)[0]:
            key = running.pop(future)
            try:
                outcome = future.result()
            except BrokenProcessPool:
                error = error or NlpgdError(f"a worker process died while running {key} (out of memory?)")
                continue
            except Exception as exc:  # noqa: BLE001 (the first one is raised once the running tasks are in)
                error = error or exc
                continue
            s.apply(outcome.records)
            _charge(timings, plans, key, outcome.units)
            write_json(s.run.path / TIMINGS_FILE, timings)
            cleanup(s, merged, prune=False)
            finished.add(key)
            _advance(bar, plans, {key})
    if error is not None:
        raise error
    if pending:
        raise RuntimeError(f"cells left waiting for inputs that never came: {', '.join(pending)}")


def _advance(bar, plans: dict[str, Plan], keys: set[str]) -> None:
    """The progress bar counts a cell once for each experiment that asks for it, as serially."""
    if bar is not None:
        bar.update(sum(key in p.cells for key in keys for p in plans.values()))


def _charge(timings: dict, plans: dict[str, Plan], key: str, units: list[tuple[str, float]]) -> None:
    """Each unit's seconds to the first experiment that asks for it (as the serial phases do)."""
    for unit, seconds in units:
        for name, p in plans.items():
            if key in p.cells and (unit == "fit" or unit in p.cells[key].evals):
                timings[name] = timings.get(name, 0.0) + seconds
                break


def _prune(root: Path) -> None:
    """Remove the empty folders under ``root`` (and ``root`` when empty), deepest first."""
    if not root.is_dir():
        return
    for top, _, _ in sorted(os.walk(root), key=lambda w: -len(w[0])):
        try:
            os.rmdir(top)
        except OSError:
            pass


# -- in the worker ------------------------------------------------------------------------


def run_task(design: Design, run_path: str, resume: bool, task: Task) -> Outcome:
    """One cell in a worker: fit unless saved, then its evals; the shared tables' records are
    returned, never written here."""
    cell = task.cell
    s = Session(design, Run(Path(run_path)), {cell.key: True} if task.fitted else {}, {}, resume, False, outbox=[])
    t0 = time.perf_counter()
    with use_hardware(design.cfg.device, design.cfg.precision):
        fit_cell(s, cell)
        evaluate_cell(s, cell, list(task.evals))
    units, before = [], t0
    for stamp, kind, *args in s.outbox:
        if kind in ("fit", "eval"):
            units.append(("fit" if kind == "fit" else args[1], stamp - before))
            before = stamp
    return Outcome(cell.key, s.outbox, units)
