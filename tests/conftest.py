"""Tiny fixtures shared by every test module. Nothing here reads the network."""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
SMS_FILE = SHARED / "data" / "sms_spam" / "SMSSpamCollection"

_SPAM_WORDS = "win free prize cash claim urgent offer winner call now txt reply stop award bonus".split()
_HAM_WORDS = "hey lunch tomorrow meeting home later mum dinner see you soon thanks love ok".split()


def make_corpus(n_per_class: int = 40, seed: int = 0) -> tuple[list[str], list[str]]:
    """Two classes with disjoint vocabularies, so any sensible model separates them."""
    rng = random.Random(seed)
    texts, labels = [], []
    for i in range(n_per_class):
        for label, words in (("spam", _SPAM_WORDS), ("ham", _HAM_WORDS)):
            k = rng.randint(4, 9)
            texts.append(" ".join(rng.choice(words) for _ in range(k)) + f" {i}")
            labels.append(label)
    return texts, labels


@pytest.fixture
def tiny_corpus() -> tuple[list[str], list[str]]:
    return make_corpus(40, seed=0)


@pytest.fixture
def tiny_test_corpus() -> tuple[list[str], list[str]]:
    return make_corpus(10, seed=1)


@pytest.fixture
def sms_file() -> Path:
    if not SMS_FILE.is_file():
        pytest.skip(f"real corpus not available: {SMS_FILE} (only developers and CI have ../shared)")
    return SMS_FILE


def tiny_llama(folder: Path, *, layers: int = 2, chat_template: str | None = None) -> Path:
    """Save a tiny random Llama-architecture causal LM (hidden 16, about 10k parameters, tied
    embeddings) with a byte-level BPE tokenizer learned on the fixture corpus into ``folder``;
    its pad token is its end token, as SmolLM2's is. A stand-in for a pretrained checkpoint."""
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from nlpgd.models.vocab import train_bpe

    tok = train_bpe(make_corpus(30, seed=0)[0], 300, 2, [])
    tok.pad_token = tok.eos_token
    tok.chat_template = chat_template
    config = LlamaConfig(
        vocab_size=len(tok),
        hidden_size=16,
        intermediate_size=32,
        num_hidden_layers=layers,
        num_attention_heads=2,
        num_key_value_heads=2,
        max_position_embeddings=1024,  # rotary: no parameters; room for instruction prompts
        tie_word_embeddings=True,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
    )
    torch.manual_seed(0)
    LlamaForCausalLM(config).save_pretrained(folder)
    tok.save_pretrained(folder)
    return folder


@pytest.fixture
def generate_cli():
    """``nlpgd generate`` as a function of its arguments (returns typer's Result)."""
    import typer
    from typer.testing import CliRunner

    from nlpgd.cli.generate import generate

    app = typer.Typer()
    app.command()(generate)
    return lambda *args: CliRunner().invoke(app, [str(a) for a in args])


TINY_CSV = REPO / "tests" / "data" / "tiny_spam.csv"
TINY_CFG = REPO / "configs" / "smoke" / "tiny.yaml"


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> Path:
    """One finished compare run of configs/smoke/tiny.yaml (every model type), shared by the
    whole session. Tests must not change it: copy it first (``copy_run``)."""
    from typer.testing import CliRunner

    from nlpgd.cli import app

    out = tmp_path_factory.mktemp("outputs")
    args = ["compare", str(TINY_CFG), "--output-dir", str(out), "--quiet", "--set", f"data.path={TINY_CSV}"]
    r = CliRunner().invoke(app, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    runs = [p for p in (out / "smoke-tiny").iterdir() if p.is_dir() and not p.is_symlink()]
    assert len(runs) == 1
    return runs[0]


@pytest.fixture
def copy_run(tiny_run, tmp_path):
    """A private copy of the session's tiny run, free to damage."""
    import shutil

    def make(name: str = "run") -> Path:
        dest = tmp_path / name
        shutil.copytree(tiny_run, dest)
        return dest

    return make


def invoke(*args):
    """The CLI in this process (Typer's CliRunner), arguments as strings, exceptions raised."""
    from typer.testing import CliRunner

    from nlpgd.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False)


def one_sentence(r, *fragments, empty_stdout: bool = False):
    """Exit 2, one line on stderr holding every fragment, no traceback (and, with
    ``empty_stdout``, nothing on stdout). Returns the line."""
    assert r.exit_code == 2, r.output
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.output
    for f in fragments:
        assert f in lines[0], (f, lines[0])
    if empty_stdout:
        assert r.stdout.strip() == "", r.stdout
    return lines[0]
