"""Sampling messages of one class from a run's generative model, and assessing them.

:func:`generate_samples` picks the first model of the run (in name order) that can generate,
or the one asked for, samples ``n`` distinct messages, writes them as JSONL and writes a
quality report beside them (``<out>.quality.json``): diversity, copies of training messages,
label fidelity under the run's other classifiers, lengths, and realism (:mod:`nlpgd.realism`):
a classifier two-sample test under each judge, the copies of held-out messages, and a
reference-LM perplexity ratio against the run's held-out
messages of the class (validation and test, re-read from the run's data config and checked
against its split manifest; never the generator's training messages). The output path is
checked before any sampling, so a bad ``--out`` costs nothing.

The settings come from the flags, or from a grid scored on the validation split and saved in
the run (``Sampling.mode`` tune / auto: :mod:`nlpgd.experiments.sampling_choice`); with
``Sampling.select = K`` a critic keeps ``n`` of ``K x n`` candidates and the plain sample is
assessed beside them (:mod:`nlpgd.experiments.critic`).

With ``Sampling.shots = K`` an instruct model (one with a chat template) is asked for each
message through an instruction showing K real messages of the class from the run's train
split (``train_texts.jsonl``), drawn by seed for each sample; K = 0 asks zero-shot.
"""

from __future__ import annotations

import contextlib
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlpgd.config import config_from_dict
from nlpgd.data import check_manifest, load_splits
from nlpgd.errors import NlpgdError
from nlpgd.experiments.critic import check_select, select_with_critic
from nlpgd.generation import JUDGE, SELF, draw_shots, instruction, sample_quality
from nlpgd.io import atomic_writer, check_writable, inside_folder, read_json, write_json
from nlpgd.models.base import Classifier
from nlpgd.models.registry import described_model, saved_type, types_with
from nlpgd.realism import DEFAULT_JUDGES, heldout_copies, judge_all, perplexity_ratio
from nlpgd.runs import Run, open_run, quality_path, writing
from nlpgd.sampling import SamplingSettings, check_count
from nlpgd.scoring import load_named_model

log = logging.getLogger(__name__)
GRID_SAMPLES = 200  # samples per setting when --sampling tune scores the grid


@dataclass
class Sampling:
    """How to sample: the checked settings (:class:`~nlpgd.sampling.SamplingSettings`; word
    samplers read only the temperature), and what token-by-token samplers can be given."""

    settings: SamplingSettings = field(default_factory=SamplingSettings)
    prompts: list[str] | None = None
    progress: bool = True
    shots: int | None = None  # in-context: K real messages of the class in an instruction (0: zero-shot)
    medium: str = "message"  # what the messages are, in the instruction ("SMS text message", "email")
    select: int | None = None  # keep the n of select * n candidates a critic finds most real
    mode: str = "flags"  # flags: these settings; tune: chosen on validation and saved; auto: the saved choice

    def for_model(self, model: Classifier, key: str) -> dict[str, Any]:
        if self.shots is not None and self.prompts is not None:
            raise NlpgdError("give --shots or --prompt/--prompts-file, not both")
        if not model.can("autoregressive"):
            if self.prompts is not None or self.shots is not None:
                what = "continue a prompt" if self.shots is None else "follow an instruction prompt (--shots)"
                raise NlpgdError(f"model {key} ({model.type_name}) samples words independently and cannot {what}")
            return {"temperature": self.settings.temperature}
        out = {**self.settings.as_dict(), "progress": self.progress}
        if self.prompts is not None:
            out["prompts"] = self.prompts
        return out


@dataclass
class Realism:
    """How realism is measured: the reference LM for the perplexity ratio (None: skipped), the
    held-out splits whose messages of the class are the real side, and the two-sample judges
    (:data:`nlpgd.realism.JUDGES`)."""

    reference_lm: str | None = "smollm2"
    splits: tuple[str, ...] = ("validation", "test")
    judges: tuple[str, ...] = DEFAULT_JUDGES
    max_new_tokens: int | None = None  # real messages are cut as samples of this many tokens are


@dataclass
class Generated:
    samples: list[str]
    samples_file: Path
    quality_file: Path
    quality: dict = field(default_factory=dict)


