"""Reading one run folder for a report: every prediction file once, checked, no model."""

from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from nlpgd.errors import NlpgdError
from nlpgd.io import read_json
from nlpgd.runs import DERIVED_NOTE, Run, open_run, quality_path, read_predictions
from nlpgd.stats import prob

SPLITS = ("validation", "test")


@dataclass
class RunPredictions:
    """Everything a report needs from one run folder (no model)."""

    path: Path
    info: dict
    data: dict
    costs: dict
    models: list[str]
    seeds: list[int]
    test_ids: list[str]
    labels: dict[str, np.ndarray]  # split -> (n,)
    probs: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)  # split -> model -> (S, n) P(spam)
    # split -> model -> (S, n) log-odds: what every metric, temperature and threshold is computed from
    log_odds: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # e.g. log-odds derived from an older run's P(spam)
    model_params: dict[str, dict] = field(default_factory=dict)  # model -> its settings in config.json
    generation: dict[str, dict[int, dict]] = field(default_factory=dict)  # model -> seed -> sample quality report
    margins: dict[str, float] = field(default_factory=dict)  # experiment.margins of the run's config (may be empty)


def rel(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` when it lies inside it, else as given."""
    try:
        return str(Path(path).relative_to(root))
    except ValueError:
        return str(path)


def _prediction_path(root: Path, model: str, seed: int, split: str) -> Path:
    return root / "predictions" / model / f"seed{seed}.{split}.csv"


def _check_complete(root: Path, models: list, seeds: list) -> None:
    missing = [f for f in ("data.json", "costs.json") if not (root / f).is_file()]
    for model in models:
        for seed in seeds:
            for split in SPLITS:
                p = _prediction_path(root, model, seed, split)
                if not p.is_file():
                    missing.append(rel(p, root))
    if missing:
        more = f" and {len(missing) - 4} more" if len(missing) > 4 else ""
        raise NlpgdError(f"{root} is incomplete: missing {', '.join(missing[:4])}{more}")


def _read_one(root: Path, path: Path, split: str, ids: dict, labels: dict, derived: set) -> np.ndarray:
    """The log-odds of one prediction file, in the order of the split's first file (which sets
    ``ids[split]`` and ``labels[split]``); a file without log-odds (an older run) gets them
    derived from its P(spam) and its model is added to ``derived``."""
    pr = read_predictions(path)
    name = rel(path, root)
    if not pr["id"]:
        raise NlpgdError(f"{root}: {name} has no rows")
    p = pr["prob_spam"]
    if not np.all(np.isfinite(p)) or np.any((p < 0) | (p > 1)):
        raise NlpgdError(f"{root}: {name} has prob_spam values outside [0, 1]")
    if np.any(np.isnan(pr["log_odds"])):
        raise NlpgdError(f"{root}: {name} has log_odds that are not numbers")
    if pr["log_odds_derived"]:
        derived.add(path.parent.name)
    p = pr["log_odds"]
    if not np.isin(pr["label"], (0, 1)).all():
        raise NlpgdError(f"{root}: {name} has labels other than 0 and 1")
    if split not in ids:
        ids[split], labels[split] = pr["id"], pr["label"]
    elif pr["id"] != ids[split]:
        if sorted(pr["id"]) != sorted(ids[split]) or len(set(pr["id"])) != len(pr["id"]):
            raise NlpgdError(f"{root}: {name} does not cover the same {split} messages as the other prediction files")
        order = {k: i for i, k in enumerate(pr["id"])}
        perm = np.array([order[k] for k in ids[split]])
        p, pr["label"] = p[perm], pr["label"][perm]
    if not np.array_equal(pr["label"], labels[split]):
        raise NlpgdError(f"{root}: {name} gives other labels for the same {split} messages")
    return p


def load_run_predictions(run_dir: Path, *, partial_ok: bool = False) -> RunPredictions:
    """Read a run folder's saved predictions, or say in one sentence what is missing or wrong."""
    run = open_run(run_dir, allow_partial=partial_ok)
    root, info = run.path, run.info
    seeds, models = info.get("seeds"), info.get("models")
    if not isinstance(seeds, list) or not seeds or not isinstance(models, list) or not models:
        raise NlpgdError(
            f"{root / 'run.json'} does not list the run's seeds and models (an older or damaged run folder)"
        )
    _check_complete(root, models, seeds)
    ids: dict[str, list] = {}
    labels: dict[str, np.ndarray] = {}
    log_odds: dict[str, dict[str, np.ndarray]] = {s: {} for s in SPLITS}
    derived: set = set()
    for split in SPLITS:
        for model in models:
            rows = [
                _read_one(root, _prediction_path(root, model, s, split), split, ids, labels, derived) for s in seeds
            ]
            log_odds[split][model] = np.vstack(rows)
    notes = [DERIVED_NOTE.format(what=f"The predictions of {', '.join(sorted(derived))}")] if derived else []
    config = _run_config(root)
    return RunPredictions(
        model_params=_model_params(config),
        margins=dict(((config.get("experiment") or {}).get("margins")) or {}),
        generation=_generation_reports(run, config, models, [int(s) for s in seeds]),
        path=root,
        info=info,
        data=read_json(root / "data.json"),
        costs=read_json(root / "costs.json"),
        models=list(models),
        seeds=[int(s) for s in seeds],
        test_ids=ids["test"],
        labels=labels,
        probs={s: {m: prob(z) for m, z in by_model.items()} for s, by_model in log_odds.items()},
        log_odds=log_odds,
        notes=notes,
    )


def _run_config(root: Path) -> dict:
    """``config.json`` of a run (empty for a run without one)."""
    path = root / "config.json"
    config = read_json(path, "run config") if path.is_file() else {}
    return config if isinstance(config, dict) else {}


def _model_params(config: dict) -> dict[str, dict]:
    """Each model's settings in the run's config."""
    models = config.get("models")
    return {str(k): v for k, v in models.items() if isinstance(v, dict)} if isinstance(models, dict) else {}


def _generation_reports(run: Run, config: dict, models: list[str], seeds: list[int]) -> dict[str, dict[int, dict]]:
    """The sample quality reports ``compare`` wrote (``generation:`` in the config), per model and seed."""
    label = (config.get("generation") or {}).get("label")
    out: dict[str, dict[int, dict]] = {}
    for model in models if label else []:
        for seed in seeds:
            path = quality_path(run.generated_path(model, seed, label))
            if path.is_file():
                report = read_json(path, "sample quality report")
                if not isinstance(report, dict):
                    raise NlpgdError(f"{path} does not hold a sample quality report")
                out.setdefault(model, {})[seed] = report
    return out


def split_files(where) -> dict[str, str] | None:
    """``data.json``'s ``where`` as ``{split: path}`` when the data came as one file per split
    (a mapping, or the str() of one as older runs recorded it); None for anything else."""
    if isinstance(where, str) and where.startswith("{") and where.endswith("}"):
        try:
            where = ast.literal_eval(where)  # literals only: never runs code
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            return None
    if isinstance(where, dict) and where:
        return {str(k): str(v) for k, v in where.items()}
    return None


def load_runs(run_dirs: list[Path]) -> list[RunPredictions]:
    """:func:`load_run_predictions` of several finished runs, each folder once."""
    if not run_dirs:
        raise NlpgdError("no run folder given")
    loaded = [load_run_predictions(d) for d in run_dirs]
    seen: set = set()
    for rp in loaded:
        if rp.path in seen:
            raise NlpgdError(f"run folder {rp.path} is given twice")
        seen.add(rp.path)
    return loaded
