"""Where a parallel claims run's cells run: a local process pool, or a Ray cluster.

Both take :class:`~nlpgd.experiments.claims.pool.Task` objects and give
:class:`concurrent.futures.Future` objects of their outcomes; ``limit`` is how many cells are
in flight at once.

- :class:`LocalPool`: ``N`` processes started with ``spawn`` (a fresh interpreter each: no
  forked torch or CUDA state), each given the design once; torch threads per worker are the
  machine's cores divided by ``N``; with GPUs (the config resolves to ``cuda``) each worker
  sees one of them through ``CUDA_VISIBLE_DEVICES`` (round robin when there are more workers
  than GPUs).
- :class:`RayPool`: Ray is an optional extra (``pip install "nlpgd[ray]"``). ``--ray auto``
  joins the cluster this machine belongs to, ``--ray local`` starts one on this machine,
  ``--ray HOST:PORT`` (or ``ray://HOST:PORT``) joins that one; the address is checked within
  seconds before any work. Each cell asks for one CPU (``--workers N``: the cluster's CPUs
  divided by ``N``, and ``N`` cells at a time) and one GPU when the cluster has GPUs. Workers
  on other machines write into the run folder, so it must be on storage every node sees.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import pickle
import signal
import socket
import subprocess
import sys
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

from nlpgd.errors import NlpgdError, first_line
from nlpgd.experiments.claims.pool import RAY_EXTRA, Engine, Task, run_task
from nlpgd.hardware import current_device

log = logging.getLogger(__name__)
_WORKER: dict = {}  # in a worker process: what every task of the run shares


def start(engine: Engine, design, run_path: Path, resume: bool):
    if engine.ray is not None:
        return RayPool(engine, design, run_path, resume)
    return LocalPool(engine.workers, design, run_path, resume)


def cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def worker_threads(share: int) -> int:
    """Torch threads per worker: ``OMP_NUM_THREADS`` when set (as torch itself reads it in a
    serial run), else ``share`` (the cores divided by the workers). Float32 sums run in another
    order on another number of threads, so the neural arms' numbers equal a serial run's when
    the threads per process are the same."""
    env = os.environ.get("OMP_NUM_THREADS", "")
    return int(env) if env.isdigit() and int(env) > 0 else max(1, share)


def limit_native_threads(threads: int) -> None:
    """The native thread pools besides torch's (numpy's and scipy's OpenBLAS, scikit-learn's
    OpenMP) on ``threads`` threads, as torch is.

    Left at the cores of the machine, each worker's BLAS wakes a thread per core for every
    small vector operation while the other workers hold those cores, and a scikit-learn
    logistic regression on 2,000 SpamAssassin messages then takes 5 CPU seconds instead of
    0.2. scipy's BLAS is loaded here first (by the import), so that it is limited too."""
    import scipy.linalg  # noqa: F401 (loads scipy's own BLAS, which threadpoolctl then finds)
    from threadpoolctl import threadpool_limits

    threadpool_limits(max(1, threads))


def _gpus() -> list[str]:
    """The GPUs the workers share out, when the run resolves to CUDA."""
    if current_device() != "cuda":
        return []
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [g for g in visible.split(",") if g.strip()]
    import torch

    return [str(i) for i in range(torch.cuda.device_count())]


def _log_setup() -> tuple:
    """The parent's log settings, for the workers: the level of every logger set explicitly, and
    the stderr handler's formatter when it can be sent."""
    levels = {n: lg.level for n, lg in logging.root.manager.loggerDict.items() if isinstance(lg, logging.Logger)}
    levels = {n: v for n, v in levels.items() if v != logging.NOTSET}
    formatter = next((h.formatter for h in logging.root.handlers if h.formatter is not None), None)
    try:
        pickle.dumps(formatter)
    except Exception:  # noqa: BLE001 (a test runner's formatter: the workers use a plain one)
        formatter = None
    return levels, formatter


