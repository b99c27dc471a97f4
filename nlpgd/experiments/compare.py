"""compare: train and evaluate every configured model on one identical split.

Load and split the data once, then for every seed and every model one *cell*: seed, fit
(timed, peak memory sampled), save, predict validation and test, score through the
``evaluate`` module. Everything lands in one run folder (see :mod:`nlpgd.runs`); a run
interrupted by Ctrl-C is resumed cell by cell. :func:`fit_and_score` is the cell every
experiment shares.
"""

from __future__ import annotations

import contextlib
import logging
import platform
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from tqdm.auto import tqdm

import nlpgd
from nlpgd import hardware
from nlpgd.config import ExperimentConfig, GenerationConfig, config_from_dict, difference_message, dump_config
from nlpgd.data import PreparedData, check_manifest, data_notes, load_splits
from nlpgd.distributed import (
    barrier,
    init_launch,
    is_main_process,
    launched_world_size,
    main_process_first,
    on_main_process,
)
from nlpgd.errors import Interrupted, NlpgdError
from nlpgd.experiments.generate import sample_in_run
from nlpgd.hardware import use_hardware
from nlpgd.io import (
    atomic_write_text,
    check_free_space,
    ensure_dir,
    is_write_refusal,
    library_writes,
    read_json,
    write_error,
    write_json,
    write_jsonl,
)
from nlpgd.metrics import evaluate_predictions
from nlpgd.model_card import write_card
from nlpgd.models.base import CAPABILITIES, FitContext, read_model_meta
from nlpgd.models.hf_base import check_report_to
from nlpgd.models.hf_logging import scoring_split
from nlpgd.models.registry import build_model
from nlpgd.params import ModelParams
from nlpgd.runs import PeakMemory, Run, lock_run, open_run, release_run, write_predictions
from nlpgd.scoring import score_texts
from nlpgd.seeding import device_description, seed_everything
from nlpgd.stats import bootstrap_ci

log = logging.getLogger(__name__)
EVAL_SPLITS = ("validation", "test")
# config keys that change how a run is shown or stored, not its results: a resume may differ in them
RESUME_FREE_KEYS = frozenset({"progress", "output_dir", "keep_work", "report_to"})
PROGRESS_FILE = "progress.json"  # cells finished so far, while the run is partial


@dataclass
class Splits:
    """The texts, class names, ids and 0/1 labels of train, validation and test."""

    texts: dict[str, list[str]]
    labels: dict[str, list[str]]
    ids: dict[str, list[str]]
    y: dict[str, np.ndarray]

    @classmethod
    def of(cls, data: PreparedData) -> "Splits":
        names = ("train", *EVAL_SPLITS)
        return cls(
            texts={s: data.texts(s) for s in names},
            labels={s: data.labels(s) for s in names},
            ids={s: list(data.dataset[s]["id"]) for s in names},
            y={s: np.asarray(data.dataset[s]["label"]) for s in names},
        )


def compare(
    cfg: ExperimentConfig, *, resume: Path | None = None, command: str = "", progress: bool | None = None
) -> Path:
    """Run the comparison described by ``cfg``; returns the finished run folder. ``progress``
    (default: the config's) draws progress bars; the CLI passes whether stderr is a terminal.

    Under torchrun / accelerate launch every process runs this: rank 0 alone writes the run
    folder, predictions and report; a model that can train data-parallel (the Trainer arms)
    trains across all processes, the others on rank 0 alone.

    The config's ``device`` and ``precision`` hold for the whole run (:mod:`nlpgd.hardware`)."""
    check_launch(cfg)
    check_report_to(cfg.report_to)
    with use_hardware(cfg.device, cfg.precision):
        return _compare(cfg, resume, command, progress)


def _compare(cfg: ExperimentConfig, resume: Path | None, command: str, progress: bool | None) -> Path:
    init_launch()
    with main_process_first():  # rank 0 fills the datasets cache, the others read it
        data = load_splits(cfg.data)
    for note in data_notes(data.summary):
        log.info("data: %s", note)
    path, done = on_main_process(lambda: _open_run(cfg, data, resume, command))
    run = Run(Path(path))
    try:
        return _run_cells(cfg, run, done, data, resume, command, progress)
    finally:
        release_run(run.path)  # held since the folder was created or reopened (rank 0)


