"""Benchmark: synthetic SMS spam from four generators (the scratch classification arm and SmolLM2
zero-shot, in-context and LoRA), side by side, in one run. (Issue 19's generators sized for
generation and their table: benchmarks/bench_generation.py.)

Prints figures, asserts nothing. Generators (``--arms``):

- ``scratch``: the offline GPT-2 arm's default (``checkpoint: scratch``) trained on the train split;
- ``zero_shot``: SmolLM2-135M-Instruct as it is (``epochs: 0``), asked through its chat template
  for one spam SMS per sample (``nlpgd.generation.instruction`` with no examples);
- ``in_context``: the same model, each sample's instruction showing ``--shots`` (5) real spam
  messages of the train split drawn by seed (what ``nlpgd generate --shots`` does);
- ``lora``: SmolLM2 with LoRA adapters, trained class-conditionally on spam and ham with the
  ``lora`` model of configs/generate_smollm2.yaml (its CPU-sized subset included).

For each: ``--n`` spam samples, then realism against the held-out spam of ``--against`` (the
two-sample AUC with its 95% cross-validation interval, on equal counts; the perplexity ratio
under SmolLM2 with a bootstrap interval), label fidelity under naive Bayes trained on the real
train split, exact copies and 8-gram overlaps with the train split, and seconds (training,
sampling). Tune with ``--against validation``; report with ``--against test``.

Data: the UCI SMS Spam Collection, exact duplicates removed, stratified with split seed 0 into
train / validation / test of 60 / 10 / 30 % (``--validation-size``, ``--test-size``): the test
split holds about 200 spam messages, the size of the sample set.

    .venv/bin/python benchmarks/bench_generation_pretrained.py                                   # all four, vs test
    .venv/bin/python benchmarks/bench_generation_pretrained.py --arms lora --against validation \\
        --save-dir /tmp/lora --sampling lora:temperature=0.9,top_p=0.9                  # tuning
    .venv/bin/python benchmarks/bench_generation_pretrained.py --arms lora --load-dir /tmp/lora --against validation
    .venv/bin/python benchmarks/bench_generation_pretrained.py --null-coverage 30   # the AUC interval's coverage

Measured: see the README's "Synthetic messages" section and benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see bench_gpt2.py
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

SMS = REPO.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"
ARMS = ("scratch", "zero_shot", "in_context", "lora")
MEDIUM = "SMS text message"


def load() -> str:
    return "load avg %.2f/%.2f/%.2f" % os.getloadavg()


def parse_value(v: str):
    try:
        return json.loads(v)
    except json.JSONDecodeError:
        return v


def sampling_args(items: list[str]) -> dict[str, dict]:
    """``ARM:key=value,key=value`` items -> ``{arm: {key: value}}``."""
    out: dict[str, dict] = {}
    for item in items:
        arm, _, kvs = item.partition(":")
        out.setdefault(arm, {}).update({k: parse_value(v) for k, v in (kv.split("=", 1) for kv in kvs.split(","))})
    return out


def lora_params(config: Path, overrides: list[str]):
    """The ``lora`` model of ``config`` with ``KEY=VALUE`` overrides (dotted keys allowed)."""
    from nlpgd.config import apply_overrides, config_from_dict, read_yaml

    data = read_yaml(config)
    data = apply_overrides(data, [f"models.lora.{kv}" for kv in overrides])
    return config_from_dict(data, where=str(config)).models["lora"]


def splits(args):
    from nlpgd.config import DataConfig
    from nlpgd.data import prepare

    cfg = DataConfig(
        source="uci_sms",
        path=str(args.data),
        validation_size=args.validation_size,
        test_size=args.test_size,
        split_seed=0,
    )
    data = prepare(cfg)
    return {s: (data.texts(s), data.labels(s)) for s in ("train", "validation", "test")}


def fit_arm(arm: str, args, data, shared: dict):
    """The fitted generator of ``arm`` and its training seconds (0 when loaded or as is)."""
    from nlpgd.models.base import FitContext
    from nlpgd.models.gpt2 import GPT2Classifier
    from nlpgd.models.registry import load_model
    from nlpgd.params import GPT2Params

    if arm in ("zero_shot", "in_context"):
        if "as_is" not in shared:
            m = GPT2Classifier(GPT2Params(checkpoint="smollm2", epochs=0, lowercase=False, max_length=64))
            m.progress = False
            t0 = time.perf_counter()
            shared["as_is"] = (
                m.fit(*data["train"], FitContext(seed=args.seed, progress=False)),
                time.perf_counter() - t0,
            )
        return shared["as_is"]
    saved = args.load_dir / arm if args.load_dir else None
    if saved is not None and saved.is_dir():
        m = load_model(saved)
        m.progress = False
        return m, 0.0
    params = GPT2Params() if arm == "scratch" else lora_params(args.config, args.set)
    m = GPT2Classifier(params)
    m.progress = False
    ctx = FitContext(seed=args.seed, validation=data["validation"], progress=args.progress, name=arm)
    t0 = time.perf_counter()
    m.fit(*data["train"], ctx)
    train_s = time.perf_counter() - t0
    if args.save_dir:
        m.save(args.save_dir / arm)
    return m, train_s


def sample_arm(arm: str, model, args, data, sampling: dict) -> list[str]:
    from nlpgd.generation import draw_shots, instruction

    options = {"max_new_tokens": 64, **sampling}
    if arm in ("zero_shot", "in_context"):
        k = args.shots if arm == "in_context" else 0
        pool = [t for t, y in zip(*data["train"]) if y == "spam"]
        options["chat"] = [
            instruction("spam", [pool[j] for j in d], MEDIUM) for d in draw_shots(len(pool), k, args.n, args.seed)
        ]
    return model.generate("spam", args.n, seed=args.seed, progress=False, **options)


def measure(samples: list[str], real: list[str], train: list[str], nb, ref, seed: int) -> dict:
    from nlpgd.generation import copy_share, distinct_n, ngram_overlap_share
    from nlpgd.realism import perplexity_ratio, two_sample_test

    auc = two_sample_test(samples, real, seed=seed)
    (ll_s, n_s), (ll_r, n_r) = ref.score(samples), ref.score(real)
    ppl = perplexity_ratio(ll_s, n_s, ll_r, n_r, seed=seed)
    return {
        "auc": auc,
        "ppl": ppl,
        "nb_fidelity": float((nb.predict(samples) == "spam").mean()),
        "copies": copy_share(samples, train),
        "overlap8": ngram_overlap_share(samples, train),
        "distinct2": distinct_n(samples, 2),
        "words": statistics.fmean(len(s.split()) for s in samples),
        "real_words": statistics.fmean(len(s.split()) for s in real),
    }


def table(rows: list[dict], against: str, n_real: int) -> str:
    head = (
        f"| generator | two-sample AUC vs {against} spam [95% CI] | perplexity ratio [95% CI] | NB says spam | "
        "copies | 8-gram overlap | distinct-2 | words (real) | train s | sample s |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        a, p = r["auc"], r["ppl"]
        lines.append(
            f"| {r['arm']} | {a['auc']:.3f} [{a['ci_low']:.3f}, {a['ci_high']:.3f}] ({a['n_per_side']} each) "
            f"| {p['ratio']:.2f} [{p['ci_low']:.2f}, {p['ci_high']:.2f}] | {r['nb_fidelity']:.1%} | {r['copies']:.1%} "
            f"| {r['overlap8']:.1%} | {r['distinct2']:.3f} | {r['words']:.1f} ({r['real_words']:.1f}) "
            f"| {r['train_s']:.0f} | {r['sample_s']:.0f} ({r['n']}) |"
        )
    return "\n".join(lines) + f"\n\n(real side: {n_real} held-out spam messages of the {against} split)"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    ap.add_argument("--n", type=int, default=200, help="spam samples per generator")
    ap.add_argument("--seed", type=int, default=0, help="training and sampling seed")
    ap.add_argument("--shots", type=int, default=5, help="real examples per in-context instruction")
    ap.add_argument(
        "--against", choices=("validation", "test"), default="test", help="the held-out spam to compare with"
    )
    ap.add_argument("--data", type=Path, default=SMS)
    ap.add_argument("--validation-size", type=float, default=0.1)
    ap.add_argument("--test-size", type=float, default=0.3)
    ap.add_argument("--config", type=Path, default=REPO / "configs" / "generate_smollm2.yaml", help="its 'lora' model")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a LoRA-model setting")
    ap.add_argument("--sampling", action="append", default=[], metavar="ARM:KEY=VALUE,...", help="sampling settings")
    ap.add_argument("--save-dir", type=Path, help="save the trained generators to SAVE_DIR/<arm>")
    ap.add_argument("--load-dir", type=Path, help="load trained generators from LOAD_DIR/<arm> instead of training")
    ap.add_argument("--show", type=int, default=3, help="samples to print per generator")
    ap.add_argument("--json", type=Path, help="also write the figures as JSON")
    ap.add_argument("--progress", action="store_true")
    ap.add_argument("--null-coverage", type=int, default=0, metavar="DRAWS", help="only check the AUC interval")
    args = ap.parse_args()
    if args.null_coverage:
        from bench_generation import null_coverage  # one check for both benchmarks (this folder is on sys.path)

        return null_coverage(args, args.data)

    import logging

    import torch

    from nlpgd.models.lm_scoring import ReferenceLM
    from nlpgd.models.naive_bayes import NaiveBayesClassifier

    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for noisy in ("transformers", "datasets", "httpx", "nlpgd.models.hf_base"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    arms = [a for a in args.arms.split(",") if a]
    unknown = set(arms) - set(ARMS)
    if unknown:
        ap.error(f"unknown arms: {', '.join(sorted(unknown))}")
    sampling = sampling_args(args.sampling)
    data = splits(args)
    real = [t for t, y in zip(*data[args.against]) if y == "spam"]
    train = data["train"][0]
    print(
        f"data: train {len(train)} ({data['train'][1].count('spam')} spam), validation {len(data['validation'][0])}, "
        f"test {len(data['test'][0])}; real side: {len(real)} {args.against} spam; torch threads "
        f"{torch.get_num_threads()}; {load()}",
        flush=True,
    )
    nb = NaiveBayesClassifier().fit(*data["train"])
    t0 = time.perf_counter()
    ref = ReferenceLM("smollm2")
    print(f"reference LM loaded in {time.perf_counter() - t0:.1f} s", flush=True)
    rows, shared = [], {}
    for arm in arms:
        model, train_s = fit_arm(arm, args, data, shared)
        t0 = time.perf_counter()
        samples = sample_arm(arm, model, args, data, sampling.get(arm, {}))
        sample_s = time.perf_counter() - t0
        row = {
            "arm": arm,
            "n": len(samples),
            "train_s": train_s,
            "sample_s": sample_s,
            "sampling": sampling.get(arm, {}),
        }
        row.update(measure(samples, real, train, nb, ref, args.seed))
        rows.append(row)
        print(
            f"{arm}: trained {train_s:.0f} s, {len(samples)} samples in {sample_s:.0f} s, AUC {row['auc']['auc']:.3f}, "
            f"perplexity ratio {row['ppl']['ratio']:.2f} ({load()})",
            flush=True,
        )
        for s in samples[: args.show]:
            print("   sample:", s[:160].replace("\n", " / "))
        row["samples_head"] = samples[:20]
    print()
    print(table(rows, args.against, len(real)))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1, ensure_ascii=False))


if __name__ == "__main__":
    main()
