"""The prepared GPU script (benchmarks/bench_gpu.py) must not rot between the sessions that
have a GPU: its CPU smoke mode runs every section at toy sizes and writes every figure."""

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import make_corpus

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_bench_gpu_quick_runs_every_section(tmp_path):
    from transformers import BertConfig, BertTokenizerFast

    texts, labels = make_corpus(100, seed=0)
    sms = tmp_path / "SMSSpamCollection"
    sms.write_text("".join(f"{y}\t{t}\n" for t, y in zip(texts, labels)))
    minilm = tmp_path / "minilm"
    minilm.mkdir()
    words = sorted({w for t in texts for w in t.split()})
    (minilm / "vocab.txt").write_text("\n".join(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *words]) + "\n")
    BertTokenizerFast(str(minilm / "vocab.txt")).save_pretrained(minilm)
    config = BertConfig(vocab_size=5 + len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2)
    config.save_pretrained(minilm)
    out = tmp_path / "gpu.json"
    cmd = [sys.executable, str(REPO / "benchmarks" / "bench_gpu.py"), "--quick", "--data", str(sms)]
    cmd += ["--minilm", str(minilm), "--work", str(tmp_path / "work"), "--out", str(out), "--no-compile"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=1200, cwd=tmp_path)
    assert done.returncode == 0, done.stderr[-2000:]
    figures = json.loads(out.read_text())
    assert {"device", "ceiling", "arm_gpt2", "arm_hybrid", "arm_minilm"} <= set(figures)
    assert any(k.startswith("train_124m_") for k in figures) and any(k.startswith("score_124m_") for k in figures)
    for key, value in figures.items():
        rates = {k: v for k, v in value.items() if k.endswith(("_per_s", "tokens_per_s", "epoch_s"))}
        assert all(v > 0 for v in rates.values()), (key, rates)
