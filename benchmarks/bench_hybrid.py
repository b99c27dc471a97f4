"""Benchmark of the generative-discriminative hybrid GPT-2 against the pure language model, and
of the stacked ensemble against the best single arm, on the SMS Spam Collection (prints
figures, asserts nothing).

Part 1 (always): for each seed, the GPT-2 recipe of ``configs/hybrid.yaml`` trained twice on
the same split, as the pure generative model (entry ``gpt2``: discriminative_weight 0) and as
the hybrid (entry ``gpt2_hybrid``: discriminative_weight 1), each with the validation split
for choosing the epoch as ``compare`` does. Side by side: test spam F1 and accuracy,
validation F1, training wall seconds and CPU seconds, scoring throughput (messages/s, both
classes scored), and 200 sampled spam messages: the share a naive Bayes trained on the real
train split calls spam, the share copying a training message, distinct-2.

Part 2 (``--stack``): ``nlpgd compare configs/stack.yaml`` (naive Bayes, the hybrid GPT-2,
MiniLM and their stack) for the same seeds, then each model's test F1 per seed and the
report's verdict: the stack against the best single arm, with the 95% paired bootstrap
interval of the F1 difference.

    .venv/bin/python benchmarks/bench_hybrid.py                      # seeds 0,1,2, part 1
    .venv/bin/python benchmarks/bench_hybrid.py --seeds 0 --set gpt2_hybrid.epochs=8
    .venv/bin/python benchmarks/bench_hybrid.py --stack              # part 1, then part 2
    .venv/bin/python benchmarks/bench_hybrid.py --stack-only

Data: exact duplicates removed (5,171 messages), stratified 80/10/10, split seed 0.
Targets (issue 11; discriminative_weight 1, seeds 0-2): mean test F1 >= 0.965, accuracy >=
0.991, training <= 3 min per seed on 2 cores, scoring >= 150 msg/s, of 200 spam samples >=
90% called spam by naive Bayes and < 5% copies; the stack at least the best single arm's
mean F1.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_gpt2 import SMS, load, load_splits  # noqa: E402  (sets the environment too)

REPO = Path(__file__).resolve().parents[1]
ARMS = ("gpt2", "gpt2_hybrid")  # entries of configs/hybrid.yaml: the same recipe at weights (1, 0) and (1, 1)
COLUMNS = [
    ("f1", "test F1", "{:.4f}"),
    ("acc", "test accuracy", "{:.4f}"),
    ("val_f1", "validation F1", "{:.4f}"),
    ("train_s", "training s (wall)", "{:.1f}"),
    ("train_cpu_s", "training s (CPU)", "{:.1f}"),
    ("msg_per_s", "scoring msg/s", "{:.0f}"),
    ("nb_spam", "samples called spam by NB", "{:.3f}"),
    ("copies", "samples copying train", "{:.3f}"),
    ("distinct2", "samples distinct-2", "{:.3f}"),
    ("gen_s", "sampling s", "{:.1f}"),
]


def arm_params(overrides: list[str]) -> dict:
    """The two arms' params from configs/hybrid.yaml, with ``--set entry.key=value`` applied."""
    from nlpgd.config import load_config

    sets = [f"models.{kv}" for kv in overrides]
    cfg = load_config(REPO / "configs" / "hybrid.yaml", sets)
    return {name: cfg.models[name] for name in ARMS}


def nb_judge(texts, labels):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.naive_bayes import MultinomialNB

    vec = CountVectorizer()
    nb = MultinomialNB().fit(vec.fit_transform(texts), labels)

    class Judge:  # the Classifier surface sample_quality needs
        def predict(self, batch):
            return nb.predict(vec.transform(batch))

    return Judge()


def run_arm(params, seed: int, splits, judge, n_samples: int) -> dict:
    from sklearn.metrics import accuracy_score, f1_score

    from nlpgd.generation import sample_quality
    from nlpgd.models.base import FitContext
    from nlpgd.models.registry import build_model

    (tr_x, tr_y), (va_x, va_y), (te_x, te_y) = splits
    clf = build_model(params.model_copy())
    clf.progress = False
    with tempfile.TemporaryDirectory(prefix="bench-hybrid-") as work:
        ctx = FitContext(seed=seed, work_dir=Path(work), progress=False, validation=(va_x, va_y))
        t0, c0 = time.perf_counter(), time.process_time()
        clf.fit(tr_x, tr_y, ctx)
        row = {"train_s": time.perf_counter() - t0, "train_cpu_s": time.process_time() - c0}
    t0 = time.perf_counter()
    pred = clf.classes_[clf.predict_proba(te_x).argmax(1)]
    row["msg_per_s"] = len(te_x) / (time.perf_counter() - t0)
    row.update(f1=f1_score(te_y, pred, pos_label="spam"), acc=accuracy_score(te_y, pred))
    row["val_f1"] = f1_score(va_y, clf.predict(va_x), pos_label="spam")
    if n_samples:
        t0 = time.perf_counter()
        samples = clf.generate("spam", n_samples, seed=seed, progress=False)
        row["gen_s"] = time.perf_counter() - t0
        real = [t for t, y in zip(tr_x, tr_y) if y == "spam"]
        q = sample_quality(samples, tr_x, real, {"nb": judge}, "spam")
        row.update(nb_spam=q["label_fidelity"]["nb"], copies=q["copy_share"], distinct2=q["distinct_2"])
        row["samples"] = samples[:3]
    return row