def _run_cells(
    cfg: ExperimentConfig, run: Run, done: dict, data: PreparedData, resume: Path | None, command: str, progress
) -> Path:
    """Every cell not yet done, then the report and the finished run folder."""
    splits = Splits.of(data)
    cells = [(seed, name) for seed in cfg.seeds for name in cfg.models]
    show = cfg.progress if progress is None else progress
    bar = tqdm(cells, desc="compare", unit="model", disable=not show, file=sys.stderr)
    with interrupt_note(run, done, len(cells), command, bar):
        for seed, name in bar:
            key = f"{name}/seed{seed}"
            if done.get(key):
                continue
            bar.set_postfix_str(key)
            ctx = FitContext(
                seed=seed,
                validation=(splits.texts["validation"], splits.labels["validation"]),
                work_dir=run.work_dir(name, seed),
                resume=resume is not None,
                progress=show,
                name=key,
                extra={"fitted": fitted_folders(run, cfg, seed, done)},
                report_to=cfg.report_to,
                log_dir=run.model_dir(name, seed) / "logs",
            )
            scored = fit_and_score(run, name, cfg.models[name], ctx, splits, generation=cfg.generation)
            if scored is not None:  # rank 0 (every run that is not a multi-process launch)
                record_cell(run, name, seed, *scored, done)
                log.info("%s: test F1 %.4f", key, scored[0]["test"]["f1"])
                if not cfg.keep_work:  # saved and scored: a resume skips it, so its checkpoints are dead weight
                    shutil.rmtree(ctx.work_dir, ignore_errors=True)
                    with contextlib.suppress(OSError):
                        ctx.work_dir.parent.rmdir()  # only if no other seed's checkpoints are there
            barrier()
        return Path(on_main_process(lambda: str(_finish(run, cfg))))


def check_launch(cfg: ExperimentConfig) -> None:
    """One sentence, before any work, for a model that cannot fit under a multi-process launch."""
    if launched_world_size() > 1:
        for name, params in cfg.models.items():
            if not build_model(params).can("launchable"):
                raise NlpgdError(
                    f"model '{name}' (type {params.type}) cannot train under torchrun or accelerate launch "
                    "(it fits other models inside its own fit, on one process); run this config in one "
                    "process, or leave that model out"
                )


def _open_run(cfg: ExperimentConfig, data: PreparedData, resume: Path | None, command: str) -> tuple[str, dict]:
    """A new run folder, or the interrupted one to resume: its path and its finished cells."""
    run, done = reopen_run(cfg, data, resume) if resume is not None else (start_run(cfg, data, command), {})
    return str(run.path), done


def _finish(run: Run, cfg: ExperimentConfig) -> Path:
    """The report, then the run marked complete (``<run-id>.partial`` -> ``<run-id>``)."""
    from nlpgd.report import write_report

    write_report(run.path, partial_ok=True)
    if not cfg.keep_work:
        shutil.rmtree(run.path / "work", ignore_errors=True)
    (run.path / PROGRESS_FILE).unlink(missing_ok=True)
    return run.finish()


def start_run(
    cfg: ExperimentConfig, data: PreparedData | None, command: str, folder: str | None = None, at=None, **info
) -> Run:
    """A new ``<run-id>.partial`` folder (under ``output_dir/<folder or the config's name>``)
    holding the config, what the data layer did, the split manifest and the train texts;
    ``info`` adds to ``run.json``. ``at``: a new folder inside a run being written instead (one
    corpus of a claims matrix; the enclosing run holds the lock); ``data`` None: a run of
    several corpora, whose data lie in those folders."""
    run = Run.create(Path(cfg.output_dir), folder or cfg.name) if at is None else Run(ensure_dir(Path(at)))
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
            "hardware": hardware.describe(),
            **info,
        }
    )
    atomic_write_text(run.path / "config.yaml", dump_config(cfg))
    write_json(run.path / "config.json", cfg.model_dump(mode="json"))
    if data is None:
        return run
    write_json(run.path / "data.json", data.summary)
    write_json(run.path / "split_manifest.json", data.manifest())
    train = data.dataset["train"]
    rows = zip(train["id"], train["text"], train["label"])
    write_jsonl(run.path / "train_texts.jsonl", ({"id": i, "text": t, "label": nlpgd.LABELS[y]} for i, t, y in rows))
    return run


