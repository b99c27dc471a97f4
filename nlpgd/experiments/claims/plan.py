"""The plan of a claims run: which model is fitted on which training set with which seed (a
*cell*), and what each fit is scored on besides the validation and test splits (its *evals*).

Experiments add cells to a :class:`Plan`; the same cell asked for by two experiments is one
fit whose evals are the union of theirs, so a claims run fits each model once per training
set and seed. Cells are named ``<training set>/<model>`` (``n64/logreg``, ``full/gpt2``,
``xd-sms/naive_bayes``, ``aug-r32-mix/logreg``) and keyed ``<name>/seed<k>``.

Training sets:

- ``n<size>``: a stratified subset of the main train split, drawn with the cell's seed (so it
  differs per seed and is the same for every model and experiment);
- ``full``: the whole main train split (as the config's ``data`` section leaves it);
- ``xd-<target>``: the whole train split of a cross-domain target (robustness, reverse direction);
- ``aug-r<size>-mix`` / ``aug-r<size>-syn``: the real subset plus the generator's filtered
  samples, or the samples alone (augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nlpgd.config import ExperimentConfig, ExperimentGrid
from nlpgd.errors import NlpgdError
from nlpgd.models.registry import build_model, model_class
from nlpgd.params import CountFeatureParams

FULL = "full"
MAIN = "main"


# -- matched pairs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A generative and a discriminative model of the config, trained on identical data."""

    label: str
    generative: str
    discriminative: str
    kind: str  # linear | scratch | pretrained | configured

    @property
    def members(self) -> tuple[str, str]:
        return self.generative, self.discriminative

    def as_dict(self) -> dict:
        return {"label": self.label, "generative": self.generative, "discriminative": self.discriminative}


def is_generative(params) -> bool:
    """Whether a configured model is generative, read from its class's declared capabilities
    (complement naive Bayes narrows them: it is not)."""
    if getattr(params, "variant", None) == "complement":
        return False
    return bool(model_class(params.type).capabilities.generative)


def is_hybrid(params) -> bool:
    """Whether a configured model reports its family as hybrid (e.g. a ``gpt2`` with a
    discriminative term): it belongs to neither family, so it is never a pair member."""
    return build_model(params).family == "hybrid"


def _features(params) -> dict:
    return params.model_dump(include=set(CountFeatureParams.model_fields))


def _auto_kind(params) -> str | None:
    """Which automatic pair a model can belong to (None: none)."""
    checkpoint, init = getattr(params, "checkpoint", None), getattr(params, "init", None)
    if is_hybrid(params):
        return None
    if isinstance(params, CountFeatureParams):
        return "linear"
    if params.type == "gpt2":
        return "scratch" if checkpoint == "scratch" else "pretrained"
    if params.type == "distilbert":
        return "scratch" if init == "scratch" else "pretrained"
    return None


AUTO_LABELS = {
    "linear": "linear pair (same word counts)",
    "scratch": "neural pair, from scratch",
    "pretrained": "neural pair, pretrained",
}


def _auto_pairs(cfg: ExperimentConfig, notes: list[str]) -> list[Pair]:
    """The first generative and the first discriminative model of each kind; the linear pair
    only when both see the same count features."""
    pairs = []
    for kind, label in AUTO_LABELS.items():
        gens = [m for m, p in cfg.models.items() if _auto_kind(p) == kind and is_generative(p)]
        discs = [m for m, p in cfg.models.items() if _auto_kind(p) == kind and not is_generative(p)]
        if not gens or not discs:
            continue
        g, d = gens[0], discs[0]
        if kind == "linear" and _features(cfg.models[g]) != _features(cfg.models[d]):
            notes.append(f"{g} and {d} use different count features, so they are not paired")
            continue
        pairs.append(Pair(f"{label}: {g} vs {d}", g, d, kind))
    return pairs


def _configured_pairs(cfg: ExperimentConfig, grid: ExperimentGrid) -> list[Pair]:
    pairs = []
    for i, spec in enumerate(grid.pairs or []):
        for role in ("generative", "discriminative"):
            name = getattr(spec, role)
            if name not in cfg.models:
                raise NlpgdError(
                    f"config key 'experiment.pairs.{i}.{role}': no model '{name}' in models "
                    f"(models: {', '.join(cfg.models)})"
                )
            if is_hybrid(cfg.models[name]):
                raise NlpgdError(
                    f"config key 'experiment.pairs.{i}.{role}': model '{name}' is a hybrid; a pair is one purely "
                    "generative and one discriminative model"
                )
            if is_generative(cfg.models[name]) != (role == "generative"):
                family = "generative" if role == "discriminative" else "discriminative"
                raise NlpgdError(f"config key 'experiment.pairs.{i}.{role}': model '{name}' is {family}")
        label = spec.label or f"{spec.generative} vs {spec.discriminative}"
        pairs.append(Pair(label, spec.generative, spec.discriminative, "configured"))
    return pairs


