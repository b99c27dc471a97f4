"""Label-free zero-shot channel variants, scored on the VALIDATION split only (issue 17 §3).

Every variant below was written down here, and committed, before any of them was scored. Each
scores a message ``x`` by a log-odds ``s(x)`` (higher: spam) built from per-token
log-probabilities of the message after a class's prompt, ``lp_p(t) = log P(x_t | prompt p,
x_<t)``, with ``S_p(N) = sum_{t < N} lp_p(t)`` (the first ``N`` message tokens; the message as
``nlpgd`` tokenizes it, not lowercased):

- ``pair:<name>@N``: one written-down pair of ``PROMPT_PAIRS``, ``S_spam(N) - S_ham(N)`` (the
  current classifier at ``max_length: N``; ``@64`` is today's setting);
- ``mixture@N``: each class's likelihood is the mean over its K written descriptions (the
  distinct prompts of that class across all pairs), ``logsumexp_k S_k(N) - log K``, spam minus
  ham (a mixture of descriptions: the message needs to fit one of them);
- ``ensemble@N``: the mean over the pairs of each pair's log-odds (a product of experts);
- ``...@subject``: the same scores on the message's first line only (the text before its first
  newline: SpamAssassin's messages are ``Subject\\nbody``; an SMS rarely has a newline, so there
  it is mostly the whole message), cut at 64 tokens.

N is 16, 32 or 64. Validation sample: the balanced sample of ``bench_channel.balanced_sample``
(seed 0, at most n/2 per class) with n = 200 on both corpora. The rule, also written before
scoring: per corpus the variant with the highest validation ROC-AUC is the candidate; the
paired bootstrap difference against that corpus's incumbent (SMS ``pair:chat@64``, SpamAssassin
``pair:plain@64``) is printed beside it; test is never read here.

Run with ``PYTHONPATH=. nice -n 19 .venv/bin/python benchmarks/channel_variants.py sms|spamassassin``;
the per-token log-probabilities are kept in ``outputs/channel_variants/<corpus>_<view>.npz``.

Follow-up, written down after the run above (which found 64 tokens better than 32 and 16 on both
corpora, and no variant above the incumbents) and before scoring it: if the per-token lean of
the incumbent pair persists beyond 64 tokens, summing more of it should help where messages are
long. ``--longer`` scores the incumbent pair alone at N = 64, 128 and 256 (``LONGER``) on the
same validation sample; same rule (test not read here).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.special import logsumexp
from sklearn.metrics import roc_auc_score

sys.path.insert(0, str(Path(__file__).resolve().parent))
import bench_channel as B  # noqa: E402

from nlpgd.data import load_splits  # noqa: E402
from nlpgd.models import channel as C  # noqa: E402
from nlpgd.models.base import FitContext  # noqa: E402
from nlpgd.models.gpt2 import GPT2Classifier  # noqa: E402
from nlpgd.models.lm_scoring import ContextCache, padded_batch  # noqa: E402
from nlpgd.params import GPT2Params  # noqa: E402
from nlpgd.params.gpt2 import PROMPT_PAIRS  # noqa: E402
from nlpgd.stats import bootstrap_ci  # noqa: E402

NS = (16, 32, 64)
N_VALIDATION = 200
INCUMBENT = {"sms": "pair:chat@64", "spamassassin": "pair:plain@64"}
LONGER = (64, 128, 256)
OUT = Path("outputs/channel_variants")


def distinct_prompts(label: str) -> list[str]:
    """The class's written descriptions: its distinct prompts across all pairs, in pair order."""
    return list(dict.fromkeys(pair[label] for pair in PROMPT_PAIRS.values()))