def reopen_run(cfg: ExperimentConfig, data: PreparedData | None, resume: Path) -> tuple[Run, dict]:
    """The interrupted run ``resume`` and its finished cells, after checking that the config
    (display and storage keys aside) and the split are the run's own."""
    run = open_run(resume, allow_partial=True)
    if not run.is_partial:
        raise NlpgdError(f"{run.path} is already complete; nothing to resume")
    lock_run(run.path)  # one writer: a second resume of this run stops here, having changed nothing
    # read through today's schema, so a setting added since the run started compares at its default
    stored = config_from_dict(read_json(run.path / "config.json"), where=str(run.path / "config.json"))
    saved = {k: v for k, v in stored.model_dump(mode="json").items() if k not in RESUME_FREE_KEYS}
    current = {k: v for k, v in cfg.model_dump(mode="json").items() if k not in RESUME_FREE_KEYS}
    diff = difference_message(saved, current, "config key")
    if diff is not None:
        raise NlpgdError(f"cannot resume {run.path}: {diff}")
    if data is not None:  # None: a run of several corpora (each corpus's folder has its manifest)
        check_manifest(data, read_json(run.path / "split_manifest.json"))
    progress = run.path / PROGRESS_FILE
    return run, (read_json(progress) if progress.exists() else {})


def fitted_folders(run: Run, cfg: ExperimentConfig, seed: int, done: dict) -> dict[str, Path]:
    """``{model: folder}`` of this seed's models saved so far, for a model that builds on
    others (a stack reuses its members' fits when their settings and data match)."""
    return {name: run.model_dir(name, seed) for name in cfg.models if done.get(f"{name}/seed{seed}")}


def record_cell(run: Run, name: str, seed: int, metrics: dict, cost: dict, done: dict) -> None:
    """Add one finished cell to ``metrics.json``, ``costs.json`` and the progress record."""
    paths = {"metrics": run.path / "metrics.json", "costs": run.path / "costs.json"}
    for what, value in (("metrics", metrics), ("costs", cost)):
        table = read_json(paths[what]) if paths[what].exists() else {}
        table.setdefault(name, {})[f"seed{seed}"] = value
        write_json(paths[what], table)
    done[f"{name}/seed{seed}"] = True
    write_json(run.path / PROGRESS_FILE, done)


@contextlib.contextmanager
def interrupt_note(run: Run, done: dict, n_cells: int, command: str, bar=None) -> Iterator[None]:
    """Ctrl-C becomes :class:`Interrupted`: how many cells are saved, and the exact command
    that continues. Open progress bars (the Trainer's too) are closed first, so the message
    is the last line on the screen. An error (a refused write, a full disk) gets the same
    ending: the run stays ``.partial`` and can be continued once the cause is fixed."""
    try:
        yield
    except KeyboardInterrupt:
        _close_bars(bar)
        raise Interrupted(f"interrupted: {_saved_so_far(run, done, n_cells, command)}") from None
    except Interrupted:
        raise
    except NlpgdError as exc:
        _close_bars(bar)
        raise NlpgdError(f"{exc}; {_saved_so_far(run, done, n_cells, command)}") from None
    except OSError as exc:
        if not is_write_refusal(exc):
            raise
        _close_bars(bar)
        raise NlpgdError(
            f"{write_error(exc.filename or run.path, exc)}; {_saved_so_far(run, done, n_cells, command)}"
        ) from None


def _saved_so_far(run: Run, done: dict, n_cells: int, command: str) -> str:
    again = command or "nlpgd compare CONFIG"
    if "--resume" not in again:
        again += f" --resume {run.path}"
    return f"{len(done)} of {n_cells} fits are saved in {run.path}; continue with: {again}"


def _close_bars(bar) -> None:
    from tqdm import tqdm as std_tqdm

    for open_bar in list(getattr(std_tqdm, "_instances", ())):
        open_bar.close()
    if bar is not None:
        bar.close()