def resolve_pairs(cfg: ExperimentConfig, grid: ExperimentGrid) -> tuple[list[Pair], list[str], list[str]]:
    """``(pairs, reference models, notes)``: the configured pairs (or those found by type), and
    every other model as a reference row outside the family verdicts."""
    notes: list[str] = []
    pairs = _configured_pairs(cfg, grid) if grid.pairs is not None else _auto_pairs(cfg, notes)
    paired = {m for p in pairs for m in p.members}
    reference = [m for m in cfg.models if m not in paired]
    if not pairs:
        notes.append("the config has no matched pair (a generative and a discriminative model trained alike)")
    return pairs, reference, notes


# -- training sets, evals, cells ----------------------------------------------------------


@dataclass(frozen=True)
class TrainSet:
    name: str
    source: str = MAIN  # MAIN or a cross-domain target's name
    size: int | None = None  # a stratified subset of this size; None: the whole train split
    synthetic: str | None = None  # "mix" (real + samples) or "syn" (samples only)
    generator: str | None = None  # the model whose samples are used


def size_set(size) -> TrainSet:
    """``n<size>`` or ``full`` on the main data."""
    return TrainSet(FULL) if size == FULL else TrainSet(f"n{size}", size=int(size))


def target_set(target: str) -> TrainSet:
    return TrainSet(f"xd-{target}", source=target)


def synthetic_set(real_size: int, mode: str, generator: str) -> TrainSet:
    return TrainSet(f"aug-r{real_size}-{mode}", size=real_size, synthetic=mode, generator=generator)


@dataclass(frozen=True)
class Eval:
    """Something done with a fitted model besides scoring validation and test.

    ``kind`` is ``texts`` (score the test split of ``source`` after ``transform``), ``shift``
    (label shift: resampled test sets and prior replacement) or ``generate`` (sample synthetic
    training messages). ``transform`` is ``()``, ``("obfuscate", kind, strength)``,
    ``("dropout", rate)`` or ``("truncate", words)``; ``shift`` carries the prevalences.
    """

    name: str
    kind: str
    source: str = MAIN
    transform: tuple = ()


def text_eval(transform: tuple = (), source: str = MAIN) -> Eval:
    """Score the test split of ``source`` after ``transform``: named ``on-<source>`` without a
    transform (a cross-domain test set), else after the transform (``obfuscate-leet-0.2``)."""
    if not transform:
        return Eval(f"on-{source}", "texts", source)
    return Eval(
        "-".join(f"{t:g}" if isinstance(t, float) else str(t) for t in transform), "texts", source, tuple(transform)
    )


def shift_eval(prevalences: list[float]) -> Eval:
    return Eval("shift", "shift", transform=tuple(prevalences))


GENERATE = Eval("generate", "generate")


@dataclass
class Cell:
    trainset: TrainSet
    model: str
    seed: int
    evals: dict[str, Eval] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"{self.trainset.name}/{self.model}"

    @property
    def key(self) -> str:
        return f"{self.name}/seed{self.seed}"

    def generator_key(self) -> str | None:
        """The cell whose samples this one trains on (None: real data only)."""
        ts = self.trainset
        if ts.synthetic is None:
            return None
        return f"n{ts.size}/{ts.generator}/seed{self.seed}"


class Plan:
    """Cells in the order they were added; adding one twice merges its evals."""

    def __init__(self) -> None:
        self.cells: dict[str, Cell] = {}

    def add(self, trainset: TrainSet, model: str, seed: int, evals=()) -> Cell:
        cell = Cell(trainset, model, seed)
        cell = self.cells.setdefault(cell.key, cell)
        for ev in evals:
            previous = cell.evals.setdefault(ev.name, ev)
            if previous != ev:
                raise ValueError(f"two different evals are named '{ev.name}' for {cell.key}")
        return cell

    def merge(self, other: "Plan") -> "Plan":
        for cell in other.cells.values():
            self.add(cell.trainset, cell.model, cell.seed, cell.evals.values())
        return self

    def ordered(self) -> list[Cell]:
        """Real-data cells first, seed by seed (so an interrupted run has whole seeds); then the
        cells that train on generated messages, after their generator."""
        cells = list(self.cells.values())
        real = sorted((c for c in cells if c.generator_key() is None), key=lambda c: c.seed)
        synthetic = sorted((c for c in cells if c.generator_key() is not None), key=lambda c: c.seed)
        return real + synthetic

    def __len__(self) -> int:
        return len(self.cells)