def _can_generate(folder: Path) -> bool:
    """Whether the model saved in ``folder``, as configured, can generate."""
    return described_model(folder).can("can_generate")


def _pick(folders: dict[str, list[Path]], model: str | None, run_path: Path) -> tuple[str, Path]:
    """The generator's key (``name/seedK``) and folder."""
    if model is not None:
        name, _, seed = model.partition("/")
        if name not in folders:
            raise NlpgdError(f"run {run_path} has no model '{name}' (models: {', '.join(folders) or 'none'})")
        candidates = [p for p in folders[name] if not seed or p.name == seed]
        if not candidates:
            raise NlpgdError(f"model '{name}' of run {run_path} has no folder '{seed}'")
        if not _can_generate(candidates[0]):
            raise NlpgdError(f"model '{name}' ({saved_type(candidates[0])}) cannot generate text")
        return f"{name}/{candidates[0].name}", candidates[0]
    for name, seeds in folders.items():
        if _can_generate(seeds[0]):
            return f"{name}/{seeds[0].name}", seeds[0]
    raise NlpgdError(
        f"run {run_path} has no model that can generate text (types that can: {', '.join(types_with('can_generate'))})"
    )


def generate_samples(
    run_dir: Path,
    label: str,
    n: int,
    *,
    seed: int = 0,
    out: Path | None = None,
    model: str | None = None,
    sampling: Sampling | None = None,
    realism: Realism | None = None,
) -> Generated:
    """Sample ``n`` distinct ``label`` messages from a run's generator and assess them (with
    ``sampling.select``, the ``n`` a critic keeps of ``select * n`` candidates, and the plain
    sample assessed beside them)."""
    n = check_count(n)
    sampling, realism = sampling or Sampling(), realism or Realism()
    run = open_run(run_dir)
    out = Path(out).expanduser() if out is not None else run.path / "generated" / f"{label}-seed{seed}.jsonl"
    # samples written into the run, or a sampling choice saved in it (--sampling tune): one writer
    # at a time; samples written elsewhere with no choice to save: the run is only read
    writes = inside_folder(out, run.path) or sampling.mode == "tune"
    with writing(run.path) if writes else contextlib.nullcontext():
        return _generate(run, label, n, seed, check_output(out), model, sampling, realism)


def _generate(
    run: Run, label: str, n: int, seed: int, out: Path, model: str | None, sampling: Sampling, realism: Realism | None
) -> Generated:
    """:func:`generate_samples` once the output is known to be writable (and the run locked if it is inside)."""
    folders = run.model_folders()
    key, folder = _pick(folders, model, run.path)
    generator = load_generator(key, folder, label, sampling.progress)
    select = check_select(sampling.select, generator, key)
    if select is not None and (sampling.shots is not None or sampling.prompts is not None):
        raise NlpgdError("--select draws plain class-conditional candidates: give it without --shots or --prompt")
    sampling, choice = settle_sampling(run, key, generator, label, min(n, GRID_SAMPLES), seed, sampling, realism)
    options = sampling.for_model(generator, key)
    in_context = None
    if sampling.shots is not None:
        options["chat"], in_context = in_context_instructions(run, label, sampling.shots, n, seed, sampling.medium)
    settings = {k: v for k, v in options.items() if k not in ("progress", "chat")}
    if select is None:
        samples, selection = generator.generate(label, n, seed=seed, **options), None
    else:
        selection = select_with_critic(generator, label, n, select, train_rows(run, label), settings, seed)
        samples = selection.selected
    write_samples(out, samples, label)
    quality = assess(run, folders, key, generator, samples, label, realism, seed)
    quality.update(sampling_choice=choice, run_dir=str(run.path), generator=key, seed=seed, samples_file=str(out))
    quality.update(
        sampling=settings, selection="plain sampling" if select is None else f"critic-selected, K = {select}"
    )
    if selection is not None:
        quality["critic"] = selection.record
        quality["plain"] = assess(run, folders, key, generator, selection.plain, label, realism, seed)
        quality["plain"]["selection"] = f"plain sampling: the first {len(selection.plain)} candidates"
    if in_context is not None:
        quality["in_context"] = in_context
    quality_file = quality_path(out)
    write_json(quality_file, quality)
    return Generated(samples, out, quality_file, quality)


