"""Several corpora on one claims page: the config's ``corpora:`` list.

Each corpus is run exactly as a one-corpus config with its data section would be (the same
design, plans, cells and analysis, so its verdicts are those of that run), in its own folder
``corpora/<name>/`` of one run folder; the enclosing folder holds the config, the lock and the
page. One more phase per corpus A scores every paired model fitted on A's full train split on
the test split of every other corpus B (eval ``on-corpus-<B>``: no extra fit); with each
model's own test split (the diagonal) that is the cross-corpus matrix of :mod:`.matrix`.

A resumed run continues the corpus it stopped in; a finished corpus is only analysed again.
"""

from __future__ import annotations

import logging
from functools import reduce
from pathlib import Path

from nlpgd.config import DataConfig, ExperimentConfig, dataset_config
from nlpgd.data import check_manifest
from nlpgd.errors import NlpgdError
from nlpgd.experiments.claims import matrix
from nlpgd.experiments.claims.measure import Store
from nlpgd.experiments.claims.plan import FULL, MAIN, Plan, TrainSet, text_eval
from nlpgd.experiments.claims.runner import EVALS_FILE, Design, Session
from nlpgd.experiments.compare import PROGRESS_FILE, reopen_run, start_run
from nlpgd.io import read_json
from nlpgd.runs import Run

log = logging.getLogger(__name__)
CORPORA_DIR = "corpora"
PHASE = "cross-corpus"  # the phase (and timings key) of the matrix's evals


def corpus_key(name: str) -> str:
    """The data key (and eval ``on-<key>``) under which another corpus's test split is scored."""
    return f"corpus-{name}"


def corpus_configs(cfg: ExperimentConfig) -> dict[str, ExperimentConfig]:
    """Each corpus's one-corpus config: ``cfg`` with that corpus as its ``data`` section."""
    out = {}
    for i, c in enumerate(cfg.corpora or []):
        data = c.data
        if not isinstance(data, DataConfig):
            try:
                data = dataset_config(data)
            except NlpgdError as exc:
                raise NlpgdError(f"config key 'corpora.{i}.data' (corpus '{c.name}'): {exc}") from None
        out[c.name] = _without_shifts(cfg.model_copy(update={"data": data, "corpora": None}))
    return out


def _without_shifts(one: ExperimentConfig) -> ExperimentConfig:
    """The real shifts are SpamAssassin's (:mod:`nlpgd.data.shifts`): a corpus read from elsewhere
    runs without them (they would fit the same SpamAssassin cells again in its folder)."""
    grid = one.experiment
    if grid is None or not grid.robustness.shifts or one.data.source == "spamassassin":
        return one
    robustness = grid.robustness.model_copy(update={"shifts": []})
    return one.model_copy(update={"experiment": grid.model_copy(update={"robustness": robustness})})


def designs(cfg: ExperimentConfig, names: list[str]) -> dict[str, tuple]:
    """``{corpus: (design, prepared data, plans)}``, every corpus loaded and checked before
    anything is written, each design given the other corpora's splits to score."""
    from nlpgd.experiments.claims import design

    parts = {}
    for c, one in corpus_configs(cfg).items():
        try:
            parts[c] = design(one, names)
        except NlpgdError as exc:
            raise NlpgdError(f"corpus '{c}': {exc}") from None
        if one.experiment.robustness.shifts != cfg.experiment.robustness.shifts:
            parts[c][0].notes.append(
                f"the real shifts ({', '.join(cfg.experiment.robustness.shifts)}) are SpamAssassin's: they run on "
                f"the SpamAssassin corpora only, not on '{c}'"
            )
    for a, (d, _, _) in parts.items():
        for b, (other, _, _) in parts.items():
            if b == a:
                continue
            if corpus_key(b) in d.data:
                raise NlpgdError(
                    f"config key 'experiment.robustness.cross_domain.{corpus_key(b)}': the name is taken by corpus "
                    f"'{b}' of the cross-corpus matrix; rename the target"
                )
            d.data[corpus_key(b)] = other.data[MAIN]
            d.others.append(corpus_key(b))
    return parts


