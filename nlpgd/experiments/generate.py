"""Sampling messages of one class from a run's generative model, and assessing them.

:func:`generate_samples` picks the first model of the run (in name order) that can generate,
or the one asked for, samples ``n`` distinct messages, writes them as JSONL and writes a
quality report beside them (``<out>.quality.json``): diversity, copies of training messages,
label fidelity under the run's other classifiers, lengths. The output path is checked before
any sampling, so a bad ``--out`` costs nothing.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nlpgd.errors import NlpgdError
from nlpgd.generation import JUDGE, SELF, sample_quality
from nlpgd.io import atomic_writer, check_writable, write_json
from nlpgd.models.base import Classifier
from nlpgd.models.registry import model_class, saved_type, types_with
from nlpgd.runs import Run, open_run, quality_path
from nlpgd.scoring import load_named_model

log = logging.getLogger(__name__)


@dataclass
class Sampling:
    """How to sample: the settings every generator takes, and those of token-by-token ones."""

    temperature: float = 1.0
    top_k: int = 50
    top_p: float = 0.95
    max_new_tokens: int = 64
    prompts: list[str] | None = None
    progress: bool = True

    def for_model(self, model: Classifier, key: str) -> dict[str, Any]:
        if not model.can("autoregressive"):
            if self.prompts is not None:
                raise NlpgdError(
                    f"model {key} ({model.type_name}) samples words independently and cannot continue a prompt"
                )
            return {"temperature": self.temperature}
        out = {k: getattr(self, k) for k in ("temperature", "top_k", "top_p", "max_new_tokens", "progress")}
        if self.prompts is not None:
            out["prompts"] = self.prompts
        return out


@dataclass
class Generated:
    samples: list[str]
    samples_file: Path
    quality_file: Path
    quality: dict = field(default_factory=dict)


def _can_generate(type_name: str) -> bool:
    return model_class(type_name).capabilities.can_generate


def _pick(folders: dict[str, list[Path]], model: str | None, run_path: Path) -> tuple[str, Path]:
    """The generator's key (``name/seedK``) and folder."""
    if model is not None:
        name, _, seed = model.partition("/")
        if name not in folders:
            raise NlpgdError(f"run {run_path} has no model '{name}' (models: {', '.join(folders) or 'none'})")
        candidates = [p for p in folders[name] if not seed or p.name == seed]
        if not candidates:
            raise NlpgdError(f"model '{name}' of run {run_path} has no folder '{seed}'")
        if not _can_generate(saved_type(candidates[0])):
            raise NlpgdError(f"model '{name}' ({saved_type(candidates[0])}) cannot generate text")
        return f"{name}/{candidates[0].name}", candidates[0]
    for name, seeds in folders.items():
        if _can_generate(saved_type(seeds[0])):
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
) -> Generated:
    """Sample ``n`` distinct ``label`` messages from a run's generator and assess them."""
    if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
        raise NlpgdError(f"the number of samples must be a positive integer, got {n!r}")
    sampling = sampling or Sampling()
    run = open_run(run_dir)
    out = check_output(Path(out) if out is not None else run.path / "generated" / f"{label}-seed{seed}.jsonl")
    folders = run.model_folders()
    key, folder = _pick(folders, model, run.path)
    generator = load_named_model(key, folder, progress=sampling.progress)
    if not generator.can("can_generate"):
        raise NlpgdError(f"model {key} cannot generate text as configured (e.g. complement naive Bayes)")
    if label not in [str(c) for c in generator.classes_]:
        raise NlpgdError(f"unknown label '{label}'; model {key} knows {', '.join(map(str, generator.classes_))}")
    options = sampling.for_model(generator, key)
    samples = generator.generate(label, n, seed=seed, **options)
    write_samples(out, samples, label)
    quality = assess(run, folders, key, generator, samples, label)
    quality.update(
        run_dir=str(run.path),
        generator=key,
        seed=seed,
        samples_file=str(out),
        sampling={k: v for k, v in options.items() if k != "progress"},
    )
    quality_file = quality_path(out)
    write_json(quality_file, quality)
    return Generated(samples, out, quality_file, quality)


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
    sampling = Sampling(cfg.temperature, cfg.top_k, cfg.top_p, cfg.max_new_tokens, progress=False)
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
    run: Run, folders: dict[str, list[Path]], key: str, generator: Classifier, samples: list[str], label: str
) -> dict:
    """The quality report: label fidelity under the generator and the run's other classifiers
    (the lowest seed of each; a model that fails to load is left out with a note)."""
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
    return report


def read_train_texts(path: Path) -> tuple[list[str], list[str]] | None:
    if not path.is_file():
        return None
    texts, labels = [], []
    with path.open(encoding="utf-8") as f:
        for lineno, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                texts.append(str(row["text"]))
                labels.append(str(row["label"]))
            except (ValueError, KeyError, TypeError):
                raise NlpgdError(f"{path}, line {lineno}: expected a JSON object with 'text' and 'label'") from None
    return texts, labels