def side_by_side(rows: dict[str, list[dict]], seeds: list[int]) -> None:
    """Per seed and mean ± sd, one column per arm."""
    print(f"\n== side by side, seeds {', '.join(map(str, seeds))} ({load()})")
    print(f"{'':28}" + "".join(f"{arm:>42}" for arm in rows))
    for key, label, fmt in COLUMNS:
        cells = []
        for arm_rows in rows.values():
            vals = [r[key] for r in arm_rows if key in r]
            if not vals:
                cells.append("n/a")
                continue
            sd = statistics.stdev(vals) if len(vals) > 1 else 0.0
            per_seed = "/".join(fmt.format(v) for v in vals)
            cells.append(f"{fmt.format(statistics.fmean(vals))} ± {fmt.format(sd)} ({per_seed})")
        print(f"{label:28}" + "".join(f"{c:>42}" for c in cells))


def part_one(args) -> None:
    params = arm_params(args.set)
    splits = load_splits(args.data)
    (tr_x, tr_y), (va_x, _), (te_x, te_y) = splits
    print(
        f"data: train {len(tr_x)} ({tr_y.count('spam')} spam), validation {len(va_x)}, test {len(te_x)} "
        f"({te_y.count('spam')} spam); {os.cpu_count()} CPUs"
    )
    for name, p in params.items():
        print(f"{name}:", json.dumps({k: v for k, v in p.model_dump(mode="json").items() if k != "type"}))
    judge = nb_judge(tr_x, tr_y)
    rows: dict[str, list[dict]] = {name: [] for name in params}
    for seed in args.seeds:
        for name, p in params.items():
            print(f"\n== {name}, seed {seed} ({load()})", flush=True)
            row = run_arm(p, seed, splits, judge, args.samples)
            rows[name].append(row)
            print("  " + ", ".join(f"{label} {fmt.format(row[k])}" for k, label, fmt in COLUMNS if k in row))
            for s in row.get("samples", []):
                print("   sample:", s[:110])
            print(f"  ({load()})", flush=True)
    side_by_side(rows, args.seeds)


def part_two(args) -> None:
    """compare on configs/stack.yaml, then per-seed F1 and the report's stack verdict."""
    from nlpgd.config import load_config
    from nlpgd.experiments.compare import compare

    sets = [f"seeds={json.dumps(args.seeds)}", f"data.path={args.data}", "progress=false"]
    sets += [f"models.{kv}" for kv in args.set if kv.split(".", 1)[0] in ("naive_bayes", "gpt2_hybrid", "distilbert")]
    with tempfile.TemporaryDirectory(prefix="bench-stack-") as out:
        cfg = load_config(REPO / "configs" / "stack.yaml", [*sets, f"output_dir={out}"])
        print(f"\n== stack: nlpgd compare configs/stack.yaml, seeds {args.seeds} ({load()})", flush=True)
        t0 = time.perf_counter()
        run = compare(cfg, command="bench_hybrid.py --stack")
        results = json.loads((run / "results.json").read_text())
        print(f"compare took {time.perf_counter() - t0:.0f} s ({load()})")
    print(f"{'model':14}" + "".join(f"{'seed ' + str(s):>10}" for s in args.seeds) + "   test F1 mean ± sd [95% CI]")
    for m, r in results["models"].items():
        f1 = r["metrics"]["f1"]
        cells = "".join(f"{f1['per_seed'][f'seed{s}']:>10.4f}" for s in args.seeds)
        sd = f" ± {f1['std']:.4f}" if f1["std"] is not None else ""
        print(f"{m:14}{cells}   {f1['mean']:.4f}{sd} [{f1['ci_low']:.4f}, {f1['ci_high']:.4f}]")
    for v in results["stack"]:
        d = v["f1_difference"]
        print(
            f"{v['stack']} vs best single arm {v['best_single']}: F1 difference {d['mean']:+.4f} "
            f"[{d['ci_low']:+.4f}, {d['ci_high']:+.4f}] -> {v['verdict']}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seeds", default="0,1,2", type=lambda s: [int(x) for x in s.split(",")])
    ap.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="ENTRY.KEY=VALUE",
        help="override a model setting of configs/hybrid.yaml (and of configs/stack.yaml for naive_bayes, "
        "gpt2_hybrid, distilbert)",
    )
    ap.add_argument("--samples", type=int, default=200, help="spam samples per arm and seed (0: skip)")
    ap.add_argument("--data", type=Path, default=SMS)
    ap.add_argument("--stack", action="store_true", help="then run part 2: the stack against the best single arm")
    ap.add_argument("--stack-only", action="store_true", help="run part 2 only")
    args = ap.parse_args()
    if not args.stack_only:
        part_one(args)
    if args.stack or args.stack_only:
        part_two(args)


if __name__ == "__main__":
    main()