def matrix_plan(d: Design) -> Plan:
    """Every paired model fitted on the corpus's full train split, scored on each other corpus's test split."""
    p = Plan()
    evals = [text_eval(source=k) for k in d.others]
    for seed in d.seeds:
        for m in d.paired:
            p.add(TrainSet(FULL), m, seed, evals)
    return p


def _open_parent(kind: str, cfg: ExperimentConfig, resume: Path | None, command: str) -> Run:
    if resume is None:
        names = [c.name for c in cfg.corpora or []]
        return start_run(cfg, None, command, folder=f"{cfg.name}/{kind}", kind=kind, corpora=names)
    run, _ = reopen_run(cfg, None, resume)
    if run.info.get("kind") != kind:
        raise NlpgdError(f"cannot resume {run.path} with '{kind}': it is a '{run.info.get('kind')}' run")
    return run


def _open_corpus(parent: Run, name: str, kind: str, d: Design, prepared, command: str):
    """The corpus's folder inside ``parent`` (new, or as an interruption left it) and its records."""
    from nlpgd.experiments.claims import TIMINGS_FILE

    path = parent.path / CORPORA_DIR / name
    if not (path / "run.json").is_file():
        return start_run(d.cfg, prepared, command, at=path, kind=kind, corpus=name), {}, {}, {}
    check_manifest(prepared, read_json(path / "split_manifest.json"))
    run = Run(path)
    run.info = read_json(path / "run.json")
    records = [read_json(path / f) if (path / f).is_file() else {} for f in (PROGRESS_FILE, EVALS_FILE, TIMINGS_FILE)]
    return run, *records


def _one_corpus(
    kind: str, names: list[str], where: tuple, name: str, part: tuple, resume, command: str, engine
) -> list:
    """One corpus carried out (unless finished before a resume) and analysed: its results.
    ``where``: the enclosing run, the fits saved in its other corpora and the fits in all."""
    from nlpgd.experiments.claims import _report, context_line, execute_phases, tidy

    d, prepared, phases = part
    log.info("corpus %s: %s", name, context_line(d))
    run, done, evals_done, timings = _open_corpus(where[0], name, kind, d, prepared, command)
    finished = run.info.get("status") == "complete"
    if not finished:
        s = Session(d, run, done, evals_done, resume=resume is not None, progress=d.cfg.progress)
        execute_phases(f"{kind} {name}", s, phases, timings, command, where=where, engine=engine)
    results = _report(kind, names, d, run.path, timings)
    if not finished:
        tidy(run.path)
        run.finish({"wall_seconds": timings})
    return results


def run_corpora(
    kind: str, names: list[str], cfg: ExperimentConfig, *, resume: Path | None, command: str, engine
) -> Path:
    """Every experiment of ``names`` on every corpus of ``cfg.corpora``, the cross-corpus matrix
    and one page; returns the finished run folder."""
    from nlpgd.experiments.claims import context_line
    from nlpgd.report.corpora import write_corpora_page

    parts = {
        c: (d, prepared, {**plans, PHASE: matrix_plan(d)}) for c, (d, prepared, plans) in designs(cfg, names).items()
    }
    cells = {c: reduce(Plan.merge, part[2].values(), Plan()).cells for c, part in parts.items()}
    parent = _open_parent(kind, cfg, resume, command)
    saved: dict[str, bool] = {}  # the fits of the corpora done so far, for the interruption's count
    results = {}
    for c, part in parts.items():
        where = (parent, saved, sum(map(len, cells.values())))
        results[c] = _one_corpus(kind, names, where, c, part, resume, command, engine)
        saved.update({f"{c}/{key}": True for key in cells[c]})
    stores = {c: (part[0], Store(parent.path / CORPORA_DIR / c)) for c, part in parts.items()}
    found = matrix.analyse(stores)
    contexts = {c: context_line(part[0]) for c, part in parts.items()}
    write_corpora_page(parent.path, results, contexts, found, matrix.tables(found), folder=CORPORA_DIR)
    timings = {c: read_json(parent.path / CORPORA_DIR / c / "run.json").get("wall_seconds") for c in parts}
    return parent.finish({"wall_seconds": timings})
