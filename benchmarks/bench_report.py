"""Time `nlpgd report` on a synthetic finished run: 3 models x 3 seeds x 1,000 test messages.

Builds the run folder with :func:`nlpgd.testing.make_run` in a temporary directory
(predictions only, no model; every 8th message spam), then times
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

from nlpgd.testing import FAMILIES, make_run


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", type=int, default=3)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--n", type=int, default=1000, help="test (and validation) messages")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        names = (list(FAMILIES) + [f"model{i}" for i in range(args.models)])[: args.models]
        run = make_run(
            Path(tmp),
            models=names,
            seeds=tuple(range(args.seeds)),
            n_test=args.n,
            n_val=args.n,
            experiment="bench",
            spam_every=8,
            record_metrics=False,  # no scikit-learn import before the timings
        )
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
        print(
            f"  figures: {', '.join(f'{k} {v // 1024} KiB' for k, v in sizes.items())}; "
            f"report.html {(run / 'report.html').stat().st_size // 1024} KiB"
        )


if __name__ == "__main__":
    main()
