"""The base of every arm trained with the transformers ``Trainer`` (the encoder, GPT-2).

:class:`HFClassifier` owns what those arms share, so each arm only builds its model, its
datasets and its scoring:

- the work folder holding the Trainer's checkpoints (``ctx.work_dir``, or a temporary folder
  shared by the ranks of a launch and removed afterwards);
- the resume record: params, seed, classes and the training-data hash, checked on resume so a
  changed setting or changed data is refused by name, and intact checkpoints only;
- one ``TrainingArguments`` subset (:class:`nlpgd.params.TrainerParams`) with the same names
  and meaning in every arm, the device and precision (bf16 on a GPU that has it, fp16 on one
  that does not, fp32 on CPU), rank guards for ``torchrun`` / ``accelerate launch``;
- progress: in a terminal one bar per phase, off a terminal none; either way one log line
  per epoch (loss, validation metrics, seconds) and never the Trainer's raw log dicts.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import shutil
import tempfile
import zipfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar, Iterator, Sequence

from nlpgd.config import difference_message
from nlpgd.distributed import (
    barrier,
    ddp_backend,
    init_launch,
    is_main_process,
    launched_world_size,
)
from nlpgd.errors import NlpgdError, first_line
from nlpgd.hardware import autocast, autocast_dtype, current_device, device, precision_kwargs, use_cpu  # noqa: F401
from nlpgd.io import read_json, write_json
from nlpgd.models.base import Classifier, FitContext
from nlpgd.models.hf_logging import (  # noqa: F401 (hf_progress_bars, check_report_to: imported from here too)
    bar_callback,
    check_report_to,
    epoch_log_callback,
    hf_progress_bars,
    point_tensorboard,
    quiet_transformers,
)
from nlpgd.params import TrainerParams
from nlpgd.safe_load import check_safetensors
from nlpgd.seeding import seed_everything

log = logging.getLogger(__name__)

FIT_RECORD = "nlpgd_fit_params.json"  # written in the work folder when a fit starts
TRAINER_LOG = "trainer_log_history.json"  # written in the model folder: each Trainer's log history


# -- work folder and checkpoints --------------------------------------------------------
@contextmanager
def work_dir_context(work_dir: Path | None, prefix: str) -> Iterator[Path]:
    """``work_dir`` itself, or a temporary folder removed afterwards.

    Under torchrun / accelerate launch every rank derives the same temporary folder from the
    launch's run id and port, so the ranks of one machine share it; several machines need a
    ``work_dir`` on a shared file system.
    """
    if work_dir is not None:
        path = Path(work_dir).expanduser()
        path.mkdir(parents=True, exist_ok=True)
        yield path
        return
    if launched_world_size() > 1:
        run = os.environ.get("TORCHELASTIC_RUN_ID", "run")
        path = Path(tempfile.gettempdir()) / f"{prefix}{run}-{os.environ.get('MASTER_PORT', '0')}"
        path.mkdir(parents=True, exist_ok=True)
    else:
        path = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield path
    finally:
        barrier()
        if is_main_process():
            shutil.rmtree(path, ignore_errors=True)


def checkpoint_problem(ckpt: Path) -> str | None:
    """Why ``ckpt`` cannot be resumed from (None when it is intact).

    The Trainer writes ``trainer_state.json`` last, so a folder without it was cut short; a
    kill while writing the weights leaves a truncated safetensors file; optimizer, scheduler
    and RNG states are zip archives whose directory sits at the end of the file.
    """
    from transformers.trainer import TRAINER_STATE_NAME

    if not (ckpt / TRAINER_STATE_NAME).is_file():
        return f"it has no {TRAINER_STATE_NAME} (interrupted while saving)"
    try:
        read_json(ckpt / TRAINER_STATE_NAME, "trainer state")
    except NlpgdError:
        return f"its {TRAINER_STATE_NAME} is truncated or damaged"
    for weights in sorted(ckpt.glob("*.safetensors")):
        try:
            check_safetensors(weights)
        except NlpgdError:
            return f"its {weights.name} is truncated or damaged"
    for state in (*ckpt.glob("*.pt"), *ckpt.glob("*.pth")):
        if not zipfile.is_zipfile(state):
            return f"its {state.name} is truncated or damaged"
        unsafe = _unsafe_globals(state)
        if unsafe:
            return f"its {state.name} is a pickle of objects other than tensors ({unsafe}), which nlpgd never loads"
    for weights in ckpt.glob("*.bin"):
        if weights.name != "training_args.bin":  # written for the record, never read back by a resume
            return f"its {weights.name} is a pickle where safetensors weights belong, which nlpgd never loads"
    return None


def _unsafe_globals(state: Path) -> str | None:
    """The objects other than tensors, numbers and numpy arrays (the RNG states) a saved state
    would unpickle, named (None: none); found without loading it."""
    import numpy as np
    import torch

    find = getattr(torch.serialization, "get_unsafe_globals_in_checkpoint", None)
    if find is None:  # older torch: the load itself refuses them
        return None
    core = np._core if hasattr(np, "_core") else np.core
    rng = {core.multiarray._reconstruct, np.ndarray, np.dtype, type(np.dtype(np.uint32))}
    allowed = {f"{o.__module__}.{o.__name__}" for o in rng} | {"numpy.core.multiarray._reconstruct"}
    try:
        unsafe = sorted(set(find(str(state))) - allowed)
    except Exception as exc:  # whatever the reader trips on, the file is not a sound state
        return f"unreadable: {first_line(exc)}"
    return ", ".join(unsafe) or None


def find_checkpoints(work_dir: Path) -> tuple[Path | None, list[tuple[Path, str]]]:
    """The newest intact ``checkpoint-<step>`` folder in ``work_dir`` (None: there is none), and
    each newer, damaged one with what is wrong with it."""
    from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR

    work_dir = Path(work_dir)
    if not work_dir.is_dir():
        return None, []
    steps = sorted(
        (
            (int(d.name.rsplit("-", 1)[-1]), d)
            for d in work_dir.glob(f"{PREFIX_CHECKPOINT_DIR}-*")
            if d.is_dir() and d.name.rsplit("-", 1)[-1].isdigit()
        ),
        reverse=True,
    )
    damaged = []
    for _, d in steps:
        problem = checkpoint_problem(d)
        if problem is None:
            return d, damaged
        damaged.append((d, problem))
    return None, damaged


def last_checkpoint(work_dir: Path) -> Path | None:
    """The newest intact ``checkpoint-<step>`` folder in ``work_dir``, or None."""
    return find_checkpoints(work_dir)[0]


def resume_point(work_dir: Path, name: str = "") -> Path | None:
    """The checkpoint a resumed fit continues from (None: it starts from the beginning), said
    in one log line: which checkpoint, and which newer ones are damaged and why. Silent when
    ``work_dir`` holds no checkpoint at all (a fit that never started)."""
    ckpt, damaged = find_checkpoints(work_dir)
    who = f"{name}: " if name else ""
    if damaged:
        why = "; ".join(f"{d.name}: {problem}" for d, problem in damaged)
        then = f"resuming from {ckpt.name}" if ckpt else "no intact checkpoint is left, so this fit starts again"
        log.warning("%sskipping damaged checkpoints in %s (%s); %s", who, work_dir, why, then)
    elif ckpt is not None:
        log.info("%sresuming from %s", who, ckpt)
    return ckpt


def start_or_resume(
    work_dir: Path, record: dict[str, Any], resume: bool, *, fit_dirs: Sequence[str] = (), name: str = ""
) -> Path | None:
    """Check/record the fit's parameters in ``work_dir``; return the checkpoint to resume from.

    A resume whose record differs from the saved one raises an :class:`NlpgdError` naming
    the first differing key. A fresh fit (``resume`` False, or nothing intact to resume)
    removes checkpoints left by an earlier fit. ``fit_dirs`` are glob patterns of
    sub-folders a fit owns (one Trainer output folder per language model, the tokenizer);
    their checkpoints count for the record check and a fresh fit removes them whole. Which
    checkpoint a resume takes, or why it starts again, is one log line (``name`` leads it).
    """
    import json

    record_file = work_dir / FIT_RECORD
    record = json.loads(json.dumps(record))  # normalise (tuples -> lists, ...)
    owned = [d for pattern in fit_dirs for d in sorted(work_dir.glob(pattern)) if d.is_dir()]
    ckpt = resume_point(work_dir, name) if resume else None
    if resume and (ckpt is not None or any(last_checkpoint(d) for d in owned)):
        if not record_file.is_file():
            raise NlpgdError(
                f"cannot resume from {work_dir}: it has checkpoints but no {FIT_RECORD}, so its parameters "
                "cannot be checked; start a fresh fit"
            )
        diff = difference_message(read_json(record_file, "fit record"), record, "parameter")
        if diff is not None:
            raise NlpgdError(f"cannot resume from {work_dir}: {diff}; restore it or start a fresh fit")
        return ckpt
    if resume:
        for d in owned:
            resume_point(d, name)  # each damaged one says why this fit starts again
    if is_main_process():
        for stale in [*work_dir.glob("checkpoint-*"), *owned]:
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
        write_json(record_file, record)
    barrier()
    return None


# -- the base class ---------------------------------------------------------------------
class HFClassifier(Classifier):
    """A classifier trained with the transformers ``Trainer``; see the module docstring."""

    params: TrainerParams
    work_prefix: ClassVar[str] = "nlpgd-fit-"
    fit_dirs: ClassVar[tuple[str, ...]] = ()  # sub-folders of the work folder a fit owns

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        # the Trainer runs DDP under torchrun / accelerate launch: every arm built on it can
        cls.capabilities = dataclasses.replace(cls.capabilities, data_parallel=True, epoch_trained=True)

    def checkpoints_kept(self) -> int:
        return self.params.keep_checkpoints

    def trainer_summary(self) -> dict[str, str]:
        """The Trainer settings every arm shares, for ``training_summary``."""
        p, lr = self.params, self.learning_rate()
        schedule = f"{p.lr_scheduler}, peak {lr:g}, warm-up {p.warmup_ratio:g}"
        return {"epochs": f"{p.epochs:g}", "schedule": schedule, "tuning budget": "the epoch, chosen on validation"}

    def _resume_record(self, ctx: FitContext) -> dict[str, Any]:
        """What a resume must match: everything that changes what training computes."""
        p = self.params
        return {
            **p.model_dump(mode="json", exclude=set(p.resume_free)),
            "seed": ctx.seed,
            "classes": [str(c) for c in self.classes_],
            "train_data_sha256": self.fit_info_["train_data_sha256"],
        }

    @contextmanager
    def _work(self, ctx: FitContext) -> Iterator[tuple[Path, Path | None]]:
        """The work folder and the checkpoint to resume from (None: a fresh fit)."""
        init_launch()  # under torchrun: the process group exists before the ranks coordinate
        self.trainer_logs_ = {}  # Trainer folder (relative to the work folder) -> its log history
        with work_dir_context(ctx.work_dir, self.work_prefix) as work:
            self._fit_work = work
            yield (
                work,
                start_or_resume(work, self._resume_record(ctx), ctx.resume, fit_dirs=self.fit_dirs, name=ctx.name),
            )

    def _seed(self, seed: int) -> None:
        import torch  # noqa: F401  (loaded first, so seed_everything seeds it)

        seed_everything(seed)

    def _training_arguments(
        self, out_dir: Path, ctx: FitContext, *, evaluate: bool, metric: str = "loss", **arm_specific: Any
    ):
        """TrainingArguments from the shared params: they write only under ``out_dir``,
        report nowhere, evaluate and checkpoint every epoch, keep the best validation epoch."""
        from transformers import TrainingArguments

        check_report_to(ctx.report_to)
        p = self.params
        greater = metric not in ("loss",)
        kwargs: dict[str, Any] = dict(
            output_dir=str(out_dir),
            seed=ctx.seed,
            data_seed=ctx.seed,
            report_to=ctx.report_to,  # tensorboard: its callback is pointed at the model's folder in _train
            disable_tqdm=True,  # the bar is added by _trainer (named, without log dicts)
            save_only_model=False,  # optimizer and scheduler states too, so resume continues
            push_to_hub=False,
            ddp_backend=ddp_backend(),
            use_cpu=use_cpu(),
            dataloader_num_workers=0,
            dataloader_pin_memory=current_device() == "cuda",
            learning_rate=self.learning_rate(),
            lr_scheduler_type=p.lr_scheduler,
            num_train_epochs=p.epochs,
            per_device_train_batch_size=p.batch_size,
            per_device_eval_batch_size=p.eval_batch_size,
            warmup_steps=p.warmup_ratio,  # a float in [0, 1) is a ratio of the total steps
            weight_decay=p.weight_decay,
            eval_strategy="epoch" if evaluate else "no",
            save_strategy="epoch",
            logging_strategy="epoch",
            save_total_limit=p.keep_checkpoints,
            load_best_model_at_end=evaluate,
            metric_for_best_model=f"eval_{metric}" if evaluate else None,
            greater_is_better=greater if evaluate else None,
            restore_callback_states_from_checkpoint=True,
            log_level="passive",  # keep the caller's transformers verbosity (the CLI: errors only)
            log_level_replica="passive",  # the other ranks too (the Trainer's default turns their warnings on)
            ddp_find_unused_parameters=False,  # every weight takes part in each forward pass
            **precision_kwargs(),
        )
        kwargs.update(arm_specific)
        return TrainingArguments(**kwargs)

    def learning_rate(self) -> float:
        return float(self.params.learning_rate)

    def save(self, path: Path) -> None:
        with hf_progress_bars(False):  # small models write in well under a second: no shard bar
            super().save(path)
        if getattr(self, "trainer_logs_", None):  # a fit in this process (a loaded model has none)
            write_json(Path(path) / TRAINER_LOG, self.trainer_logs_)

    def _trainer_folder(self, trainer) -> str:
        """The Trainer's output folder relative to the fit's work folder ('.': the work folder)."""
        out = Path(trainer.args.output_dir)
        work = getattr(self, "_fit_work", None)
        return out.relative_to(work).as_posix() if work is not None and out.is_relative_to(work) else out.name

    def _train(self, trainer, ctx: FitContext, resume_from: Path | None):
        """Run ``trainer`` (built by the arm) with the shared callbacks; returns the output."""
        from transformers import EarlyStoppingCallback
        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        for cb in (PrinterCallback, ProgressCallback):
            trainer.remove_callback(cb)
        if ctx.progress:
            trainer.add_callback(bar_callback(ctx.name))
        trainer.add_callback(epoch_log_callback(ctx.name, self.params.epochs))
        point_tensorboard(trainer, ctx, self._trainer_folder(trainer))
        if trainer.args.load_best_model_at_end and self.params.early_stopping_patience is not None:
            trainer.add_callback(EarlyStoppingCallback(early_stopping_patience=self.params.early_stopping_patience))
        quiet_transformers(trainer.model)  # nothing for transformers to warn about in every fit
        self.resumed_from_ = str(resume_from) if resume_from else None
        with hf_progress_bars(False):  # no bar per checkpoint write or best-model load: the step bar is the phase's
            out = trainer.train(resume_from_checkpoint=self.resumed_from_)
        # per-epoch losses and validation metrics, saved with the model (trainer_log_history.json)
        self.trainer_logs_[self._trainer_folder(trainer)] = list(trainer.state.log_history)
        return out