def fit_and_score(
    run: Run,
    name: str,
    params: ModelParams,
    ctx: FitContext,
    splits: Splits,
    train: tuple[list[str], list[str]] | None = None,
    generation: GenerationConfig | None = None,
) -> tuple[dict, dict] | None:
    """One cell: fit one model for one seed (on ``train`` if given, else the train split),
    save it, write its validation and test predictions and, with ``generation`` and a model
    that can generate, its samples and their quality report; returns ``(metrics per split, costs)``.

    Under torchrun / accelerate launch a model that can train data-parallel fits on every
    process and any other model on rank 0 alone; rank 0 alone saves and scores, and the other
    ranks return None."""
    texts, labels = train if train is not None else (splits.texts["train"], splits.labels["train"])
    seed_everything(ctx.seed)
    model = build_model(params)
    if not (is_main_process() or model.can("data_parallel")):
        return None
    model.progress = ctx.progress  # the arm's own scoring and sampling bars follow the run's setting
    key = f"{name}/seed{ctx.seed}"
    if is_main_process():
        check_fit_space(run, name, ctx.seed, params)
    with PeakMemory() as mem, library_writes(ctx.work_dir, f"the checkpoints of {key}"):
        model.fit(texts, labels, ctx)
    if not is_main_process():
        return None
    with library_writes(run.model_dir(name, ctx.seed), f"model {key}"):
        model.save(run.model_dir(name, ctx.seed))
    metrics, pred_seconds = {}, {}
    for split in EVAL_SPLITS:
        with scoring_split(split):  # a model that cuts long texts says how many, naming the split
            scores = score_texts(model, splits.texts[split])
        pred_seconds[split], y = scores.seconds, splits.y[split]
        write_predictions(
            run.predictions_path(name, ctx.seed, split), splits.ids[split], y, scores.log_odds, scores.log_lik
        )
        metrics[split] = evaluate_predictions(y, scores.log_odds)
        if split == "test":
            intervals = bootstrap_ci(y, scores.log_odds)
    write_scored_card(run, run.model_dir(name, ctx.seed), metrics, intervals)
    n_pred = sum(len(splits.texts[s]) for s in EVAL_SPLITS)
    cost = {
        "type": params.type,
        "family": model.family,
        "capabilities": {k: model.can(k) for k in CAPABILITIES},
        "train_seconds": mem.seconds,
        "train_examples": len(texts),
        "predict_seconds_per_1000": 1000 * sum(pred_seconds.values()) / max(n_pred, 1),
        "n_parameters": model.n_parameters(),
        "peak_memory_mb": mem.peak_mb,
        "device": device_description(),
        "processes": launched_world_size() if model.can("data_parallel") else 1,
    }
    if generation is not None and model.can("can_generate"):
        cost["generate_seconds"] = sample_in_run(run, name, ctx.seed, model, generation, (texts, labels))
    return metrics, cost


def check_fit_space(run: Run, name: str, seed: int, params: ModelParams) -> None:
    """Before a fit whose size is known (another seed of the model is saved in this run): one
    sentence when the disk cannot hold it, its saved folder plus the checkpoints it keeps
    (weights and optimizer state, about three times the weights each)."""
    saved = [d for d in run.model_folders().get(name, []) if d.name != f"seed{seed}"]
    if not saved:
        return
    size = sum(f.stat().st_size for f in saved[0].rglob("*") if f.is_file() and not f.is_symlink())
    keep = build_model(params).checkpoints_kept()
    what = f"{name}/seed{seed} (its {saved[0].name} takes {size / 2**20:.1f} MB"
    what += f", and its fit keeps {keep} checkpoints)" if keep else ")"
    check_free_space(run.path, size * (1 + 3 * keep), what)


def write_scored_card(run: Run, folder: Path, metrics: dict, intervals: dict) -> None:
    """Rewrite a saved model's card with the run's data summary, its validation metrics and its
    test metrics with 95% bootstrap intervals."""
    data_file = run.path / "data.json"
    data = read_json(data_file) if data_file.is_file() else None
    test = {**metrics["test"], **{m: v for m, v in intervals.items() if v.get("point") is not None}}
    write_card(folder, read_model_meta(folder), data=data, metrics={"test": test, "validation": metrics["validation"]})


def _package_versions() -> dict[str, str | None]:
    """Installed versions of the libraries that decide the results (None: not installed)."""
    from importlib.metadata import PackageNotFoundError, version

    out: dict[str, str | None] = {}
    for name in (
        *("torch", "transformers", "tokenizers", "safetensors", "datasets", "scikit-learn", "numpy", "scipy"),
        *("accelerate", "evaluate", "peft", "gguf"),
    ):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = None
    return out
