"""Benchmark channel prompting: a pretrained causal LM as a spam classifier without training.

Run with ``.venv/bin/python benchmarks/bench_channel.py [--data sms|spamassassin] [--n 300]
[--demonstrations 0 16 32]``. The classifier is ``type: gpt2, checkpoint: smollm2, epochs: 0,
prompts: default`` (the built-in prompts of ``nlpgd.params.gpt2.DEFAULT_PROMPTS``, written once
and not tuned on any test set), messages cut to ``--max-length`` tokens, not lowercased.

Messages scored: a balanced sample (at most ``--n / 2`` of each class, drawn with seed 0) of
the validation and test splits of the data set's standard split (``nlpgd data``: dedup,
stratified 80/10/10, split seed 0). With ``--demonstrations k``, the k in-context examples are
drawn from the train split, so no scored message is shown to the model. Printed per setting:
ROC-AUC and PR-AUC with 95% bootstrap intervals (1,000 resamples of the messages), and messages
per second (both prompts, after the model is loaded), wall-clock and per CPU-second (the
latter does not depend on what else the machine is running). Targets (issue 17): zero-shot ROC-AUC >=
0.85 on SMS and >= 0.80 on SpamAssassin.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from nlpgd.config import DataConfig
from nlpgd.data import load_splits
from nlpgd.models.base import FitContext
from nlpgd.models.gpt2 import GPT2Classifier
from nlpgd.params import GPT2Params
from nlpgd.stats import bootstrap_ci

SMS = Path(__file__).resolve().parents[2] / "shared" / "data" / "sms_spam" / "SMSSpamCollection"
TARGETS = {"sms": 0.85, "spamassassin": 0.80}


def data_config(name: str, sms_path: Path) -> DataConfig:
    if name == "sms":
        return DataConfig(source="uci_sms", path=str(sms_path))
    return DataConfig(source="spamassassin")


def balanced_sample(texts: list[str], labels: list[str], n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = np.random.default_rng(seed)
    keep: list[int] = []
    for c in ("ham", "spam"):
        idx = [i for i, y in enumerate(labels) if y == c]
        keep += [int(i) for i in rng.choice(idx, size=min(n // 2, len(idx)), replace=False)]
    keep.sort()
    return [texts[i] for i in keep], [labels[i] for i in keep]


def run(data, k: int, args) -> dict:
    params = GPT2Params(
        checkpoint=args.checkpoint,
        epochs=0,
        prompts="default",
        demonstrations=k,
        lowercase=False,
        max_length=args.max_length,
        eval_batch_size=args.batch_size,
    )
    model = GPT2Classifier(params)
    t0 = time.perf_counter()
    model.fit(data.texts("train"), data.labels("train"), FitContext(seed=0, progress=False))
    load_s = time.perf_counter() - t0
    pool_texts = data.texts("validation") + data.texts("test")
    pool_labels = data.labels("validation") + data.labels("test")
    texts, labels = balanced_sample(pool_texts, pool_labels, args.n)
    model.progress = False
    t0, c0 = time.perf_counter(), time.process_time()
    p = model.predict_proba(texts)[:, list(model.classes_).index("spam")]
    score_s, cpu_s = time.perf_counter() - t0, time.process_time() - c0
    y = np.array([lab == "spam" for lab in labels], dtype=int)
    ci = bootstrap_ci(y, p, names=("roc_auc", "pr_auc"), n_resamples=1000)
    return {"n": len(texts), "spam": int(y.sum()), "load_s": load_s, "score_s": score_s, "cpu_s": cpu_s, "ci": ci}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", choices=("sms", "spamassassin"), default="sms")
    parser.add_argument("--sms", type=Path, default=SMS, help="the SMSSpamCollection file")
    parser.add_argument("--n", type=int, default=300, help="messages scored (balanced)")
    parser.add_argument("--demonstrations", type=int, nargs="+", default=[0])
    parser.add_argument("--checkpoint", default="smollm2")
    parser.add_argument("--max-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    args = parser.parse_args(argv)
    print(f"torch threads: {torch.get_num_threads()}; data: {args.data}; checkpoint: {args.checkpoint}")
    data = load_splits(data_config(args.data, args.sms))
    for k in args.demonstrations:
        r = run(data, k, args)
        auc, pr = r["ci"]["roc_auc"], r["ci"]["pr_auc"]
        target = TARGETS[args.data] if k == 0 else None
        print(
            f"{args.data} demonstrations={k}: {r['n']} messages ({r['spam']} spam) | ROC-AUC {auc['point']:.3f} "
            f"[{auc['ci_low']:.3f}, {auc['ci_high']:.3f}] | PR-AUC {pr['point']:.3f} [{pr['ci_low']:.3f}, "
            f"{pr['ci_high']:.3f}] | {r['n'] / r['score_s']:.1f} messages/s (both prompts; {r['score_s']:.0f} s wall, "
            f"{r['cpu_s']:.0f} s CPU: {r['n'] / r['cpu_s']:.1f} messages per CPU-second), "
            f"load {r['load_s']:.0f} s"
            + (f" | target >= {target}: {'met' if auc['point'] >= target else 'MISSED'}" if target else "")
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
