"""What `nlpgd experiment NAME CONFIG --workers N` gives: the cells of a finished claims run,
their times, and the wall time N workers would need; optionally the measured wall time at 1
and 2 workers.

A finished run folder records every cell's time in ``costs.json``: ``cell_seconds`` (fit, save,
scoring of validation and test) and ``eval_seconds`` (the cell's evals: perturbed and shifted
test sets, generation; runs made before the pool have no ``eval_seconds``, so their evals are
left out and the table says so). From them, for each N:

- the lower bound: the longest of (all the work / N) and the critical path (a cell trained on
  generated messages starts after its generator's cell);
- a list schedule: whenever a worker is free it takes the longest ready cell (longest
  processing time first), which is within 4/3 of the best schedule without dependencies.

It leaves out what does not shrink with N: loading the data, starting the workers (a fresh
interpreter each, torch imported: seconds), the report.

    .venv/bin/python benchmarks/bench_workers.py RUN_DIR [--workers 1,2,4,8,16,32]
    .venv/bin/python benchmarks/bench_workers.py --measure [CONFIG] [--name claims] [--set K=V ...]
    .venv/bin/python benchmarks/bench_workers.py --plan CONFIG [RUN_DIR]

``--measure`` runs CONFIG (default: the smoke claims config, the tiny fixture with the trimmed
grid of the tests) with 1 and 2 workers, prints both wall times and the machine's load, then
the table of the 1-worker run.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))
from test_claims import TRIM  # noqa: E402 (the trimmed grid the tests run the smoke claims with)

SMOKE = [f"data.path={REPO / 'tests/data/tiny_spam.csv'}", "seeds=[0, 1]", *TRIM]
SYNTHETIC = re.compile(r"aug-r(\d+)-(mix|syn)/.+/seed(\d+)$")


def cell_times(run: Path) -> tuple[dict[str, float], bool]:
    """``{cell key: seconds}`` from ``costs.json``, and whether the evals' seconds were recorded."""
    costs = json.loads((run / "costs.json").read_text())
    times, evals = {}, True
    for name, by_seed in costs.items():
        for seed, cost in by_seed.items():
            times[f"{name}/{seed}"] = cost.get("cell_seconds", cost.get("train_seconds", 0.0))
            if "eval_seconds" in cost:
                times[f"{name}/{seed}"] += cost["eval_seconds"]
            evals = evals and ("eval_seconds" in cost or not _has_evals(run, name, seed))
    return times, evals


def _has_evals(run: Path, name: str, seed: str) -> bool:
    own = {f"{seed}.validation.csv", f"{seed}.test.csv"}
    folder = run / "predictions" / name
    return (
        any(p.name.startswith(f"{seed}.") and p.name not in own for p in folder.glob("*")) if folder.is_dir() else False
    )


def dependencies(run: Path, keys: list[str]) -> dict[str, set[str]]:
    """A cell trained on generated messages waits for the cells that generated them (the
    generators named under ``synthetic/n<size>/``)."""
    out: dict[str, set[str]] = {k: set() for k in keys}
    for key in keys:
        m = SYNTHETIC.match(key)
        if m:
            size, _, seed = m.groups()
            gens = [p.name for p in (run / "synthetic" / f"n{size}").glob("*") if p.is_dir()]
            out[key] = {f"n{size}/{g}/seed{seed}" for g in gens} & set(keys)
    return out


def critical_path(times: dict[str, float], deps: dict[str, set[str]]) -> float:
    memo: dict[str, float] = {}

    def finish(k: str) -> float:
        if k not in memo:
            memo[k] = times[k] + max((finish(d) for d in deps[k]), default=0.0)
        return memo[k]

    return max((finish(k) for k in times), default=0.0)


def list_schedule(times: dict[str, float], deps: dict[str, set[str]], n: int) -> float:
    """The makespan of N workers each taking the longest ready cell when free."""
    clock, done, running, free = 0.0, set(), [], n
    left = set(times)
    while left or running:
        ready = sorted((k for k in left if deps[k] <= done), key=lambda k: -times[k])
        for k in ready[:free]:
            heapq.heappush(running, (clock + times[k], k))
            left.discard(k)
            free -= 1
        if not running:
            break
        clock, k = heapq.heappop(running)
        done.add(k)
        free += 1
    return clock


