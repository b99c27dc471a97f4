"""GPU figures of the neural arms, measured against the card's own ceiling (issue 20 §4).

One prepared script for one GPU, under 8 minutes on an H100/H200-class card. It prints, and
writes as JSON (``--out``):

1. **the ceiling**: the card's dense bf16 peak from its datasheet (by name; none for a card
   not in the table) and a plain ``torch.matmul`` in bf16 measured in the same run, square
   (8192^3) and at the shapes of a GPT-2 124M training step (tokens x 768 x 3072 and
   tokens x 768 x 50257);
2. **training GPT-2 124M** (12 layers x 768, 12 heads, vocabulary 50,257, 124.4M parameters)
   from scratch as the class-conditional LM, 96 tokens a row: a plain loop (bf16 autocast, SDPA
   attention, fused AdamW), eager and under ``torch.compile``, tokens per second and model
   FLOPs utilisation (MFU: 6 x parameters without the position table x tokens, plus the
   attention's 12 x layers x width x tokens x length, over the datasheet peak); token ids are
   drawn at random (the cost does not depend on which tokens they are);
3. **the nlpgd arms on the SMS Spam Collection** (``--data``), through their own code
   (``GPT2Classifier.fit`` on the Trainer, bf16 chosen by nlpgd's hardware setting): the
   class-conditional LM at 12 x 768 with its BPE vocabulary learned on the train split, and
   the hybrid (generative + discriminative term, every class's pass in each step): seconds
   per epoch (the Trainer's train runtime less its validation passes), message tokens per
   second, MFU; MiniLM (the ``all-MiniLM-L6-v2`` architecture, 6 x 384, from a config folder
   given by ``--minilm``, its weights initialised at random when the folder has none: speed
   does not depend on their values) fine-tuned by the encoder arm: seconds per epoch;
4. **scoring at 96 tokens**: messages per second through nlpgd's scoring code (length-sorted
   batches, ``torch.inference_mode``, bf16 autocast, SDPA): GPT-2 124M (both classes) on SMS
   test messages repeated to ``--score-n`` (their own lengths, at most 96 tokens) and on
   rows of exactly 96 tokens (the worst case), eager and compiled; the trained 12 x 768 arm
   and MiniLM through ``predict_log_joint`` / ``predict_proba``.

    python benchmarks/bench_gpu.py --data path/to/SMSSpamCollection --minilm path/to/minilm --out gpu.json
    python benchmarks/bench_gpu.py --quick     # a CPU smoke run at toy sizes (figures mean nothing)

It asserts nothing; the README's benchmark table records what it printed, with the date.
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
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

#: dense bf16 tensor-core peak from each vendor datasheet, TFLOP/s (without sparsity)
DATASHEET_BF16 = {"H200": 989.4, "H100 SXM": 989.4, "H100 80GB HBM3": 989.4, "H100 PCIe": 756.0, "A100": 312.0}
RESULTS: dict = {}


def say(key: str, text: str, **numbers) -> None:
    RESULTS[key] = numbers
    print(f"{key}: {text}", flush=True)


def peak_tflops(name: str) -> float | None:
    return next((v for k, v in DATASHEET_BF16.items() if k in name), None)


def timed(fn, *, warmup: int, reps: int, cuda: bool) -> float:
    """Median seconds of ``fn()`` over ``reps`` calls after ``warmup`` (CUDA events on a GPU)."""
    import torch

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(reps):
        if cuda:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            torch.cuda.synchronize()
            times.append(start.elapsed_time(end) / 1e3)
        else:
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def matmul_ceiling(shapes, dev, quick: bool) -> dict:
    import torch

    out = {}
    for m, k, n in shapes:
        a = torch.randn(m, k, device=dev, dtype=torch.bfloat16)
        b = torch.randn(k, n, device=dev, dtype=torch.bfloat16)
        s = timed(lambda a=a, b=b: a @ b, warmup=2 if quick else 5, reps=3 if quick else 20, cuda=dev.type == "cuda")
        out[f"{m}x{k}x{n}"] = 2 * m * k * n / s / 1e12
    return out


def gpt2_124m(vocab: int, n_positions: int, layers: int, width: int):
    from transformers import GPT2Config, GPT2LMHeadModel

    cfg = GPT2Config(
        vocab_size=vocab, n_positions=n_positions, n_embd=width, n_layer=layers, n_head=max(1, width // 64)
    )
    return GPT2LMHeadModel(cfg)


def flops_per_token(model, length: int) -> float:
    """Training FLOPs per token (forward + backward): 6 x parameters without the position table
    (the tied embedding counts once, as the output layer's matrix) + attention 12 x L x d x T."""
    cfg = model.config
    n = sum(p.numel() for p in model.parameters()) - model.transformer.wpe.weight.numel()
    return 6 * n + 12 * cfg.n_layer * cfg.n_embd * length


def train_loop(model, dev, *, batch: int, length: int, steps: int, compiled: bool, quick: bool) -> dict:
    """Tokens per second of plain training steps (bf16 autocast, fused AdamW on CUDA)."""
    import torch

    model.to(dev).train()
    opt = torch.optim.AdamW(model.parameters(), lr=3e-4, fused=dev.type == "cuda")
    step_model = torch.compile(model) if compiled else model
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab, (batch, length), device=dev)
    cuda = dev.type == "cuda"

    def step():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=cuda):
            loss = step_model(input_ids=ids, labels=ids).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    t0 = time.perf_counter()
    step()  # the first step (compilation, if any) is timed apart
    if cuda:
        torch.cuda.synchronize()
    first = time.perf_counter() - t0
    s = timed(step, warmup=2 if quick else 3, reps=steps, cuda=cuda)
    return {"tokens_per_s": batch * length / s, "first_step_s": first, "step_s": s}


