"""Sampling settings chosen on validation realism (``nlpgd generate --sampling tune|auto``).

:func:`choose_sampling` draws ``n`` messages of the class under each setting of a small grid
(:data:`GRID`: temperature, top-k, top-p, and locally typical or min-p sampling) and scores
each with the two-sample AUC of every judge against the run's **validation** messages of the
class (never the test split: the ids read are recorded, and a test asserts on them). The
score of a setting is its worst judge's AUC (a setting that fools one judge only must not
win); settings that copy training messages (>= ``MAX_COPIES`` of exact copies or 8-gram
overlaps) are passed over. The choice and the whole grid are saved in the run
(``sampling_choice.json``, keyed by generator and label), where ``--sampling auto`` reads it.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Sequence

from nlpgd.errors import NlpgdError
from nlpgd.generation import OVERLAP_N, copy_share, ngram_overlap_share
from nlpgd.io import read_json, write_json
from nlpgd.realism import judge_all
from nlpgd.sampling import SamplingSettings

log = logging.getLogger(__name__)
CHOICE_FILE = "sampling_choice.json"
MAX_COPIES = 0.05
#: the settings tried (the rest of each comes from the base settings: max_new_tokens)
GRID: tuple[dict[str, Any], ...] = (
    {"temperature": 1.0, "top_k": 0, "top_p": 1.0},  # plain ancestral sampling
    {"temperature": 1.0, "top_k": 50, "top_p": 0.95},  # the defaults
    {"temperature": 0.9, "top_k": 0, "top_p": 0.95},
    {"temperature": 0.8, "top_k": 40, "top_p": 1.0},
    {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "typical_p": 0.9},
    {"temperature": 0.9, "top_k": 0, "top_p": 1.0, "typical_p": 0.95},
    {"temperature": 1.0, "top_k": 0, "top_p": 1.0, "min_p": 0.05},
    {"temperature": 1.1, "top_k": 0, "top_p": 1.0, "min_p": 0.1},
)


def choose_sampling(
    generator,
    label: str,
    validation: Sequence[tuple[str, str]],
    train_texts: Sequence[str],
    *,
    base: SamplingSettings,
    judges: Sequence[str],
    n: int,
    seed: int = 0,
    grid: Sequence[dict[str, Any]] = GRID,
) -> dict:
    """Score every setting of ``grid`` on ``validation`` (``(id, text)`` rows of real
    ``label`` messages) and return the record saved in the run: the chosen settings, the
    grid's rows and the validation ids read."""
    from nlpgd.experiments.generate import cut_like, embedder

    real, cut = cut_like(generator, [t for _, t in validation], base.max_new_tokens)
    rows = []
    for i, point in enumerate(grid):
        settings = SamplingSettings.from_options({**base.as_dict(), **point})
        samples = generator.generate(label, n, seed=seed + 1000 * (i + 1), progress=False, **settings.as_dict())
        row = {"settings": settings.as_dict(), "n": len(samples)}
        row["copies"] = copy_share(samples, train_texts)
        row[f"overlap_{OVERLAP_N}gram"] = ngram_overlap_share(samples, train_texts)
        judged = judge_all(samples, real, judges, seed=seed, embed=embedder(judges))
        row["auc"] = {j: r["auc"] for j, r in judged.items()}
        row["score"] = max(row["auc"].values())
        rows.append(row)
        log.info("sampling grid %d/%d: %s -> worst judge AUC %.3f", i + 1, len(grid), point, row["score"])
    clean = [r for r in rows if r["copies"] < MAX_COPIES and r[f"overlap_{OVERLAP_N}gram"] < MAX_COPIES]
    best = min(clean or rows, key=lambda r: r["score"])
    return {
        "settings": best["settings"],
        "score": best["score"],
        "what": f"worst judge's two-sample AUC against the {len(real)} validation messages of '{label}' "
        f"({', '.join(judges)} judges, {n} samples per setting; lower is more real)",
        "copy_filter": None if clean else f"every setting copied >= {MAX_COPIES:.0%}; the best was kept anyway",
        "real_cut": cut,
        "grid": rows,
        "validation_ids": [i for i, _ in validation],
        "seed": seed,
    }


def save_choice(run_path: Path, key: str, label: str, record: dict) -> Path:
    """Keep ``record`` in the run's choice file under ``key`` (generator) and ``label``."""
    path = Path(run_path) / CHOICE_FILE
    saved = read_json(path, "sampling choice") if path.is_file() else {}
    saved.setdefault(key, {})[label] = record
    write_json(path, saved)
    return path


def load_choice(run_path: Path, key: str, label: str) -> dict:
    """The saved choice for ``key`` and ``label``; one sentence when the run has none."""
    path = Path(run_path) / CHOICE_FILE
    saved = read_json(path, "sampling choice") if path.is_file() else {}
    record = saved.get(key, {}).get(label) if isinstance(saved, dict) else None
    if not isinstance(record, dict) or "settings" not in record:
        raise NlpgdError(
            f"run {run_path} has no saved sampling choice for {key}, label '{label}': "
            "choose one first with nlpgd generate --sampling tune (on the validation split)"
        )
    return record


def settings_of(record: dict, max_new_tokens: int | None = None) -> SamplingSettings:
    """The saved choice as settings (its ``max_new_tokens`` replaced when one is given)."""
    settings = dict(record["settings"])
    if max_new_tokens is not None:
        settings["max_new_tokens"] = max_new_tokens
    return SamplingSettings.from_options(settings)
