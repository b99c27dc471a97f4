"""Time `nlpgd report` on a synthetic finished run: 3 models x 3 seeds x 1,000 test messages.

Builds the run folder in a temporary directory (predictions only, no model), then times
:func:`nlpgd.report.write_report` in this process and the whole `nlpgd report RUN_DIR`
command in a fresh interpreter (imports included). Target: under 10 s on 2 CPU cores.

    .venv/bin/python benchmarks/bench_report.py [--models 3] [--seeds 3] [--n 1000]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from nlpgd.io import write_json
from nlpgd.runs import write_predictions

FAMILIES = {"naive_bayes": "generative", "distilbert": "discriminative", "gpt2": "generative"}


def make_synthetic_run(root: Path, n_models: int = 3, seeds=(0, 1, 2), n_test: int = 1000,
                       n_val: int = 1000, spam_share: float = 0.13) -> Path:
    """A finished run folder with random but plausible predictions (no model)."""
    rng = np.random.default_rng(0)
    run = Path(root) / "bench" / "20260101-000000"
    names = (list(FAMILIES) + [f"model{i}" for i in range(n_models)])[:n_models]
    ids = {s: [f"{s}-{i}" for i in range(n)] for s, n in (("validation", n_val), ("test", n_test))}
    y = {s: (rng.random(len(ids[s])) < spam_share).astype(int) for s in ids}
    costs = {}
    for k, name in enumerate(names):
        separation = 3.0 + 1.5 * k
        for seed in seeds:
            for split in ("validation", "test"):
                z = separation * (2 * y[split] - 1) + rng.normal(0, 2.0, len(y[split])) + 0.3 * seed
                p = 1 / (1 + np.exp(-z))
                write_predictions(run / "predictions" / name / f"seed{seed}.{split}.csv", ids[split], y[split], p,
                                  (p > 0.5).astype(int))
            costs.setdefault(name, {})[f"seed{seed}"] = {
                "type": name if name in FAMILIES else "naive_bayes", "family": FAMILIES.get(name, "generative"),
                "train_seconds": 1.0 + 10 * k + seed, "train_examples": 4000,
                "predict_seconds_per_1000": 0.05 * (k + 1), "n_parameters": 10_000 * 10**k,
                "peak_memory_mb": 300.0 + 100 * k, "device": "cpu (2 threads)",
            }  # fmt: skip
    write_json(run / "run.json", {"format": 1, "status": "complete", "experiment": "bench",
                                  "run_id": run.name, "seeds": list(seeds), "models": names})
    write_json(run / "costs.json", costs)
    write_json(run / "metrics.json", {})
    write_json(run / "split_manifest.json", {})
    (run / "config.yaml").write_text("name: bench\n")
    counts = {s: {"spam": int(y[s].sum()), "ham": int(len(y[s]) - y[s].sum())} for s in y}
    write_json(run / "data.json", {"source": "synthetic", "where": "benchmarks/bench_report.py",
                                   "sizes": {"train": 4000, "validation": n_val, "test": n_test},
                                   "class_counts": counts, "duplicates_removed": 0, "empty_dropped": 0})
    return run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=1000, help="test (and validation) messages")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        run = make_synthetic_run(Path(tmp), args.models, tuple(range(args.seeds)), args.n, args.n)
        what = f"{args.models} models x {args.seeds} seeds x {args.n} test messages"

        import nlpgd.report

        t0 = time.perf_counter()
        nlpgd.report.write_report(run)  # first call: includes the lazy scipy/sklearn/matplotlib imports
        t_first = time.perf_counter() - t0
        t0 = time.perf_counter()
        nlpgd.report.write_report(run)
        t_warm = time.perf_counter() - t0

        cmd = [sys.executable, "-c", "from nlpgd.cli import main; main()", "report", str(run), "--quiet"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        t_cli = time.perf_counter() - t0
        if proc.returncode != 0:
            sys.exit(f"nlpgd report failed: {proc.stderr.strip()}")
        sizes = {p.name: p.stat().st_size for p in sorted((run / "figures").glob("*.png"))}
        print(f"bench_report: {what}, 1000 bootstrap resamples")
        print(f"  write_report, first call in process:  {t_first:6.2f} s  (with library imports)")
        print(f"  write_report, second call (warm):     {t_warm:6.2f} s")
        print(f"  `nlpgd report RUN_DIR`, fresh process: {t_cli:6.2f} s  (target < 10 s)")
        print(f"  figures: {', '.join(f'{k} {v // 1024} KiB' for k, v in sizes.items())}; "
              f"report.html {(run / 'report.html').stat().st_size // 1024} KiB")


if __name__ == "__main__":
    main()