def token_logprobs(
    lm, context: list[int], bodies: list[list[int]], filler: int, tokens: int = 1024
) -> list[np.ndarray]:
    """``lp(t)`` of every token of each body after ``context`` (its cache computed once), in
    batches of about ``tokens`` body tokens (the logits of a batch are tokens x 49,152 floats)."""
    batch = max(1, tokens // max(1, max(map(len, bodies))))
    out: list[np.ndarray] = [np.zeros(0)] * len(bodies)
    order = sorted((i for i in range(len(bodies)) if bodies[i]), key=lambda i: len(bodies[i]))
    with torch.inference_mode():
        cache = ContextCache(lm, context)
        for k in range(0, len(order), batch):
            idx = order[k : k + batch]
            ids, _ = padded_batch([bodies[i] for i in idx], filler, None)
            logits = lm(input_ids=ids, use_cache=True, **{cache.argument: cache.expanded(len(idx))}).logits
            logp = torch.log_softmax(logits.float(), dim=-1)
            for r, i in enumerate(idx):
                n = len(bodies[i])
                rest = logp[r, torch.arange(n - 1), ids[r, 1:n]] if n > 1 else torch.zeros(0)
                out[i] = np.concatenate([[float(cache.first_logp[ids[r, 0]])], rest.double().numpy()])
    return out


def scores(lp: dict[str, list[np.ndarray]], n: int | None) -> dict[str, np.ndarray]:
    """Every variant's log-odds from the per-token log-probabilities (first ``n`` tokens)."""
    S = {p: np.array([a[:n].sum() for a in arrs]) for p, arrs in lp.items()}
    out = {f"pair:{name}": S[pair["spam"]] - S[pair["ham"]] for name, pair in PROMPT_PAIRS.items()}
    mix = {
        c: logsumexp([S[p] for p in distinct_prompts(c)], axis=0) - np.log(len(distinct_prompts(c))) for c in S_CLASSES
    }
    out["mixture"] = mix["spam"] - mix["ham"]
    out["ensemble"] = np.mean([out[f"pair:{name}"] for name in PROMPT_PAIRS], axis=0)
    return out


S_CLASSES = ("spam", "ham")


def paired_delta(y: np.ndarray, a: np.ndarray, b: np.ndarray, n_resamples: int = 1000) -> tuple[float, float, float]:
    """ROC-AUC(a) - ROC-AUC(b) on the same messages, with a 95% paired bootstrap interval."""
    rng = np.random.default_rng(0)
    d = []
    for _ in range(n_resamples):
        i = rng.integers(0, len(y), len(y))
        if y[i].min() != y[i].max():
            d.append(roc_auc_score(y[i], a[i]) - roc_auc_score(y[i], b[i]))
    return roc_auc_score(y, a) - roc_auc_score(y, b), *np.percentile(d, [2.5, 97.5])


def setup(corpus: str):
    """The validation sample, its labels (1 = spam) and the loaded classifier (plain, 64 tokens)."""
    torch.set_num_threads(1)
    data = load_splits(B.data_config(corpus, B.SMS))
    texts, labels = B.balanced_sample(data.texts("validation"), data.labels("validation"), N_VALIDATION)
    y = np.array([lab == "spam" for lab in labels], dtype=int)
    print(f"{corpus} validation: {len(y)} messages ({y.sum()} spam); torch threads 1", flush=True)
    params = GPT2Params(checkpoint="smollm2", epochs=0, prompts="plain", lowercase=False, max_length=64)
    clf = GPT2Classifier(params)
    clf.progress = False
    clf.fit(data.texts("train"), data.labels("train"), FitContext(seed=0, progress=False))
    return texts, y, clf


def report(table: dict[str, np.ndarray], y: np.ndarray, incumbent: str) -> None:
    """Each variant's validation ROC-AUC with its interval and its paired difference to ``incumbent``."""
    for name, s in sorted(table.items(), key=lambda kv: -roc_auc_score(y, kv[1])):
        d, lo, hi = paired_delta(y, s, table[incumbent])
        auc = bootstrap_ci(y, s, names=("roc_auc",), n_resamples=1000)["roc_auc"]
        print(
            f"{name:24s} ROC-AUC {auc['point']:.3f} [{auc['ci_low']:.3f}, {auc['ci_high']:.3f}] | "
            f"vs {incumbent} {d:+.3f} [{lo:+.3f}, {hi:+.3f}]",
            flush=True,
        )


def longer(corpus: str) -> None:
    """The incumbent pair alone at N = 64, 128, 256 tokens."""
    texts, y, clf = setup(corpus)
    name = INCUMBENT[corpus].split(":")[1].split("@")[0]
    bodies = [ids[: max(LONGER)] for ids in clf.encode(texts)]
    print(f"  tokens per message: median {np.median([len(b) for b in bodies]):.0f} (cut at {max(LONGER)})")
    lp = {}
    for c in S_CLASSES:
        c0 = time.process_time()
        context = C.Channel({"x": PROMPT_PAIRS[name][c]}).contexts(clf.tokenizer_, clf.encode, 32)["x"]
        lp[c] = token_logprobs(C._lm(clf), context, bodies, clf.eos_id_)
        print(f"  scored under the {c} prompt of {name}: {time.process_time() - c0:.0f} CPU s", flush=True)
    table = {
        f"pair:{name}@{n}": np.array([a[:n].sum() - b[:n].sum() for a, b in zip(lp["spam"], lp["ham"])]) for n in LONGER
    }
    report(table, y, INCUMBENT[corpus])


def main(corpus: str) -> None:
    texts, y, clf = setup(corpus)
    lm, tok = C._lm(clf), clf.tokenizer_
    views = {
        "": [ids[:64] for ids in clf.encode(texts)],
        "subject": [ids[:64] for ids in clf.encode([t.split("\n", 1)[0] for t in texts])],
    }
    prompts = list(dict.fromkeys(p for c in S_CLASSES for p in distinct_prompts(c)))
    OUT.mkdir(parents=True, exist_ok=True)
    table: dict[str, np.ndarray] = {}
    for view, bodies in views.items():
        lp = {}
        for p in prompts:
            c0 = time.process_time()
            context = C.Channel({"x": p}).contexts(tok, clf.encode, 32)["x"]
            lp[p] = token_logprobs(lm, context, bodies, clf.eos_id_)
            print(f"  scored {view or 'message'} under {p!r}: {time.process_time() - c0:.0f} CPU s", flush=True)
        arrays = {f"prompt{i}": np.concatenate(lp[p]) for i, p in enumerate(prompts)}
        np.savez(OUT / f"{corpus}_{view or 'message'}.npz", y=y, lengths=[len(b) for b in bodies], **arrays)
        for n in NS if not view else (None,):
            for name, s in scores(lp, n).items():
                table[f"{name}@{n if n else view}"] = s
        if not view:  # the per-token sums are the classifier's own scores (prompts: plain, max_length: 64)
            ll = clf.class_log_likelihoods(texts[:8], ["spam", "ham"])
            check = np.abs((ll[:, 0] - ll[:, 1]) - table["pair:plain@64"][:8]).max()
            print(f"  check: pair:plain@64 vs the classifier on 8 messages, max |diff| {check:.1e}", flush=True)
    report(table, y, INCUMBENT[corpus])


if __name__ == "__main__":
    (longer if "--longer" in sys.argv else main)(next((a for a in sys.argv[1:] if not a.startswith("--")), "sms"))
