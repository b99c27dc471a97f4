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
- ``shift-<name>``: the train split of a real shift's train side (robustness: temporal, difficulty);
- ``aug-r<size>-mix`` / ``aug-r<size>-syn``: the real subset plus the generator's filtered
  samples, or the samples alone (augmentation).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nlpgd.config import ExperimentConfig, ExperimentGrid
from nlpgd.errors import NlpgdError
from nlpgd.models.base import PAIR_KINDS, Classifier
from nlpgd.models.registry import build_model

FULL = "full"
MAIN = "main"


# -- matched pairs ------------------------------------------------------------------------


@dataclass(frozen=True)
class Pair:
    """A generative and a discriminative model of the config, trained on identical data."""

    label: str
    generative: str
    discriminative: str
    kind: str  # continuum | linear | scratch | pretrained (PAIR_KINDS) | configured

    @property
    def members(self) -> tuple[str, str]:
        return self.generative, self.discriminative

    def as_dict(self) -> dict:
        return {"label": self.label, "generative": self.generative, "discriminative": self.discriminative}


def describe(params) -> Classifier:
    """The model ``params`` configure, unfitted: what it can do and how it pairs, read from the
    instance's declared capabilities (configuration narrows them), never from its type name."""
    return build_model(params)


def is_generative(params) -> bool:
    """Whether a configured model is in the generative family (complement naive Bayes is not)."""
    return describe(params).family == "generative"


def is_hybrid(params) -> bool:
    """Whether a configured model is a hybrid (``Classifier.family``): it belongs to neither
    family, so it is never a pair member; hybrids are the continuum's reference rows."""
    return describe(params).family == "hybrid"


def data_differences(cfg: ExperimentConfig, a: str, b: str) -> list[str]:
    """How the training data of models ``a`` and ``b`` differ (empty: identical): each model's
    own data settings (e.g. GPT-2's ``max_train_per_class``), a missing one meaning the default."""
    da, db = (describe(cfg.models[m]).training_data_settings() for m in (a, b))
    out = []
    for key in sorted(set(da) | set(db)):
        va, vb = da.get(key), db.get(key)
        if va != vb:
            out.append(
                f"'{a}' has {key} {va if va is not None else 'unset'}, '{b}' {vb if vb is not None else 'unset'}"
            )
    return out


AUTO_LABELS = {
    "continuum": "continuum pair (same network, objective only)",
    "linear": "linear pair (same word counts)",
    "scratch": "neural pair, from scratch",
    "pretrained": "neural pair, pretrained",
}


def _continuum_pairs(cfg: ExperimentConfig) -> list[Pair]:
    """A generative and a discriminative model of one type whose settings are equal but for the
    training objective (``objective_free_settings``): e.g. GPT-2 at weights (1, 0) and (0, 1)."""
    models = {m: describe(p) for m, p in cfg.models.items()}
    for g, gm in models.items():
        if gm.family != "generative" or gm.objective_free_settings() is None:
            continue
        for d, dm in models.items():
            same_type = dm.type_name == gm.type_name
            if (
                same_type
                and dm.family == "discriminative"
                and dm.objective_free_settings() == gm.objective_free_settings()
            ):
                return [Pair(f"{AUTO_LABELS['continuum']}: {g} vs {d}", g, d, "continuum")]
    return []


def _kind_pair(cfg: ExperimentConfig, kind: str, notes: list[str]) -> Pair | None:
    """The first generative and the first discriminative model of pair kind ``kind``, of two
    types (the continuum pair compares one type's objectives), on identical count features for
    the linear pair and on identical data. A model may be in the continuum pair and this one."""
    models = {m: describe(p) for m, p in cfg.models.items()}
    gens = [m for m, x in models.items() if x.pair_kind == kind and x.family == "generative"]
    for g in gens:
        discs = [
            m
            for m, x in models.items()
            if x.pair_kind == kind and x.family == "discriminative" and x.type_name != models[g].type_name
        ]
        if not discs:
            continue
        d = discs[0]
        if models[g].input_settings() != models[d].input_settings() and kind == "linear":
            notes.append(f"{g} and {d} use different count features, so they are not paired")
            return None
        differ = data_differences(cfg, g, d)
        if differ:
            notes.append(f"{g} and {d} train on different data ({'; '.join(differ)}), so they are not paired")
            return None
        return Pair(f"{AUTO_LABELS[kind]}: {g} vs {d}", g, d, kind)
    return None


def _auto_pairs(cfg: ExperimentConfig, notes: list[str]) -> list[Pair]:
    """The continuum pair first, then one pair of each :data:`PAIR_KINDS` kind."""
    pairs = _continuum_pairs(cfg)
    for kind in PAIR_KINDS:
        pair = _kind_pair(cfg, kind, notes)
        if pair is not None:
            pairs.append(pair)
    return pairs


def _configured_member(cfg: ExperimentConfig, i: int, role: str, name: str) -> None:
    key = f"config key 'experiment.pairs.{i}.{role}'"
    if name not in cfg.models:
        raise NlpgdError(f"{key}: no model '{name}' in models (models: {', '.join(cfg.models)})")
    family = describe(cfg.models[name]).family
    if family == "hybrid":
        raise NlpgdError(
            f"{key}: model '{name}' is a hybrid; a pair is one purely generative and one discriminative model"
        )
    if family != role:
        raise NlpgdError(f"{key}: model '{name}' is {family}")


def _configured_pairs(cfg: ExperimentConfig, grid: ExperimentGrid) -> list[Pair]:
    pairs = []
    for i, spec in enumerate(grid.pairs or []):
        for role, name in (("generative", spec.generative), ("discriminative", spec.discriminative)):
            _configured_member(cfg, i, role, name)
        differ = data_differences(cfg, spec.generative, spec.discriminative)
        if differ:
            raise NlpgdError(
                f"config key 'experiment.pairs.{i}': the members train on different data ({'; '.join(differ)}); "
                "a pair trains on identical data"
            )
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


def shift_sources(shift: str) -> tuple[str, str]:
    """The data keys of a real shift's two sides: its train side (also the training set's
    name, ``shift-<name>``) and its target side."""
    return f"shift-{shift}", f"shift-{shift}-target"


def shift_set(shift: str) -> TrainSet:
    return TrainSet(shift_sources(shift)[0], source=shift_sources(shift)[0])


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
