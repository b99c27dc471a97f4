"""`nlpgd experiment --workers N` and `--ray ADDRESS`: the claims cells in parallel give the
serial run's numbers, cells wait for the cells they read, only the parent writes the shared
tables, a resume works whatever the engine, and bad input is one sentence with exit 2."""

import importlib.util
import json
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import test_claims as C
from test_corpora import corpora  # noqa: F401 (the fixture: two tiny corpora)

from nlpgd.config import EXPERIMENT_NAMES, ExperimentGrid
from nlpgd.experiments.claims import plan as P
from nlpgd.experiments.claims import pool
from nlpgd.experiments.claims.engines import check_reachable, cores, worker_threads
from nlpgd.experiments.claims.runner import Design, Session
from nlpgd.runs import Run

from conftest import TINY_CFG, TINY_CSV, invoke, one_sentence

HAS_RAY = importlib.util.find_spec("ray") is not None
NO_RAY = "Ray is not installed here (an optional extra: pip install 'nlpgd[ray]'), so the Ray path is not run"


def test_workers_below_one_is_one_sentence_and_exit_2(tmp_path):
    out = tmp_path / "out"
    r = invoke("experiment", "learning-curve", C.linear_config(tmp_path), "--output-dir", out, "--workers", "0")
    one_sentence(r, "--workers must be at least 1", "got 0")
    assert not out.exists()