def table(run: Path, workers: list[int]) -> None:
    times, evals = cell_times(run)
    deps = dependencies(run, list(times))
    total, path = sum(times.values()), critical_path(times, deps)
    wall = json.loads((run / "run.json").read_text()).get("wall_seconds") or {}
    print(f"run: {run}")
    print(f"cells: {len(times)}; their seconds: {total:.1f} in all, {total / max(len(times), 1):.1f} on average")
    print(f"  longest: {', '.join(f'{k} {v:.1f}' for k, v in sorted(times.items(), key=lambda kv: -kv[1])[:5])}")
    print(f"  critical path (a generator, then the cells trained on its messages): {path:.1f} s")
    if not evals:
        print("  (this run recorded no eval seconds: the cells' evals are not in these times)")
    if wall:
        print(f"  experiments' recorded seconds: {', '.join(f'{k} {v:.0f}' for k, v in wall.items())}")
    print(f"{'workers':>8} {'lower bound s':>14} {'LPT schedule s':>15} {'speed-up':>9}")
    for n in workers:
        bound, span = max(total / n, path), list_schedule(times, deps, n)
        print(f"{n:>8} {bound:>14.1f} {span:>15.1f} {total / span if span else 1:>8.2f}x")


def measure(config: Path, name: str, sets: list[str]) -> Path:
    load = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, load average {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1/5/15 min)")
    if load[0] > 0.5:
        print("  the machine is loaded: other work shares these cores, so these wall times are not an idle figure")
    folder = Path(tempfile.mkdtemp(prefix="bench_workers-"))
    first = None
    for n in (1, 2):
        args = [sys.executable, "-m", "nlpgd", "experiment", name, str(config), "--output-dir", str(folder / f"w{n}")]
        args += [a for s in sets for a in ("--set", s)] + ["--quiet", "--workers", str(n)]
        t0 = time.perf_counter()
        proc = subprocess.run(args, capture_output=True, text=True, cwd=REPO)
        seconds = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"the {n}-worker run failed: {proc.stderr.strip()[-2000:]}")
        run = Path(proc.stdout.strip().splitlines()[-1].removeprefix("run folder: "))
        print(f"{n} worker{'s' * (n > 1)}: {seconds:.1f} s wall (the whole command: imports, data, cells, report)")
        first = first or run
    return first


def plan_counts(config: Path, name: str, sets: list[str]) -> None:
    """The cells CONFIG asks for (data loaded, nothing fitted): per experiment and in all, shared
    fits counted once, and how many train on generated messages (they wait for a generator)."""
    from nlpgd.config import ExperimentGrid, load_config
    from nlpgd.experiments.claims import check_name, design
    from nlpgd.experiments.claims.plan import Plan

    cfg = load_config(config, sets)
    cfg = cfg.model_copy(update={"experiment": cfg.experiment or ExperimentGrid()})
    d, _, plans = design(cfg, check_name(name))
    merged = Plan()
    for p in plans.values():
        merged.merge(p)
    waiting = sum(c.generator_key() is not None for c in merged.cells.values())
    print(
        f"config: {config} ({name}): {len(merged)} cells ({len(d.seeds)} seeds), {waiting} of them wait for a generator"
    )
    for n, p in plans.items():
        evals = sum(len(c.evals) for c in p.cells.values())
        print(f"  {n:<16} {len(p):>4} cells, {evals:>4} evals")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", type=Path, help="a finished claims run folder")
    ap.add_argument("--workers", default="1,2,4,8,16,32", help="the N to schedule for, comma-separated")
    ap.add_argument("--measure", nargs="?", const=REPO / "configs/smoke/tiny.yaml", type=Path, metavar="CONFIG")
    ap.add_argument("--plan", type=Path, metavar="CONFIG", help="count the cells CONFIG asks for, fitting nothing")
    ap.add_argument("--name", default="claims", help="the experiment --measure and --plan run (default: claims)")
    ap.add_argument("--set", dest="sets", action="append", default=None, help="config overrides for --measure")
    args = ap.parse_args()
    workers = [int(n) for n in args.workers.split(",")]
    if args.plan is not None:
        plan_counts(args.plan, args.name, args.sets or [])
        if args.run is None:
            return
    if args.measure is not None:
        smoke = args.sets is None and args.measure == REPO / "configs/smoke/tiny.yaml"
        run = measure(args.measure, args.name, SMOKE if smoke else (args.sets or []))
    elif args.run is not None:
        run = args.run
    else:
        ap.error("give a finished run folder, or --measure")
    table(run, workers)


if __name__ == "__main__":
    main()
