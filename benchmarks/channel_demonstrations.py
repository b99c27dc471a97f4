"""Exploration on the SpamAssassin validation split only (never test): why 16 demonstrations collapse
the channel score. Per setting: ROC-AUC, the spread of the score difference log P(x | spam line) -
log P(x | ham line), its correlation with the zero-shot difference, the context length.

Run with ``PYTHONPATH=. .venv/bin/python benchmarks/channel_demonstrations.py [pair] [n]``."""

import sys
import time

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

sys.path.insert(0, "benchmarks")
import bench_channel as B

from nlpgd.config import DataConfig
from nlpgd.data import load_splits
from nlpgd.models import channel as C
from nlpgd.models.base import FitContext
from nlpgd.models.gpt2 import GPT2Classifier
from nlpgd.params import GPT2Params

torch.set_num_threads(1)
pair = sys.argv[1] if len(sys.argv) > 1 else "plain"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 100
d = load_splits(DataConfig(source="spamassassin"))
texts, labels = B.balanced_sample(d.texts("validation"), d.labels("validation"), n)
y = np.array([lab == "spam" for lab in labels])
base = None
for k, dt in [(0, 32), (16, 32), (16, 64)]:
    c0 = time.process_time()
    m = GPT2Classifier(
        GPT2Params(
            checkpoint="smollm2",
            epochs=0,
            prompts=pair,
            demonstrations=k,
            demonstration_tokens=dt,
            lowercase=False,
            max_length=64,
            eval_batch_size=16,
        )
    )
    m.progress = False
    m.fit(d.texts("train"), d.labels("train"), FitContext(seed=0, progress=False))
    ll = m.class_log_likelihoods(texts, list(m.classes_))
    delta = ll[:, list(m.classes_).index("spam")] - ll[:, list(m.classes_).index("ham")]
    if base is None:
        base = delta
    ctx = C.classifier_contexts(m, m.channel_)
    print(
        f"{pair} k={k} demo_tokens={dt}: context {len(ctx['spam'])} tokens | validation ROC-AUC "
        f"{roc_auc_score(y, delta):.3f} | delta mean {delta.mean():+.2f} sd {delta.std():.2f} "
        f"(spam {delta[y].mean():+.2f}, ham {delta[~y].mean():+.2f}) | corr with zero-shot "
        f"{np.corrcoef(base, delta)[0, 1]:.2f} | mean log P(x|ham) {ll[:, list(m.classes_).index('ham')].mean():.1f} "
        f"| {time.process_time() - c0:.0f} CPU s",
        flush=True,
    )
