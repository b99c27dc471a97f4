"""Multi-process smoke test of the DistilBERT classifier's training (Trainer + DDP).

Trains a tiny from-scratch model on a small synthetic two-class corpus and prints, on every
rank, its rank, the world size, the final training loss and
a checksum of the weights (equal on all ranks when DistributedDataParallel kept them in
sync)::

    torchrun --standalone --nproc_per_node 2 scripts/ddp_smoke.py      # CPU: gloo backend
    torchrun --standalone --nproc_per_node 4 scripts/ddp_smoke.py      # 4 GPUs: nccl, bf16
    accelerate launch --num_processes 2 scripts/ddp_smoke.py

A plain ``python scripts/ddp_smoke.py`` runs it as one process (world size 1).
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

SPAM = "win free prize cash claim urgent offer winner call now txt reply stop award bonus".split()
HAM = "hey lunch tomorrow meeting home later mum dinner see you soon thanks love ok".split()


def corpus(n_per_class: int, seed: int) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n_per_class):
        for label, words in (("spam", SPAM), ("ham", HAM)):
            texts.append(" ".join(rng.choice(words) for _ in range(rng.randint(4, 12))) + f" {i}")
            labels.append(label)
    return texts, labels


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n-per-class", type=int, default=64)
    ap.add_argument("--epochs", type=float, default=2.0)
    ap.add_argument("--work-dir", type=Path, default=None, help="checkpoints (default: a temp folder)")
    args = ap.parse_args()

    import torch

    from nlpgd.models.base import FitContext
    from nlpgd.models.distilbert import DistilBertClassifier
    from nlpgd.params import DistilBertParams

    texts, labels = corpus(args.n_per_class, seed=0)
    params = DistilBertParams(init="scratch", epochs=args.epochs, batch_size=8, scratch_vocab_size=500)
    model = DistilBertClassifier(params).fit(texts, labels, FitContext(seed=0, work_dir=args.work_dir, progress=False))
    dist = torch.distributed
    rank = dist.get_rank() if dist.is_available() and dist.is_initialized() else 0
    checksum = sum(float(p.detach().double().sum()) for p in model.model_.parameters())
    test_texts, test_labels = corpus(10, seed=1)
    accuracy = float((model.predict(test_texts) == test_labels).mean())
    print(
        f"rank={rank} world_size={model.world_size_} "
        f"final_loss={model.train_loss_:.4f} accuracy={accuracy:.3f} checksum={checksum:.6f}",
        flush=True,
    )
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
