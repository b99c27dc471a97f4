"""One claims cell's fit and test scoring at a given number of threads: CPU seconds and wall.

On a busy machine wall time says little, the process's CPU seconds much more: a cell on one
thread takes about its CPU seconds on an idle core, so `--workers 2` on 2 idle cores needs
about half the run's 1-thread CPU seconds. Torch and the BLAS / OpenMP pools are set to
``--threads`` (as a claims worker sets them). ``--save`` writes the test log-odds, to compare
the numbers of two thread counts (or with a run's ``predictions/<set>/<model>/seed<k>.test.csv``).

    .venv/bin/python benchmarks/bench_cell_threads.py configs/claims.yaml gpt2 --threads 1
    .venv/bin/python benchmarks/bench_cell_threads.py configs/claims.yaml stack --threads 2 --n 512
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("config")
    ap.add_argument("model", help="a model of the config")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--n", type=int, default=None, help="a random subset of the train split (default: all of it)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--save", default=None, help="write the test log-odds here (.npy)")
    a = ap.parse_args()
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import numpy as np
    import torch

    from nlpgd.config import load_config
    from nlpgd.data import load_splits
    from nlpgd.experiments.claims.engines import limit_native_threads
    from nlpgd.models.base import FitContext
    from nlpgd.models.registry import build_model
    from nlpgd.seeding import seed_everything

    torch.set_num_threads(a.threads)
    limit_native_threads(a.threads)
    cfg = load_config(a.config)
    data = load_splits(cfg.data)
    texts, labels = data.texts("train"), data.labels("train")
    validation = (data.texts("validation"), data.labels("validation"))
    if a.n is not None:
        keep = np.random.default_rng(a.seed).permutation(len(texts))[: a.n]
        texts, labels = [texts[i] for i in keep], [labels[i] for i in keep]
    seed_everything(a.seed)
    model = build_model(cfg.models[a.model])
    model.progress = False
    t0, c0 = time.perf_counter(), cpu_seconds()
    with tempfile.TemporaryDirectory() as work:
        model.fit(texts, labels, FitContext(seed=a.seed, validation=validation, work_dir=work, progress=False))
    fit_wall, fit_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    t0, c0 = time.perf_counter(), cpu_seconds()
    log_odds = model.predict_log_odds(data.texts("test"))
    score_wall, score_cpu = time.perf_counter() - t0, cpu_seconds() - c0
    if a.save:
        np.save(a.save, np.asarray(log_odds))
    print(
        f"{a.model} on {len(texts)} messages, {a.threads} thread{'s' * (a.threads > 1)}: "
        f"fit {fit_cpu:.1f} CPU s ({fit_wall:.1f} s wall); test scoring ({len(log_odds)} messages) "
        f"{score_cpu:.1f} CPU s ({score_wall:.1f} s wall); load {os.getloadavg()[0]:.1f}"
    )


if __name__ == "__main__":
    main()