def load_sms(path: Path):
    from nlpgd.config import DataConfig
    from nlpgd.data import load_splits

    data = load_splits(DataConfig(source="uci_sms", path=str(path)))
    tr, va, te = (data.texts(s) for s in ("train", "validation", "test"))
    return tr, data.labels("train"), va, data.labels("validation"), te


def train_seconds(model) -> float:
    """The Trainer's train runtime less its validation passes, summed over the model's fits."""
    total = 0.0
    for history in model.trainer_logs_.values():
        total += sum(h.get("train_runtime", 0.0) for h in history)
        total -= sum(h.get("eval_runtime", 0.0) for h in history)
    return total


def message_tokens(model, texts, max_length: int) -> int:
    """Tokens the class-conditional LM trains on per epoch: label token, message, end token."""
    return sum(min(len(ids) + 2, max_length) for ids in model.encode(texts))


def arm_gpt2(args, sms, peak, *, hybrid: bool) -> dict:
    from nlpgd.models.base import FitContext
    from nlpgd.models.gpt2 import GPT2Classifier
    from nlpgd.params import GPT2Params

    tr, ytr, va, yva, te = sms
    width, layers = (64, 2) if args.quick else (768, 12)
    params = GPT2Params(
        checkpoint="scratch",
        n_layer=layers,
        n_embd=width,
        n_head=max(1, width // 64),
        vocab_size=1000 if args.quick else 50257,
        n_positions=128,
        max_length=96,
        batch_size=args.train_batch,
        eval_batch_size=args.score_batch,
        epochs=args.epochs,
        learning_rate=3e-4,
        class_balance=0,
        early_stopping_patience=None,
        **({"generative_weight": 1.0, "discriminative_weight": 1.0} if hybrid else {}),
    )
    model = GPT2Classifier(params)
    t0 = time.perf_counter()
    model.fit(tr, ytr, FitContext(seed=0, validation=(va, yva), progress=False))
    wall = time.perf_counter() - t0
    lm = next(iter(model.lms_.values()))
    tokens = message_tokens(model, tr, 96) * args.epochs
    secs = train_seconds(model)
    passes = len(model.classes_) if hybrid else 1  # the hybrid runs every class's pass each step
    mfu = flops_per_token(lm, 96) * tokens * passes / secs / 1e12 / peak if peak else None
    return {
        "model": model,
        "shape": f"{lm.config.n_layer} x {lm.config.n_embd}",
        "wall_s": wall,
        "train_s": secs,
        "epoch_s": secs / args.epochs,
        "tokens_per_s": tokens / secs,
        "params": model.n_parameters(),
        "vocab": lm.config.vocab_size,
        "mfu": mfu,
    }


def arm_scoring(model, texts) -> float:
    import torch

    model.predict_log_joint(texts[:256])  # warm-up: kernels, allocator
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    model.predict_log_joint(texts)
    return len(texts) / (time.perf_counter() - t0)


def lm_scoring_rate(lm, rows, *, batch: int, compiled: bool) -> float:
    """Messages per second of nlpgd's scoring loop over ``rows`` (both classes: each message is
    scored behind two label tokens)."""
    import torch

    from nlpgd.models.lm_scoring import ScoreJob, on_device, score_jobs

    lm = on_device(lm)
    if compiled:
        lm.forward = torch.compile(lm.forward, dynamic=True)
    other = [[1, *r[1:]] for r in rows]
    score_jobs([ScoreJob(lm, [rows[:batch], other[:batch]])], filler_id=0, batch_size=batch)  # warm-up
    if torch.cuda.is_available():
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    score_jobs([ScoreJob(lm, [rows, other])], filler_id=0, batch_size=batch)
    return len(rows) / (time.perf_counter() - t0)


def minilm_folder(args) -> str:
    """A folder the encoder arm loads: ``--minilm`` as it is when it has weights, else its
    config and tokenizer with weights initialised at random (written once under ``--work``)."""
    from transformers import AutoConfig, AutoModel

    src = Path(args.minilm)
    if any(src.glob("*.safetensors")):
        return str(src)
    dst = Path(args.work) / "minilm-random"
    if not dst.exists():
        import shutil

        shutil.copytree(src, dst)
        cfg = AutoConfig.from_pretrained(dst)
        if args.quick:
            cfg.num_hidden_layers, cfg.hidden_size, cfg.intermediate_size, cfg.num_attention_heads = 1, 64, 128, 2
        AutoModel.from_config(cfg).save_pretrained(dst)
    return str(dst)


def arm_minilm(args, sms) -> dict:
    import numpy as np

    from nlpgd.models.base import FitContext
    from nlpgd.models.distilbert import DistilBertClassifier
    from nlpgd.params import DistilBertParams

    tr, ytr, va, yva, te = sms
    params = DistilBertParams(
        checkpoint=minilm_folder(args),
        max_length=96,
        epochs=args.epochs,
        batch_size=args.train_batch,
        eval_batch_size=args.score_batch,
        learning_rate=5e-5,
        early_stopping_patience=None,
    )
    model = DistilBertClassifier(params)
    t0 = time.perf_counter()
    model.fit(tr, ytr, FitContext(seed=0, validation=(va, yva), progress=False))
    wall = time.perf_counter() - t0
    secs = train_seconds(model)
    texts = list(np.resize(np.array(te, dtype=object), args.score_n))
    model.predict_proba(texts[:256])
    t0 = time.perf_counter()
    model.predict_proba(texts)
    rate = len(texts) / (time.perf_counter() - t0)
    return {"wall_s": wall, "epoch_s": secs / args.epochs, "params": model.n_parameters(), "score_msg_per_s": rate}


def section_ceiling(dev, name: str, quick: bool) -> float | None:
    peak = peak_tflops(name)
    t = 512 if quick else 32 * 96
    shapes = [(1024, 1024, 1024)] if quick else [(8192, 8192, 8192), (t * 8, 768, 3072), (t * 8, 768, 50257)]
    mm = matmul_ceiling(shapes, dev, quick)
    shown = ", ".join(f"{k} {v:.0f}" for k, v in mm.items())
    say(
        "ceiling",
        f"datasheet dense bf16 {peak or 'unknown'} TFLOP/s; torch.matmul bf16 measured (TFLOP/s): {shown}",
        datasheet_tflops=peak,
        matmul_tflops=mm,
    )
    return peak


def section_train_124m(args, dev, peak) -> None:
    layers, width, vocab = (2, 64, 1000) if args.quick else (12, 768, 50257)
    for batch in args.loop_batches:
        for compiled in (False, True) if args.compile and batch == max(args.loop_batches) else (False,):
            model = gpt2_124m(vocab, 1024, layers, width)
            n = sum(p.numel() for p in model.parameters())
            r = train_loop(model, dev, batch=batch, length=96, steps=args.steps, compiled=compiled, quick=args.quick)
            fpt = flops_per_token(model, 96)
            mfu = fpt * r["tokens_per_s"] / 1e12 / peak if peak else None
            mfu_text = f"{100 * mfu:.1f}%" if mfu is not None else "n/a (no datasheet peak)"
            mode = "compiled" if compiled else "eager"
            say(
                f"train_124m_b{batch}_{mode}",
                f"GPT-2 {n / 1e6:.1f}M ({model.config._attn_implementation} attention), {batch} x 96 tokens, {mode}: "
                f"{r['tokens_per_s']:,.0f} tokens/s, "
                f"{r['step_s'] * 1e3:.1f} ms/step (first step {r['first_step_s']:.1f} s), MFU {mfu_text}",
                params=n,
                mfu=mfu,
                attention=model.config._attn_implementation,
                **r,
            )
            del model


def section_score_124m(args, sms) -> None:
    import numpy as np

    layers, width, vocab = (2, 64, 1000) if args.quick else (12, 768, 50257)
    rng = np.random.default_rng(0)
    te = sms[4]
    lengths = [
        min(96, 2 + max(1, len(t.split()) * 4 // 3)) for t in np.resize(np.array(te, dtype=object), args.score_n)
    ]
    real_rows = [[2, *rng.integers(3, vocab, n - 1).tolist()] for n in lengths]
    full_rows = [[2, *rng.integers(3, vocab, 95).tolist()] for _ in range(args.score_n)]
    for label, rows in (("sms_lengths", real_rows), ("all_96", full_rows)):
        for compiled in (False, True) if args.compile and label == "sms_lengths" else (False,):
            rate = lm_scoring_rate(
                gpt2_124m(vocab, 1024, layers, width), rows, batch=args.score_batch, compiled=compiled
            )
            mode = "compiled" if compiled else "eager"
            say(
                f"score_124m_{label}_{mode}",
                f"GPT-2 124M scoring, both classes, {label.replace('_', ' ')} "
                f"(mean {np.mean([len(r) for r in rows]):.0f} "
                f"tokens), {mode}: {rate:,.0f} messages/s",
                msg_per_s=rate,
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection")
    ap.add_argument("--minilm", type=Path, help="a MiniLM folder (config + tokenizer; weights optional)")
    ap.add_argument("--work", type=Path, default=Path("/tmp/nlpgd-bench-gpu"))
    ap.add_argument("--out", type=Path)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--train-batch", type=int, default=64)
    ap.add_argument("--score-batch", type=int, default=512)
    ap.add_argument("--score-n", type=int, default=20_000)
    ap.add_argument("--loop-batches", type=int, nargs="+", default=[64, 256, 512])
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--no-compile", dest="compile", action="store_false")
    ap.add_argument("--skip", nargs="*", default=[], choices=["loop", "score", "gpt2", "hybrid", "minilm"])
    ap.add_argument("--quick", action="store_true", help="toy sizes, for a CPU smoke run")
    args = ap.parse_args()
    if args.quick:
        args.score_n, args.steps, args.epochs, args.loop_batches = 300, 2, 1.0, [8]

    import numpy as np
    import torch

    from nlpgd.hardware import describe

    torch.backends.cuda.matmul.allow_tf32 = True
    dev = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    name = torch.cuda.get_device_name(0) if dev.type == "cuda" else "cpu"
    import transformers

    say(
        "device",
        f"{name}; torch {torch.__version__}; transformers {transformers.__version__}; nlpgd {describe()}",
        name=name,
        torch=torch.__version__,
        transformers=transformers.__version__,
        date=time.strftime("%Y-%m-%d"),
    )
    peak = section_ceiling(dev, name, args.quick)
    if "loop" not in args.skip:
        section_train_124m(args, dev, peak)
    sms = load_sms(args.data)
    if args.quick:  # a few hundred messages: the smoke run checks the code paths, not the figures
        sms = tuple(part[:300] for part in sms)
    if "score" not in args.skip:
        section_score_124m(args, sms)
    for hybrid in (False, True):
        if ("hybrid" if hybrid else "gpt2") in args.skip:
            continue
        r = arm_gpt2(args, sms, peak, hybrid=hybrid)
        model = r.pop("model")
        what = "hybrid (1 x generative + 1 x discriminative)" if hybrid else "class-conditional LM"
        mfu = f"{100 * r['mfu']:.1f}%" if r["mfu"] is not None else "n/a"
        texts = list(np.resize(np.array(sms[4], dtype=object), args.score_n))
        rate = arm_scoring(model, texts)
        say(
            "arm_hybrid" if hybrid else "arm_gpt2",
            f"nlpgd GPT-2 arm, {what}, {r['shape']} with its {r['vocab']:,}-token BPE ({r['params'] / 1e6:.1f}M): "
            f"{r['epoch_s']:.1f} s/epoch, {r['tokens_per_s']:,.0f} message tokens/s, MFU {mfu}; "
            f"fit {r['wall_s']:.1f} s "
            f"wall; scoring {rate:,.0f} messages/s (both classes)",
            score_msg_per_s=rate,
            **r,
        )
        del model
    if "minilm" not in args.skip and args.minilm:
        r = arm_minilm(args, sms)
        say(
            "arm_minilm",
            f"nlpgd encoder arm, MiniLM 6 x 384 ({r['params'] / 1e6:.1f}M): {r['epoch_s']:.1f} s/epoch "
            f"(batch {args.train_batch}), fit {r['wall_s']:.1f} s wall; scoring {r['score_msg_per_s']:,.0f} messages/s",
            **r,
        )
    if args.out:
        args.out.write_text(json.dumps(RESULTS, indent=2, default=float))


if __name__ == "__main__":
    main()
