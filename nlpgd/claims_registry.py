"""The claims experiments, registered in one place.

Adding an experiment: its module ``nlpgd/experiments/claims/<module>.py`` (``NAME``, ``TITLE``,
``CLAIM``, ``plan``, ``analyse`` returning an ``ExperimentResult``), its grid class in
``nlpgd/config_grids.py``, one line in :data:`EXPERIMENTS` below, and its tests. The config's
``experiment:`` section (``config.EXPERIMENT_NAMES``, a field of ``ExperimentGrid`` named
:attr:`Experiment.key`), the runner's table of modules and ``nlpgd experiment --help`` are built
from this list. No pydantic and no numpy here: the CLI reads it for its help text.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Experiment:
    name: str  # the CLI name and the module's NAME, e.g. "learning-curve"
    summary: str  # one line of `nlpgd experiment --help`
    grid: str  # the name of its grid class in nlpgd/config_grids.py

    @property
    def key(self) -> str:
        """Its section under ``experiment:`` and its module's name: ``learning_curve``."""
        return self.name.replace("-", "_")

    @property
    def module(self) -> str:
        return f"nlpgd.experiments.claims.{self.key}"


EXPERIMENTS: tuple[Experiment, ...] = (
    Experiment("learning-curve", "data efficiency, learning curves of the matched pairs", "LearningCurveGrid"),
    Experiment("robustness", "obfuscated test messages, and other corpora (cross-domain)", "RobustnessGrid"),
    Experiment("missing-words", "random word dropout and truncation at test time", "MissingWordsGrid"),
    Experiment(
        "label-shift", "test sets resampled to other spam shares; true, EM and training priors", "LabelShiftGrid"
    ),
    Experiment(
        "calibration",
        "ECE, Brier, log loss before and after temperature scaling; decision cost",
        "CalibrationGrid",
    ),
    Experiment("augmentation", "LAMBADA, a generator's filtered samples as extra training data", "AugmentationGrid"),
    Experiment("compute", "training seconds, scoring throughput and FLOPs of each pair's members", "ComputeGrid"),
    Experiment("hybrids", "the continuum points and the stack against both ends", "HybridsGrid"),
)
EXPERIMENT_NAMES: tuple[str, ...] = tuple(e.name for e in EXPERIMENTS)