def _setup_worker(threads: int, logs: tuple) -> None:
    import torch

    torch.set_num_threads(max(1, threads))
    limit_native_threads(threads)
    levels, formatter = logs
    handler = logging.StreamHandler()
    handler.setFormatter(formatter or logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


class LocalPool:
    def __init__(self, workers: int, design, run_path: Path, resume: bool):
        context = multiprocessing.get_context("spawn")
        slots = context.Queue()
        for i in range(workers):
            slots.put(i)
        gpus = _gpus()
        threads = worker_threads(cores() // workers)
        log.info(
            "%d worker processes, %d torch thread%s each%s",
            workers,
            threads,
            "s" * (threads > 1),
            f", GPUs {gpus}" if gpus else "",
        )
        self.limit = workers
        self.executor = ProcessPoolExecutor(
            workers,
            mp_context=context,
            initializer=_init_local,
            initargs=(design, str(run_path), resume, threads, slots, gpus, _log_setup()),
        )

    def submit(self, task: Task) -> Future:
        return self.executor.submit(_local_task, task)

    def close(self, cancel: bool = False) -> None:
        """Wait for the workers to end; with ``cancel`` (Ctrl-C, an error) nothing new starts and
        the running cells are interrupted as a serial run's would be (their temporary files
        removed), since a Ctrl-C sent to this process alone does not reach them."""
        if cancel:
            for pid in list(getattr(self.executor, "_processes", None) or {}):  # pid -> process
                with contextlib.suppress(OSError):
                    os.kill(pid, signal.SIGINT)
        self.executor.shutdown(wait=not cancel, cancel_futures=cancel)


def _init_local(design, run_path: str, resume: bool, threads: int, slots, gpus: list[str], logs: tuple) -> None:
    slot = slots.get()
    if gpus:  # before CUDA is first touched in this process
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[slot % len(gpus)]
    _setup_worker(threads, logs)
    _WORKER.update(design=design, run_path=run_path, resume=resume)
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # between cells Ctrl-C is the parent's to handle


def _local_task(task: Task):
    """One cell; Ctrl-C interrupts it as it would a serial run's (temporary files removed)."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        return run_task(_WORKER["design"], _WORKER["run_path"], _WORKER["resume"], task)
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)


# -- Ray ----------------------------------------------------------------------------------


def import_ray():
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")  # every cell's own line, not "repeated 6x across cluster"
    if not sys.stderr.isatty():
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")  # no colour codes in a redirected log
    try:
        import ray
    except ImportError:
        raise NlpgdError(f"--ray needs Ray, an optional extra of nlpgd that is not installed: {RAY_EXTRA}") from None
    return ray


def check_reachable(address: str) -> None:
    """One sentence within 10 seconds when no Ray cluster answers at ``address`` (``local`` is
    started by Ray itself): a closed port or a silent host at once or within
    :data:`CONNECT_SECONDS`; anything else that answers is asked to join, as ``ray.init`` would,
    in a separate process given :data:`JOIN_SECONDS` (``ray.init`` itself retries for longer, and
    a process that joins cannot be stopped halfway)."""
    if address == "local":
        return
    if address != "auto":
        host, _, port = address.removeprefix("ray://").rpartition(":")
        if not host or not port.isdigit():
            raise NlpgdError(f"--ray {address}: give HOST:PORT (or ray://HOST:PORT), auto, or local")
        try:
            socket.create_connection((host, int(port)), timeout=CONNECT_SECONDS).close()
        except OSError as exc:
            reason = "no answer" if isinstance(exc, TimeoutError) else exc.strerror or first_line(exc)
            raise NlpgdError(f"cannot reach the Ray cluster at {address}: {reason}") from None
    import_ray()
    try:
        probe = subprocess.run(
            [sys.executable, "-c", JOIN_PROBE, address], capture_output=True, text=True, timeout=JOIN_SECONDS
        )
    except subprocess.TimeoutExpired:
        raise NlpgdError(
            f"cannot reach the Ray cluster at {address}: no Ray cluster answered within {JOIN_SECONDS:g} s"
        ) from None
    if probe.returncode != 0:
        reason = next((ln for ln in reversed(probe.stderr.splitlines()) if ln.strip()), "it could not be joined")
        raise NlpgdError(f"cannot reach the Ray cluster at {address}: {reason.strip()}")


CONNECT_SECONDS = 3.0
JOIN_SECONDS = 6.0  # with the connection: under 10 s
JOIN_PROBE = (
    "import sys, ray\n"
    "try:\n"
    "    ray.init(address=sys.argv[1], include_dashboard=False, log_to_driver=False)\n"
    "except Exception as exc:\n"
    "    sys.exit(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)\n"
    "ray.shutdown()\n"
)


def connect(address: str) -> None:
    """Ray started or joined at ``address``, before any work (a failure is one sentence)."""
    ray = import_ray()
    check_reachable(address)
    if ray.is_initialized():
        return
    try:
        ray.init(address=address, include_dashboard=False, logging_level=logging.ERROR, log_to_driver=True)
    except (ConnectionError, RuntimeError, ValueError, TimeoutError) as exc:
        raise NlpgdError(f"cannot join the Ray cluster at {address}: {first_line(exc)}") from None


class RayPool:
    def __init__(self, engine: Engine, design, run_path: Path, resume: bool):
        ray = import_ray()
        connect(engine.ray)
        resources = ray.cluster_resources()
        cpus, gpus = int(resources.get("CPU", 1)), int(resources.get("GPU", 0))
        per = max(1, cpus // engine.workers) if engine.workers > 1 else 1
        self.limit = engine.workers if engine.workers > 1 else max(1, gpus or cpus // per)
        log.info(
            "Ray: %d CPUs, %d GPUs; %d cells at a time, %d CPU%s each", cpus, gpus, self.limit, per, "s" * (per > 1)
        )
        self.remote = ray.remote(_ray_task).options(num_cpus=per, num_gpus=1 if gpus else 0)
        self.args = (ray.put(design), str(run_path), resume, worker_threads(per), _log_setup())
        self.refs: list = []

    def submit(self, task: Task) -> Future:
        ref = self.remote.remote(*self.args, task)
        self.refs.append(ref)
        return ref.future()

    def close(self, cancel: bool = False) -> None:
        import ray

        if cancel:
            for ref in self.refs:
                ray.cancel(ref, force=True)
        ray.shutdown()


def _ray_task(design, run_path: str, resume: bool, threads: int, logs: tuple, task: Task):
    if not _WORKER.get("ray"):
        _setup_worker(threads, logs)
        _WORKER["ray"] = True
    return run_task(design, run_path, resume, task)