def train_rows(run: Run, label: str) -> list[tuple[str, str]]:
    """``(id, text)`` of the run's train-split messages of ``label`` (the critic's real side)."""
    path = run.path / "train_texts.jsonl"
    rows = read_train_rows(path)
    if rows is None:
        raise NlpgdError(f"--select trains its critic on the run's train split, {path}, which is missing")
    return [(i, t) for i, t, y in rows if y == label]


def load_generator(key: str, folder: Path, label: str, progress: bool) -> Classifier:
    """The run's model ``key``, checked that it can generate ``label`` messages."""
    generator = load_named_model(key, folder, progress=progress)
    if not generator.can("can_generate"):
        raise NlpgdError(f"model {key} cannot generate text as configured (e.g. complement naive Bayes)")
    if label not in [str(c) for c in generator.classes_]:
        raise NlpgdError(f"unknown label '{label}'; model {key} knows {', '.join(map(str, generator.classes_))}")
    return generator


def settle_sampling(
    run: Run, key: str, generator: Classifier, label: str, n_grid: int, seed: int, sampling: Sampling, realism
) -> tuple[Sampling, dict | None]:
    """The sampling to use and what the report says of its choice: the flags as given
    (``flags``); the run's saved choice (``auto``; one sentence when there is none); or a new
    choice on the validation split, saved in the run (``tune``, :mod:`sampling_choice`)."""
    from dataclasses import replace

    from nlpgd.experiments import sampling_choice as sc

    if sampling.mode == "flags":
        return sampling, None
    if sampling.mode not in ("auto", "tune"):
        raise NlpgdError(f"--sampling must be flags, auto or tune, got '{sampling.mode}'")
    if not generator.can("autoregressive") or sampling.shots is not None or sampling.prompts is not None:
        raise NlpgdError(
            f"--sampling {sampling.mode} chooses token-by-token settings for plain class-conditional sampling; "
            f"model {key} ({generator.type_name}) with these options has none to choose"
        )
    max_new = sampling.settings.max_new_tokens
    if sampling.mode == "auto":
        record = sc.load_choice(run.path, key, label)
    else:
        rows = heldout_rows(run, label, ("validation",))
        train = read_train_texts(run.path / "train_texts.jsonl")
        base = sampling.settings
        record = sc.choose_sampling(
            generator, label, rows, train[0] if train else [], base=base, judges=realism.judges, n=n_grid, seed=seed
        )
        sc.save_choice(run.path, key, label, record)
    chosen = replace(sampling, settings=sc.settings_of(record, max_new))
    summary = {k: record[k] for k in ("settings", "score", "what", "copy_filter") if k in record}
    return chosen, {"mode": sampling.mode, "file": str(run.path / sc.CHOICE_FILE), **summary}


def write_samples(out: Path, samples: list[str], label: str) -> None:
    """The samples as JSON Lines (``{"text", "label"}``), written atomically."""
    with atomic_writer(out) as f:
        for s in samples:
            f.write(json.dumps({"text": s, "label": label}, ensure_ascii=False) + "\n")


def sample_in_run(run: Run, name: str, seed: int, model: Classifier, cfg, train: tuple[list[str], list[str]]) -> float:
    """``compare``'s sampling step (``generation:`` in the config, ``cfg``): ``cfg.n`` messages
    of ``cfg.label`` from the model just fitted (sampling seed = the fit's seed), written with
    their quality report to ``run.generated_path``. Label fidelity is judged by a naive Bayes
    trained on the real train split (``JUDGE``, the same judge for every model) and by the
    generator itself (``SELF``). Returns the seconds spent sampling."""
    import time

    from nlpgd.models.registry import build_model
    from nlpgd.params import NaiveBayesParams

    key = f"{name}/seed{seed}"
    sampling = Sampling(SamplingSettings.of(cfg), progress=False)
    t0 = time.perf_counter()
    samples = model.generate(cfg.label, cfg.n, seed=seed, **sampling.for_model(model, key))
    seconds = time.perf_counter() - t0
    judge = build_model(NaiveBayesParams()).fit(*train)
    real = [t for t, y in zip(*train) if y == cfg.label]
    quality = sample_quality(samples, train[0], real, {JUDGE: judge, SELF: model}, cfg.label)
    out = run.generated_path(name, seed, cfg.label)
    write_samples(out, samples, cfg.label)
    quality.update(generator=key, seed=seed, seconds=seconds, sampling=cfg.model_dump(mode="json"))
    write_json(quality_path(out), quality)
    return seconds


