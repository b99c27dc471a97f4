"""What a Trainer fit shows and where it reports: its progress bar, one log line per epoch,
transformers' own bars switched off for a block, what the model declares so that transformers
does not warn in every fit, and ``report_to`` (TensorBoard events in the run's log folder).
:mod:`nlpgd.models.hf_base` re-exports ``hf_progress_bars`` and ``check_report_to``."""

from __future__ import annotations

import logging
import time
from contextlib import contextmanager
from contextvars import ContextVar
from pathlib import Path
from typing import Iterator

from nlpgd.distributed import is_main_process
from nlpgd.errors import NlpgdError
from nlpgd.models.base import FitContext

train_log = logging.getLogger("nlpgd.train")
EPOCH_LINE_METRICS = ("loss", "accuracy", "f1")  # validation metrics the epoch log line shows


# -- progress ---------------------------------------------------------------------------
def bar_callback(name: str):
    """The Trainer's progress bar, named after the fit, without the raw log dicts it prints."""
    from tqdm.auto import tqdm
    from transformers.trainer_callback import ProgressCallback

    class Bar(ProgressCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            if state.is_world_process_zero:
                self.training_bar = tqdm(
                    total=state.max_steps, desc=name or "training", unit="step", dynamic_ncols=True, leave=False
                )
            self.current_step = 0

        def on_prediction_step(self, args, state, control, **kwargs):
            pass  # one bar per phase: the validation pass at each epoch's end is part of training

        def on_log(self, args, state, control, logs=None, **kwargs):
            pass  # the epoch line (EpochLog) says it once, readably

    return Bar


def epoch_log_callback(name: str, total_epochs: float):
    """One log line per epoch: training loss, validation metrics, seconds."""
    from transformers import TrainerCallback

    class EpochLog(TrainerCallback):
        def __init__(self):
            self.t0, self.loss = time.perf_counter(), None

        def on_epoch_begin(self, args, state, control, **kwargs):
            self.t0 = time.perf_counter()

        def on_log(self, args, state, control, logs=None, **kwargs):
            logs = logs or {}
            if "loss" in logs:
                self.loss = logs["loss"]
                if args.eval_strategy == "no":
                    self._line(state, {})
            elif "eval_loss" in logs:
                # the line names loss, accuracy and F1; every validation metric is in the log history
                self._line(state, {k: logs[f"eval_{k}"] for k in EPOCH_LINE_METRICS if f"eval_{k}" in logs})

        def _line(self, state, evals: dict) -> None:
            if not state.is_world_process_zero:
                return
            parts = [] if self.loss is None else [f"train loss {self.loss:.4f}"]
            parts += [f"validation {k.replace('_', ' ')} {v:.4f}" for k, v in evals.items() if isinstance(v, float)]
            epoch = round(state.epoch or 0)
            train_log.info(
                "%s epoch %d/%g: %s (%.1f s)",
                name or "fit",
                epoch,
                total_epochs,
                ", ".join(parts),
                time.perf_counter() - self.t0,
            )
            self.loss = None

    return EpochLog()


@contextmanager
def hf_progress_bars(enabled: bool) -> Iterator[None]:
    """Turn transformers' own progress bars (checkpoint writing, weight loading) off for a
    block when ``enabled`` is False, then restore the previous setting."""
    from transformers.utils import logging as hf_logging

    before = hf_logging.is_progress_bar_enabled()
    if before and not enabled:
        hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        if before and not enabled:
            hf_logging.enable_progress_bar()


# -- texts cut to the model's length -------------------------------------------------------
#: the split being scored and its tally ``{(logger, model name, limit): [truncated, texts]}``
_scoring: ContextVar[tuple[str, dict] | None] = ContextVar("nlpgd_scoring_split", default=None)


@contextmanager
def scoring_split(split: str) -> Iterator[None]:
    """The texts scored inside the block are the ``split`` split: a model that cuts texts to its
    length says how many in one line naming the split when the block ends (not one per call or chunk)."""
    tally: dict = {}
    token = _scoring.set((split, tally))
    try:
        yield
    finally:
        _scoring.reset(token)
    for (log, name, limit), (n, total) in tally.items():
        report_truncated(log, name, n, total, limit, split)


def report_truncated(log: logging.Logger, name: str, n: int, total: int, limit: int, split: str | None = None) -> None:
    """``n`` of ``total`` texts were longer than ``limit`` tokens and cut: one line on ``log`` (a
    warning for the training texts) naming ``split``; with no split given, inside
    :func:`scoring_split` the count joins that split's line, outside it the line says 'scored'."""
    if split is None and (active := _scoring.get()) is not None:
        counts = active[1].setdefault((log, name, limit), [0, 0])
        counts[0], counts[1] = counts[0] + n, counts[1] + total
        return
    if n:
        level = logging.WARNING if split == "training" else logging.INFO
        what = split or "scored"
        log.log(
            level,
            "%s: %d of %d %s texts are longer than max_length=%d tokens and were truncated",
            name,
            n,
            total,
            what,
            limit,
        )


# -- what transformers would warn about in every fit ------------------------------------
#: transformers' messages that say nothing wrong here (logger -> how the message starts), dropped
BENIGN = {
    # a small fit's epochs end within a second of each other, so the Trainer orders its checkpoints
    # by step number instead of modification time: the order it would have found anyway
    "transformers.trainer_utils": "mtime may not be reliable on this filesystem",
}


class _DropBenign(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.start)


_BENIGN_FILTERS = {name: _DropBenign(start) for name, start in BENIGN.items()}


def quiet_transformers(model) -> None:
    """Before a Trainer fit of ``model``: drop the :data:`BENIGN` messages, and declare to
    transformers two facts it otherwise guesses, with a warning in every fit:

    - the loss: transformers reads it from the class name, which for ``GPT2LMHeadModel`` matches
      nothing ("`loss_type=None` was set in the config but it is unrecognized"), and falls back to
      ``ForCausalLM``; that same loss is declared, so the numbers do not change;
    - the tied output layer: ``lm_head.weight`` is the input embedding, so a checkpoint leaves it
      out and reloading the best epoch reported it missing ("There were missing keys in the
      checkpoint model loaded: ['lm_head.weight']"); declared as not saved, the Trainer re-ties it.

    Only a transformers model (under LoRA, the one inside); the hybrid's ``JointLMs`` declares its own."""
    from transformers import PreTrainedModel
    from transformers.loss.loss_utils import LOSS_MAPPING

    for name, drop in _BENIGN_FILTERS.items():
        if drop not in logging.getLogger(name).filters:
            logging.getLogger(name).addFilter(drop)
    base = model.get_base_model() if callable(getattr(model, "get_base_model", None)) else model
    if not isinstance(base, PreTrainedModel):
        return
    if getattr(base, "loss_type", None) not in LOSS_MAPPING:
        base.loss_type = "ForCausalLM"  # what transformers falls back to, without its warning
    pairs = getattr(base, "all_tied_weights_keys", None) or {}
    weights = dict(base.named_parameters(remove_duplicate=False))  # under LoRA a wrapped layer's names differ
    tied = {t for t, s in pairs.items() if t in weights and weights[t] is weights.get(s)}
    if tied:
        base._keys_to_ignore_on_save = set(base._keys_to_ignore_on_save or ()) | tied


# -- where the Trainer reports ----------------------------------------------------------
def check_report_to(report_to: str) -> None:
    """One sentence, before any work, when ``report_to`` names an integration that is not installed."""
    import importlib.util

    need = {"tensorboard": ("tensorboard", "pip install 'nlpgd[tensorboard]'"), "wandb": ("wandb", "pip install wandb")}
    if report_to in need:
        package, install = need[report_to]
        if importlib.util.find_spec(package) is None:
            raise NlpgdError(f"report_to: {report_to} needs the {package} package, which is not installed ({install})")


def point_tensorboard(trainer, ctx: FitContext, folder: str) -> None:
    """With ``report_to: tensorboard`` and a ``ctx.log_dir``, the Trainer's TensorBoard events go
    to ``log_dir/tensorboard[/<trainer folder>]`` instead of the work folder (removed after the fit)."""
    if ctx.report_to != "tensorboard" or ctx.log_dir is None:
        return
    from transformers.integrations import TensorBoardCallback

    trainer.remove_callback(TensorBoardCallback)
    if not is_main_process():
        return
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # TensorBoardCallback's own fallback
        from tensorboardX import SummaryWriter
    target = Path(ctx.log_dir) / "tensorboard" / ("" if folder == "." else folder)
    trainer.add_callback(TensorBoardCallback(tb_writer=SummaryWriter(log_dir=str(target))))