def test_ray_without_ray_installed_names_the_extra(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # what `import ray` does where it is not installed
    out = tmp_path / "out"
    r = invoke("experiment", "learning-curve", C.linear_config(tmp_path), "--output-dir", out, "--ray", "auto")
    one_sentence(r, "--ray needs Ray", 'pip install "nlpgd[ray]"')
    assert not out.exists()


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # free once closed: nothing listens there


SILENT = pytest.param("10.255.255.1:6379", marks=pytest.mark.skipif(not HAS_RAY, reason=NO_RAY))


@pytest.mark.parametrize("address", ["127.0.0.1:{port}", "ray://127.0.0.1:{port}", SILENT])
def test_an_unreachable_ray_address_fails_within_10_seconds(address):
    address = address.format(port=_closed_port())
    t0 = time.monotonic()
    with pytest.raises(Exception, match=f"cannot reach the Ray cluster at {address}") as caught:
        check_reachable(address)
    assert time.monotonic() - t0 < 10 and "\n" not in str(caught.value)


@pytest.mark.skipif(not HAS_RAY, reason=NO_RAY)
def test_an_unreachable_ray_address_is_one_sentence_from_the_cli(tmp_path):
    out, t0 = tmp_path / "out", time.monotonic()
    address = f"127.0.0.1:{_closed_port()}"
    r = invoke("experiment", "learning-curve", C.linear_config(tmp_path), "--output-dir", out, "--ray", address)
    one_sentence(r, f"cannot reach the Ray cluster at {address}")
    assert time.monotonic() - t0 < 10 and not out.exists()


# -- one writer per file -------------------------------------------------------------------


def _record_everything(s: Session) -> None:
    cell = P.Cell(P.size_set(16), "logreg", 0)
    s.record_fit(cell, {"test": {"f1": 0.5}}, {"train_spam_share": 0.25})
    assert s.cost(cell)["train_spam_share"] == 0.25  # a worker reads its own record back (label shift)
    s.mark_eval(cell, "on-main")
    s.record_eval_seconds(cell, 1.5)
    s.record_perturbation("dropout-0.5/seed0", {"changed": 3})


def test_a_worker_writes_no_shared_table_and_the_parent_writes_what_a_serial_run_would(tmp_path):
    serial, worker, parent = (tmp_path / n for n in ("serial", "worker", "parent"))
    for folder in (serial, worker, parent):
        folder.mkdir()
    _record_everything(Session(None, Run(serial), {}, {}))
    w = Session(None, Run(worker), {}, {}, outbox=[])
    _record_everything(w)
    assert list(worker.iterdir()) == []  # the worker wrote nothing shared
    Session(None, Run(parent), {}, {}).apply(w.outbox)
    assert _files(parent) == _files(serial) and len(_files(serial)) == 5
    for f in _files(serial):
        assert json.loads((parent / f).read_text()) == json.loads((serial / f).read_text()), f


# -- the scheduler, with threads standing in for worker processes ---------------------------


class ThreadPool:
    """A stand-in engine: each task sleeps a little and is logged as started and finished."""

    def __init__(self, limit: int):
        self.limit, self.events, self.lock = limit, [], threading.Lock()
        self.executor = ThreadPoolExecutor(limit)

    def submit(self, task):
        return self.executor.submit(self._run, task)

    def _run(self, task):
        with self.lock:
            self.events.append(("start", task.cell.key))
        time.sleep(0.05)
        with self.lock:
            self.events.append(("end", task.cell.key))
        return pool.Outcome(task.cell.key, [], [("fit", 1.0)])


def _augmentation_plan() -> dict[str, P.Plan]:
    """A generator and a classifier on 32 real messages per seed, and classifiers trained on the
    generator's samples (with and without the real ones)."""
    real, synthetic = P.Plan(), P.Plan()
    for seed in (0, 1):
        real.add(P.size_set(32), "naive_bayes", seed, [P.GENERATE])
        real.add(P.size_set(32), "logreg", seed)
        for mode in ("mix", "syn"):
            synthetic.add(P.synthetic_set(32, mode, "naive_bayes"), "logreg", seed)
    return {"learning-curve": real, "augmentation": synthetic}


def test_cells_wait_for_the_cells_whose_output_they_read(tmp_path):
    plans = _augmentation_plan()
    merged = P.Plan()
    for p in plans.values():
        merged.merge(p)
    design = Design(None, ExperimentGrid(keep_models=True), [], [], {})
    s = Session(design, Run(tmp_path), {}, {})
    engine, timings = ThreadPool(limit=3), {}
    pool._parallel(s, plans, merged, timings, None, engine)
    events = engine.events
    assert sorted(k for e, k in events if e == "end") == sorted(merged.cells)  # each cell once
    for key, cell in merged.cells.items():
        for needed in pool.needs(cell, merged):
            assert events.index(("end", needed)) < events.index(("start", key)), (needed, key)
    assert any(pool.needs(c, merged) for c in merged.cells.values())  # the test has something to wait for
    # three in flight at most, and more than one at once (it is parallel)
    flight, peak = 0, 0
    for e, _ in events:
        flight += 1 if e == "start" else -1
        peak = max(peak, flight)
    assert peak == 3
    assert timings == {"learning-curve": 4.0, "augmentation": 4.0}  # each fit counted once, where it is asked


# -- end to end: the serial numbers ------------------------------------------------------


@pytest.mark.slow
def test_two_workers_give_the_serial_numbers_and_run_folder(tmp_path):
    """Augmentation on the linear pair: its synthetic cells read their generator's samples."""
    cfg = C.linear_config(tmp_path)
    serial = C.run_experiment("augmentation", cfg, tmp_path / "serial")
    pooled = C.run_experiment("augmentation", cfg, tmp_path / "pooled", "--workers", "2")
    assert C._numbers(pooled) == C._numbers(serial)
    assert _files(pooled) == _files(serial)
    costs = json.loads((pooled / "costs.json").read_text())
    assert costs["n32/naive_bayes"]["seed1"]["eval_seconds"] > 0  # the generator's sampling, recorded by the parent
    assert json.loads((pooled / "run.json").read_text())["wall_seconds"]["augmentation"] > 0


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.mark.slow
def test_a_serial_run_interrupted_resumes_on_two_workers(tmp_path, monkeypatch):
    from nlpgd.experiments.claims import runner

    cfg = C.linear_config(tmp_path)
    whole = C.run_experiment("robustness", cfg, tmp_path / "whole")
    real_eval, calls = runner.evaluate_cell, {"n": 0}

    def flaky(s, cell, names):
        calls["n"] += 1
        if calls["n"] == 3:  # fits and evals of two cells are written, the third cell's fit is
            raise KeyboardInterrupt
        return real_eval(s, cell, names)

    monkeypatch.setattr(runner, "evaluate_cell", flaky)
    sets = [a for s in C.TRIM for a in ("--set", s)]
    r = invoke("experiment", "robustness", cfg, "--output-dir", tmp_path / "out", "--quiet", *sets)
    assert r.exit_code == 130, r.output
    partial = next((tmp_path / "out" / "claims-test" / "robustness").glob("*.partial"))
    assert json.loads((partial / "evals.json").read_text())  # some evals were written before the stop
    monkeypatch.setattr(runner, "evaluate_cell", real_eval)
    resumed = C.run_experiment("robustness", cfg, tmp_path / "out", "--resume", partial, "--workers", "2")
    assert C._numbers(resumed) == C._numbers(whole)
    assert json.loads((resumed / "perturbations.json").read_text()) == json.loads(
        (whole / "perturbations.json").read_text()
    )


@pytest.mark.slow
def test_two_corpora_on_two_workers_give_the_serial_numbers(corpora, tmp_path):  # noqa: F811
    """With ``corpora:`` each corpus's cells run on the workers in turn; the page is the serial one."""
    serial = C.run_experiment("robustness", corpora["both"], tmp_path / "serial")
    pooled = C.run_experiment("robustness", corpora["both"], tmp_path / "pooled", "--workers", "2")
    for corpus in ("fixture", "second"):
        assert C._numbers(pooled / "corpora" / corpus) == C._numbers(serial / "corpora" / corpus), corpus
    matrix = [json.loads((f / "results.json").read_text())["matrix"] for f in (serial, pooled)]
    assert matrix[0] == matrix[1] and matrix[0]["pairs"]
    assert _files(pooled) == _files(serial)


# -- a worker's threads ---------------------------------------------------------------------

WORKER_POOLS = """
import json
from nlpgd.experiments.claims.engines import _setup_worker
_setup_worker(1, ({}, None))
import sklearn.linear_model  # whatever a cell loads after the set-up is limited too
from threadpoolctl import threadpool_info
print(json.dumps([(i["internal_api"], i["num_threads"]) for i in threadpool_info()]))
"""


@pytest.mark.skipif(cores() < 2, reason="on one core every thread pool has one thread anyway")
def test_a_worker_runs_blas_and_openmp_on_its_share_of_the_cores_as_torch():
    """Two workers on two cores: each one's OpenBLAS left at two threads spins for the core the
    other worker holds (a logistic regression on 2,000 messages: 5 CPU seconds instead of 0.2)."""
    out = subprocess.run([sys.executable, "-c", WORKER_POOLS], capture_output=True, text=True, check=True).stdout
    pools = json.loads(out.splitlines()[-1])
    assert {api for api, _ in pools} >= {"openblas", "openmp"}
    assert all(threads == 1 for _, threads in pools), pools


# -- the smoke claims config: serial, 2 workers, Ray local (slow) ----------------------------


@pytest.fixture(scope="module")
def smoke_serial(tmp_path_factory) -> Path:
    """The serial run with the torch threads each of two workers gets (float32 sums run in
    another order on another number of threads: the neural arms' numbers differ by ~1e-5)."""
    import torch
    from threadpoolctl import threadpool_limits

    before, threads = torch.get_num_threads(), worker_threads(cores() // 2)
    torch.set_num_threads(threads)
    try:
        with threadpool_limits(threads):  # BLAS too, as in a worker (engines.limit_native_threads)
            return _smoke(tmp_path_factory.mktemp("serial"))
    finally:
        torch.set_num_threads(before)


def _smoke(out: Path, *extra) -> Path:
    sets = [a for s in [*C.TRIM, f"data.path={TINY_CSV}", "seeds=[0, 1]"] for a in ("--set", s)]
    r = invoke("experiment", "claims", TINY_CFG, "--output-dir", out, "--quiet", *sets, *extra)
    assert r.exit_code == 0, r.output
    # Ray's driver prints its workers' lines as they come: the folder is named on its own line
    line = next(line for line in r.output.splitlines() if line.startswith("run folder: "))
    return Path(line.removeprefix("run folder: "))


def _same_numbers(a: Path, b: Path) -> None:
    for name in EXPERIMENT_NAMES:
        if name == "compute":  # its numbers are measured seconds and throughput: wall time, not fixed by the seed
            continue
        assert C._numbers(a / name) == C._numbers(b / name), name
    assert _files(a) == _files(b)


@pytest.mark.slow
def test_the_smoke_claims_on_two_workers_give_the_serial_numbers(smoke_serial, tmp_path):
    _same_numbers(smoke_serial, _smoke(tmp_path, "--workers", "2"))


@pytest.mark.slow
@pytest.mark.skipif(not HAS_RAY, reason=NO_RAY)
def test_the_smoke_claims_on_ray_local_give_the_serial_numbers(smoke_serial, tmp_path):
    _same_numbers(smoke_serial, _smoke(tmp_path, "--ray", "local", "--workers", "2"))
