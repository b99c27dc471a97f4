"""compare: train and evaluate every configured model on one identical split.

One linear function: load and split the data once, then for every seed and every model:
seed, fit (timed, peak memory sampled), save, predict validation and test, score through
the ``evaluate`` module. Everything lands in one run folder (see :mod:`nlpgd.runs`).
"""

from __future__ import annotations

import contextlib
import logging
import platform
import shutil
import sys
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

import nlpgd
from nlpgd.config import ExperimentConfig, difference_message, dump_config
from nlpgd.data import check_manifest, load_splits
from nlpgd.errors import Interrupted, NlpgdError
from nlpgd.io import atomic_write_text, read_json, write_json, write_jsonl
from nlpgd.metrics import evaluate_predictions
from nlpgd.models.base import CAPABILITIES, FitContext
from nlpgd.models.registry import build_model
from nlpgd.runs import PeakMemory, Run, open_run, write_predictions
from nlpgd.scoring import score_model
from nlpgd.seeding import device_description, seed_everything

log = logging.getLogger(__name__)
EVAL_SPLITS = ("validation", "test")
# config keys that change how a run is shown or stored, not its results: a resume may differ in them
RESUME_FREE_KEYS = frozenset({"progress", "output_dir", "keep_work"})


def compare(
    cfg: ExperimentConfig,
    *,
    resume: Path | None = None,
    command: str = "",
) -> Path:
    """Run the comparison described by ``cfg``; returns the finished run folder."""
    data = load_splits(cfg.data)
    if resume is not None:
        run = open_run(resume, allow_partial=True)
        if not run.is_partial:
            raise NlpgdError(f"{run.path} is already complete; nothing to resume")
        saved = {k: v for k, v in read_json(run.path / "config.json").items() if k not in RESUME_FREE_KEYS}
        current = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in RESUME_FREE_KEYS}
        diff = difference_message(saved, current, "config key")
        if diff is not None:
            raise NlpgdError(f"cannot resume {run.path}: {diff}")
        check_manifest(data, read_json(run.path / "split_manifest.json"))
        done = read_json(run.path / "progress.json") if (run.path / "progress.json").exists() else {}
    else:
        run = Run.create(Path(cfg.output_dir), cfg.name)
        run.start(
            {
                "experiment": cfg.name,
                "run_id": run.path.name.removesuffix(".partial"),
                "seeds": cfg.seeds,
                "models": list(cfg.models),
                "command": command,
                "nlpgd_version": nlpgd.__version__,
                "python": platform.python_version(),
                "packages": _package_versions(),
            }
        )
        atomic_write_text(run.path / "config.yaml", dump_config(cfg))
        write_json(run.path / "config.json", cfg.model_dump(mode="json"))
        write_json(run.path / "data.json", data.summary)
        write_json(run.path / "split_manifest.json", data.manifest())
        train = data.dataset["train"]
        write_jsonl(
            run.path / "train_texts.jsonl",
            (
                {"id": i, "text": t, "label": nlpgd.LABELS[y]}
                for i, t, y in zip(train["id"], train["text"], train["label"])
            ),
        )
        done = {}

    texts = {s: data.texts(s) for s in ("train", *EVAL_SPLITS)}
    labels = {s: data.labels(s) for s in ("train", *EVAL_SPLITS)}
    ids = {s: list(data.dataset[s]["id"]) for s in EVAL_SPLITS}
    y = {s: np.asarray(data.dataset[s]["label"]) for s in EVAL_SPLITS}

    metrics: dict = read_json(run.path / "metrics.json") if done else {}
    costs: dict = read_json(run.path / "costs.json") if done else {}
    jobs = [(seed, name) for seed in cfg.seeds for name in cfg.models]
    bar = tqdm(jobs, desc="compare", unit="model", disable=not cfg.progress, file=sys.stderr)
    try:
        for seed, name in bar:
            key = f"{name}/seed{seed}"
            if done.get(key):
                continue
            bar.set_postfix_str(key)
            ctx = FitContext(
                seed=seed,
                validation=(texts["validation"], labels["validation"]),
                work_dir=run.work_dir(name, seed),
                resume=resume is not None,
                progress=cfg.progress,
                name=key,
            )
            entry_metrics, cost = _fit_and_score(run, name, cfg.models[name], ctx, texts, labels, ids, y)
            metrics.setdefault(name, {})[f"seed{seed}"] = entry_metrics
            costs.setdefault(name, {})[f"seed{seed}"] = cost
            write_json(run.path / "metrics.json", metrics)
            write_json(run.path / "costs.json", costs)
            done[key] = True
            write_json(run.path / "progress.json", done)
            log.info("%s: test F1 %.4f", key, entry_metrics["test"]["f1"])
            if not cfg.keep_work:  # saved and scored: a resume skips it, so its checkpoints are dead weight
                shutil.rmtree(ctx.work_dir, ignore_errors=True)
                with contextlib.suppress(OSError):
                    ctx.work_dir.parent.rmdir()  # only if no other seed's checkpoints are there
    except KeyboardInterrupt:
        from tqdm import tqdm as std_tqdm

        for open_bar in list(getattr(std_tqdm, "_instances", ())):  # the Trainer's too: the message comes last
            open_bar.close()
        bar.close()
        again = command or "nlpgd compare CONFIG"
        if "--resume" not in again:
            again += f" --resume {run.path}"
        raise Interrupted(
            f"interrupted: {len(done)} of {len(jobs)} fits are saved in {run.path}; continue with: {again}"
        ) from None

    from nlpgd.report import write_report

    write_report(run.path, partial_ok=True)
    if not cfg.keep_work:
        shutil.rmtree(run.path / "work", ignore_errors=True)
    (run.path / "progress.json").unlink(missing_ok=True)
    return run.finish()


def _fit_and_score(run, name: str, params, ctx: FitContext, texts: dict, labels: dict, ids: dict, y: dict):
    """Fit one model for one seed, save it, write its validation and test predictions;
    returns ``(metrics per split, costs)``."""
    seed_everything(ctx.seed)
    model = build_model(params)
    with PeakMemory() as mem:
        model.fit(texts["train"], labels["train"], ctx)
    model.save(run.model_dir(name, ctx.seed))
    entry_metrics, pred_seconds = {}, {}
    for split in EVAL_SPLITS:
        p, pred_seconds[split] = score_model(model, texts[split])
        write_predictions(run.predictions_path(name, ctx.seed, split), ids[split], y[split], p, (p > 0.5).astype(int))
        entry_metrics[split] = evaluate_predictions(y[split], p)
    n_pred = sum(len(texts[s]) for s in EVAL_SPLITS)
    cost = {
        "type": params.type,
        "family": model.family,
        "capabilities": {k: model.can(k) for k in CAPABILITIES},
        "train_seconds": mem.seconds,
        "train_examples": len(texts["train"]),
        "predict_seconds_per_1000": 1000 * sum(pred_seconds.values()) / max(n_pred, 1),
        "n_parameters": model.n_parameters(),
        "peak_memory_mb": mem.peak_mb,
        "device": device_description(),
    }
    return entry_metrics, cost


def _package_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that decide the results (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in ("torch", "transformers", "tokenizers", "datasets", "scikit-learn", "numpy", "accelerate"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