def check_output(out: Path) -> Path:
    """``out`` if a samples file can be written there (and its quality report beside it):
    not a folder, in a folder that exists or can be made and accepts new files."""
    out = Path(out).expanduser()
    for path in (out, quality_path(out)):
        if path.is_dir():
            raise NlpgdError(
                f"cannot write samples to {path}: it is a folder (give a file name, e.g. {path}/spam.jsonl)"
            )
    check_writable(out.parent, f"cannot write samples to {out}")
    return out


def assess(
    run: Run,
    folders: dict[str, list[Path]],
    key: str,
    generator: Classifier,
    samples: list[str],
    label: str,
    realism: Realism | None = None,
    seed: int = 0,
) -> dict:
    """The quality report: label fidelity under the generator and the run's other classifiers
    (the lowest seed of each; a model that fails to load is left out with a note), and
    realism against the run's held-out messages of ``label`` (skipped with a note when they
    cannot be read back)."""
    classifiers: dict[str, Classifier] = {key: generator}
    notes = []
    for name, seeds in folders.items():
        k = f"{name}/{seeds[0].name}"
        if k != key:
            try:
                classifiers[k] = load_named_model(k, seeds[0], progress=generator.progress)
            except NlpgdError as exc:  # a damaged model leaves the others usable
                notes.append(f"{exc}; it is left out of the label-fidelity check")
                log.warning("%s", notes[-1])
    train = read_train_texts(run.path / "train_texts.jsonl")
    real = [t for t, y in zip(*train) if y == label] if train else []
    report = sample_quality(samples, train[0] if train else None, real, classifiers, label)
    report["notes"].extend(notes)
    if train is None:
        report["notes"].append(f"{run.path / 'train_texts.jsonl'} is missing: real-message lengths skipped too")
    report["realism"] = measure_realism(run, samples, label, realism or Realism(), seed, report["notes"], generator)
    return report


def measure_realism(
    run: Run, samples: list[str], label: str, realism: Realism, seed: int, notes: list[str], generator=None
) -> dict:
    """Every judge's two-sample test, the copies of held-out messages and the perplexity ratio
    against held-out real messages of ``label``; each part that cannot be measured is None,
    with a note saying why. With a token-by-token ``generator``, real messages are cut to the
    first tokens it can write (:func:`cut_like`), as its samples are."""
    out: dict[str, Any] = {"real": None, "judges": None, "heldout_copies": None, "perplexity": None}
    try:
        real = heldout_texts(run, label, realism.splits)
    except NlpgdError as exc:
        notes.append(f"realism skipped: the run's held-out messages cannot be read back ({exc})")
        return out
    real, cut = cut_like(generator, real, realism.max_new_tokens)
    out["real"] = {
        "splits": list(realism.splits),
        "n": len(real),
        "what": f"the run's {' and '.join(realism.splits)} messages of '{label}' (never used to train the generator)",
        "cut": cut,
    }
    out["heldout_copies"] = heldout_copies(samples, real)
    try:
        out["judges"] = judge_all(samples, real, realism.judges, seed=seed, embed=embedder(realism.judges))
    except NlpgdError as exc:
        notes.append(f"two-sample test skipped: {exc}")
    if realism.reference_lm is None:
        notes.append("reference-LM perplexity skipped (no reference model asked for)")
        return out
    from nlpgd.models.lm_scoring import ReferenceLM  # torch: only when a reference model is asked for

    try:
        ref = ReferenceLM(realism.reference_lm)
        (ll_s, n_s), (ll_r, n_r) = ref.score(samples), ref.score(real)
        out["perplexity"] = {"reference": realism.reference_lm, **perplexity_ratio(ll_s, n_s, ll_r, n_r, seed=seed)}
    except NlpgdError as exc:
        notes.append(f"reference-LM perplexity skipped: {exc}")
    return out


