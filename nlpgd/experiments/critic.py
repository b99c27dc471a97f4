"""Selection by a critic (``nlpgd generate --select K``): a hybrid use of the two families.

The generator draws ``K x n`` candidates; a discriminative *critic*, trained to tell the
run's **train-split** real messages of the class from the generator's own samples (another
draw, by another seed), scores each candidate's chance of being real, and the ``n`` it finds
most real are kept. The critic reads only the generator's per-token log-likelihood profile of
a message (:mod:`nlpgd.models.lm_profile`), never its characters or words, so the realism
judges (character and word n-grams, or sentence embeddings) are not the features it was
trained on. Real messages are cut to the generator's token window first (as its samples are),
so length alone gives nothing away. Candidates that copy a training message, or share a word
8-gram with one, are dropped before selection: a critic trained on real messages would
otherwise prefer memorised ones.

The report keeps the plain sample (the first ``n`` candidates, as plain sampling would give)
and the critic-selected one apart, and records the train ids the critic read.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np

from nlpgd.errors import NlpgdError
from nlpgd.generation import OVERLAP_N, ngrams, words

log = logging.getLogger(__name__)
CRITIC_SEED_OFFSET = 7919  # the critic's generated side is drawn apart from the candidates


@dataclass
class Selection:
    selected: list[str]
    plain: list[str]
    record: dict = field(default_factory=dict)


def check_select(select: int | None, generator, key: str) -> int | None:
    """``select`` as the candidates per kept sample (None: no selection); one sentence when it
    is below 1 or the generator cannot be a candidate source (no token-by-token LM)."""
    if select is None:
        return None
    if isinstance(select, bool) or not isinstance(select, int) or select < 1:
        raise NlpgdError(f"--select must be a whole number of candidates per kept sample, 1 or more; got {select!r}")
    if not generator.can("autoregressive") or not generator.can("token_scores"):
        raise NlpgdError(
            f"--select needs a generative language model to draw candidates from and score them; model {key} "
            f"({generator.type_name}) samples words independently (use a gpt2 model)"
        )
    return select


def _not_copies(candidates: list[str], train_texts: Sequence[str]) -> list[str]:
    """The candidates that neither copy a training message nor share a word 8-gram with one."""
    exact = {t.strip().lower() for t in train_texts}
    grams: set[tuple[str, ...]] = set()
    for t in train_texts:
        grams.update(ngrams(words(t.lower()), OVERLAP_N))
    fresh = lambda c: not any(g in grams for g in ngrams(words(c.lower()), OVERLAP_N))
    return [c for c in candidates if c.strip().lower() not in exact and fresh(c)]


def train_critic(generator, label: str, real_train: Sequence[tuple[str, str]], settings: dict, seed: int):
    """The fitted critic (P(real) from the profile features) and what the report says of it.
    ``real_train``: ``(id, text)`` rows of the train split's ``label`` messages."""
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.model_selection import cross_val_score

    from nlpgd.experiments.generate import cut_like
    from nlpgd.models.lm_profile import FEATURES, profile_features

    if len(real_train) < 10:
        raise NlpgdError(f"--select trains a critic on the train split's '{label}' messages; it has {len(real_train)}")
    real, _ = cut_like(generator, [t for _, t in real_train], settings.get("max_new_tokens"))
    fake = generator.generate(label, len(real), seed=seed + CRITIC_SEED_OFFSET, progress=False, **settings)
    X = np.vstack([profile_features(generator, real, label), profile_features(generator, fake, label)])
    y = np.array([1] * len(real) + [0] * len(fake))
    make = lambda: HistGradientBoostingClassifier(
        max_iter=150, learning_rate=0.05, max_leaf_nodes=15, random_state=seed
    )
    cv_auc = float(cross_val_score(make(), X, y, cv=5, scoring="roc_auc").mean())
    critic = make().fit(X, y)
    record = {
        "features": list(FEATURES),
        "model": "gradient-boosted trees on the generator's per-token log-likelihood profile",
        "train_real_ids": [i for i, _ in real_train],
        "n_real": len(real),
        "n_generated": len(fake),
        "cv_auc": cv_auc,
        "cv_reading": "the critic's own 5-fold AUC telling train-split real messages from the generator's samples",
    }
    return critic, record


def select_with_critic(
    generator, label: str, n: int, k: int, real_train: Sequence[tuple[str, str]], settings: dict, seed: int
) -> Selection:
    """``n`` samples kept from ``k * n`` candidates by the critic (:func:`train_critic`)."""
    from nlpgd.models.lm_profile import profile_features

    critic, record = train_critic(generator, label, real_train, settings, seed)
    candidates = generator.generate(label, k * n, seed=seed, progress=False, **settings)
    plain = candidates[:n]
    pool = _not_copies(candidates, [t for _, t in real_train])
    p_real = critic.predict_proba(profile_features(generator, pool, label))[:, 1] if pool else np.zeros(0)
    order = np.argsort(-p_real, kind="stable")[:n]
    selected = [pool[i] for i in sorted(order)]
    record.update(
        k=k,
        candidates=len(candidates),
        dropped_copies=len(candidates) - len(pool),
        kept_p_real_mean=float(p_real[order].mean()) if len(order) else None,
        all_p_real_mean=float(p_real.mean()) if len(p_real) else None,
    )
    log.info(
        "critic (cv AUC %.3f) kept %d of %d candidates (%d copies dropped)",
        record["cv_auc"],
        len(selected),
        len(candidates),
        record["dropped_copies"],
    )
    return Selection(selected, plain, record)
