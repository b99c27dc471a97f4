"""`nlpgd generate`: sample messages of one class from a run's generative model.

Picks the first model of the run (in name order) that can generate (GPT-2, multinomial naive
Bayes), or the one named with ``--model``, samples ``n`` distinct messages, writes them as
JSONL and writes a quality report beside them (``<out>.quality.json``): diversity, copies of
training messages, label fidelity under the run's other classifiers, lengths.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer

from nlpgd.cli.common import cli_errors, stderr_is_tty
from nlpgd.errors import NlpgdError
from nlpgd.models.registry import model_class, saved_type, types_with
from nlpgd.scoring import load_named_model


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


def _read_train_texts(path: Path) -> tuple[list[str], list[str]] | None:
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


def _prompts(given: list[str] | None, path: Path | None) -> list[str] | None:
    """The prompts from ``--prompt`` and ``--prompts-file`` (None when neither is given)."""
    if not given and path is None:
        return None
    prompts = [t for t in (given or []) if t.strip()]
    if path is not None:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except FileNotFoundError:
            raise NlpgdError(f"prompts file {path} does not exist") from None
        except UnicodeDecodeError:
            raise NlpgdError(f"prompts file {path} is not UTF-8 text") from None
        except OSError as exc:
            raise NlpgdError(f"cannot read prompts file {path}: {exc.strerror}") from None
        prompts += [t for t in lines if t.strip()]
    if not prompts:
        where = f"prompts file {path} has no prompts" if path is not None else "--prompt is blank"
        raise NlpgdError(f"the prompt set is empty: {where}")
    return prompts


@cli_errors
def generate(
    run_dir: Annotated[
        Path, typer.Argument(help="A finished run folder (outputs/<experiment>/<run-id>).", show_default=False)
    ],
    label: Annotated[str, typer.Option(help="Class to sample messages of.")] = "spam",
    n: Annotated[int, typer.Option("--n", "-n", help="Number of distinct messages to sample.")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed: the same seed gives the same messages.")] = 0,
    out: Annotated[
        Optional[Path],
        typer.Option(
            help="JSONL file to write ({text, label} per line) (default: RUN_DIR/generated/<label>-seed<seed>.jsonl); "
            "the quality report goes to <out>.quality.json.",
            show_default=False,
        ),
    ] = None,
    model: Annotated[
        Optional[str],
        typer.Option(
            help="Model of the run to sample from, as NAME or NAME/seedK (default: the first that can generate).",
            show_default=False,
        ),
    ] = None,
    temperature: Annotated[float, typer.Option(help="Softmax temperature (<1: safer, >1: more varied).")] = 1.0,
    top_k: Annotated[int, typer.Option(help="Sample among the k most likely tokens (0: no limit; GPT-2 only).")] = 50,
    top_p: Annotated[
        float, typer.Option(help="Nucleus sampling: smallest token set with this much probability (GPT-2 only).")
    ] = 0.95,
    max_new_tokens: Annotated[int, typer.Option(help="Longest message in tokens (GPT-2 only).")] = 64,
    prompt: Annotated[
        Optional[list[str]],
        typer.Option(
            help="Start every message with this text and continue it; repeatable, the prompts "
            "take equal shares of --n (GPT-2 only).",
            show_default=False,
        ),
    ] = None,
    prompts_file: Annotated[
        Optional[Path],
        typer.Option(
            help="Text file with one prompt per line (blank lines skipped), as --prompt (GPT-2 only).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Sample messages of one class from a run's generative model and assess them."""
    from nlpgd.generation import sample_quality
    from nlpgd.io import atomic_write_text, write_json
    from nlpgd.runs import open_run

    if n <= 0:
        raise NlpgdError(f"--n must be a positive number of samples, got {n}")
    prompts = _prompts(prompt, prompts_file)
    run = open_run(run_dir)
    folders = run.model_folders()
    key, folder = _pick(folders, model, run.path)
    generator = load_named_model(key, folder)
    if not generator.can("can_generate"):
        raise NlpgdError(f"model {key} cannot generate text as configured (e.g. complement naive Bayes)")
    if label not in [str(c) for c in generator.classes_]:
        raise NlpgdError(f"unknown label '{label}'; model {key} knows {', '.join(map(str, generator.classes_))}")

    sampling = dict(temperature=temperature)
    if generator.can("autoregressive"):
        sampling.update(top_k=top_k, top_p=top_p, max_new_tokens=max_new_tokens, progress=stderr_is_tty())
        if prompts is not None:
            sampling["prompts"] = prompts
    elif prompts is not None:
        raise NlpgdError(
            f"model {key} ({generator.type_name}) samples words independently and cannot continue a prompt"
        )
    samples = generator.generate(label, n, seed=seed, **sampling)

    out = Path(out) if out is not None else run.path / "generated" / f"{label}-seed{seed}.jsonl"
    atomic_write_text(out, "".join(json.dumps({"text": s, "label": label}, ensure_ascii=False) + "\n" for s in samples))

    # label fidelity: the run's other classifiers (the lowest seed of each), and the generator itself
    classifiers = {key: generator}
    unusable = []
    for name, seeds in folders.items():
        k = f"{name}/{seeds[0].name}"
        if k != key:
            try:
                classifiers[k] = load_named_model(k, seeds[0])
            except NlpgdError as exc:  # a damaged model leaves the others usable
                unusable.append(f"{exc}; it is left out of the label-fidelity check")
                typer.echo(f"note: {unusable[-1]}", err=True)
    train = _read_train_texts(run.path / "train_texts.jsonl")
    train_texts = train[0] if train else None
    real = [t for t, y in zip(*train) if y == label] if train else []
    report = sample_quality(samples, train_texts, real, classifiers, label)
    report["notes"].extend(unusable)
    if train is None:
        report["notes"].append(f"{run.path / 'train_texts.jsonl'} is missing: real-message lengths skipped too")
    report.update(
        run_dir=str(run.path),
        generator=key,
        seed=seed,
        samples_file=str(out),
        sampling={k: v for k, v in sampling.items() if k != "progress"},
    )
    quality_path = out.with_name(out.name + ".quality.json")
    write_json(quality_path, report)

    typer.echo(f"{len(samples)} '{label}' samples from {key} -> {out}")
    if len(samples) < n:
        typer.echo(f"only {len(samples)} distinct samples of the {n} asked for", err=True)
    fid = ", ".join(f"{k} {v:.1%}" for k, v in report["label_fidelity"].items())
    copies = "n/a" if report["copy_share"] is None else f"{report['copy_share']:.1%}"
    typer.echo(
        f"distinct-2 {report['distinct_2']:.3f}, copies of training messages {copies}, called '{label}' by: {fid}"
    )
    typer.echo(f"quality report -> {quality_path}")