def embedder(judges):
    """The embedding function of the ``encoder`` judge when it is asked for (torch: loaded then only)."""
    if "encoder" not in judges:
        return None
    from nlpgd.models.sentence_embed import embed

    return embed


def cut_like(generator, real: list[str], max_new_tokens: int | None = None) -> tuple[list[str], str | None]:
    """Real messages cut the way the generator's samples are: to the first ``N`` tokens of its
    tokenizer (``N``: the fewer of ``max_new_tokens`` and what its training sequences held),
    decoded back to text; ``(real, None)`` for a generator that does not write token by token
    or when no message is longer. The second item says what was done, for the report."""
    if generator is None or not generator.can("autoregressive"):
        return real, None
    limit = generator.max_length_ - 2  # the start/label token and the end token
    if max_new_tokens is not None:
        limit = min(limit, int(max_new_tokens))
    ids = generator.encode(real)
    longer = sum(len(x) > limit for x in ids)
    if not longer:
        return real, None
    tok = generator.tokenizer_
    out = [t if len(x) <= limit else tok.decode(x[:limit], skip_special_tokens=True).strip() for t, x in zip(real, ids)]
    return out, (
        f"{longer} of {len(real)} real messages cut to their first {limit} tokens (the generator's tokenizer), "
        "as the generator's samples are"
    )


def heldout_texts(run: Run, label: str, splits: tuple[str, ...]) -> list[str]:
    """The messages of ``label`` in the run's ``splits``, re-read through the run's data config
    and checked against its split manifest (one sentence when either fails)."""
    return [t for _, t in heldout_rows(run, label, splits)]


def heldout_rows(run: Run, label: str, splits: tuple[str, ...]) -> list[tuple[str, str]]:
    """``(id, text)`` of the messages of ``label`` in the run's ``splits`` (:func:`heldout_texts`)."""
    cfg = config_from_dict(read_json(run.path / "config.json", "run config"), where=str(run.path / "config.json"))
    data = load_splits(cfg.data)
    check_manifest(data, read_json(run.path / "split_manifest.json", "split manifest"))
    rows = []
    for s in splits:
        ids = [str(i) for i in data.dataset[s]["id"]]
        rows += [(i, t) for i, t, y in zip(ids, data.texts(s), data.labels(s)) if y == label]
    return rows


def in_context_instructions(run: Run, label: str, k: int, n: int, seed: int, medium: str) -> tuple[list[str], dict]:
    """``n`` instructions, each showing ``k`` train messages of ``label`` drawn by seed, and
    what the quality report records about them (the train ids shown to each sample)."""
    path = run.path / "train_texts.jsonl"
    rows = read_train_rows(path)
    if rows is None:
        raise NlpgdError(f"--shots draws real messages from {path}, which is missing")
    pool = [(i, t) for i, t, y in rows if y == label]
    if k > len(pool):
        raise NlpgdError(
            f"--shots {k} asks for more examples than the run's train split has '{label}' messages ({len(pool)})"
        )
    draws = draw_shots(len(pool), k, n, seed)
    chat = [instruction(label, [pool[j][1] for j in d], medium) for d in draws]
    record = {"shots": k, "medium": medium, "pool": f"{path.name}, label '{label}' ({len(pool)} messages)"}
    return chat, {**record, "shot_ids": [[pool[j][0] for j in d] for d in draws], "example_instruction": chat[0]}


def read_train_texts(path: Path) -> tuple[list[str], list[str]] | None:
    rows = read_train_rows(path)
    if rows is None:
        return None
    return [t for _, t, _ in rows], [y for _, _, y in rows]


def read_train_rows(path: Path) -> list[tuple[str, str, str]] | None:
    """``(id, text, label)`` of each line of a run's ``train_texts.jsonl`` (None if missing)."""
    if not path.is_file():
        return None
    rows = []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                rows.append((str(row.get("id", lineno)), str(row["text"]), str(row["label"])))
            except (ValueError, KeyError, TypeError, AttributeError):
                raise NlpgdError(f"{path}, line {lineno}: expected a JSON object with 'text' and 'label'") from None
    return rows
