"""A claims design being carried out in a run folder, and the one writer of its shared files.

A cell writes two kinds of files: its own (its model folder, its predictions, its generated
messages: nobody else writes them) and the run's shared tables (``metrics.json``,
``costs.json``, ``progress.json``, ``evals.json``, ``perturbations.json``), which many cells
add to. Only the process that owns the run folder writes a shared table: a cell run in a
worker process (:mod:`~nlpgd.experiments.claims.pool`) gets a :class:`Session` with an
``outbox``, where each addition is kept as a record and handed back; the parent replays the
records (:meth:`Session.apply`) into the same tables, the same way a serial run writes them.
Moved out of :mod:`~nlpgd.experiments.claims.runner` (which re-exports it).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from nlpgd.experiments.claims.plan import Cell
from nlpgd.experiments.compare import record_cell
from nlpgd.io import read_json, write_json
from nlpgd.runs import Run

if TYPE_CHECKING:
    from nlpgd.experiments.claims.runner import Design

EVALS_FILE = "evals.json"
PERTURBATIONS_FILE = "perturbations.json"
COSTS_FILE = "costs.json"


@dataclass
class Session:
    """A design being carried out in a run folder."""

    design: Design
    run: Run
    done: dict  # fit keys -> True (progress.json, as compare keeps it)
    evals_done: dict  # "<cell key>:<eval>" -> True
    resume: bool = False
    progress: bool = True
    outbox: list | None = None  # a worker's records for the parent to write (None: write here)

    def _keep(self, *record) -> bool:
        """Keep ``record`` for the parent when this session writes nothing shared."""
        if self.outbox is None:
            return False
        self.outbox.append((time.perf_counter(), *record))
        return True

    def record_fit(self, cell: Cell, metrics: dict, cost: dict) -> None:
        """A finished fit: its metrics, costs and the progress record."""
        self.done[cell.key] = True
        if not self._keep("fit", cell.name, cell.seed, metrics, cost):
            self._write_fit(cell.name, cell.seed, metrics, cost)

    def mark_eval(self, cell: Cell, name: str) -> None:
        self.evals_done[f"{cell.key}:{name}"] = True
        if not self._keep("eval", cell.key, name):
            self._write_eval(cell.key, name)

    def eval_done(self, cell: Cell, name: str) -> bool:
        return bool(self.evals_done.get(f"{cell.key}:{name}"))

    def record_eval_seconds(self, cell: Cell, seconds: float) -> None:
        """The seconds a cell's evals took (model loading included), added to its costs."""
        if not self._keep("eval_seconds", cell.name, cell.seed, seconds):
            self._write_eval_seconds(cell.name, cell.seed, seconds)

    def record_perturbation(self, key: str, effect: dict) -> None:
        """What a perturbation did to the test texts (``perturbations.json``)."""
        if not self._keep("perturbation", key, effect):
            self._write_perturbation(key, effect)

    def cost(self, cell: Cell) -> dict:
        """The recorded costs of a fitted cell (this worker's own record first)."""
        for record in reversed(self.outbox or []):
            if record[1] == "fit" and (record[2], record[3]) == (cell.name, cell.seed):
                return record[5]
        return read_json(self.run.path / COSTS_FILE)[cell.name][f"seed{cell.seed}"]

    def apply(self, records: list) -> None:
        """Write a worker's records here, in the order it made them."""
        for _, kind, *args in records:
            getattr(self, f"_write_{kind}")(*args)

    # the shared tables, written by the process that owns the run folder only

    def _write_fit(self, name: str, seed: int, metrics: dict, cost: dict) -> None:
        record_cell(self.run, name, seed, metrics, cost, self.done)

    def _write_eval(self, key: str, name: str) -> None:
        self.evals_done[f"{key}:{name}"] = True
        write_json(self.run.path / EVALS_FILE, self.evals_done)

    def _write_eval_seconds(self, name: str, seed: int, seconds: float) -> None:
        table = read_json(self.run.path / COSTS_FILE)
        cost = table[name][f"seed{seed}"]
        cost["eval_seconds"] = cost.get("eval_seconds", 0.0) + seconds
        write_json(self.run.path / COSTS_FILE, table)

    def _write_perturbation(self, key: str, effect: dict) -> None:
        path = self.run.path / PERTURBATIONS_FILE
        table = read_json(path) if path.exists() else {}
        table[key] = effect
        write_json(path, table)
