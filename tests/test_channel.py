"""Channel prompting: a pretrained causal LM classifies by log P(message | prompt of the class)
+ log P(class), zero-shot or with k labels (demonstrations, or calibration). On a tiny random
Llama-architecture model, so every test runs in seconds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from typer.testing import CliRunner

from nlpgd.cli import app
from nlpgd.config import load_config
from nlpgd.errors import NlpgdError
from nlpgd.models import channel as C
from nlpgd.models import lm_scoring
from nlpgd.models.base import FitContext
from nlpgd.models.gpt2 import GPT2Classifier
from nlpgd.models.registry import load_model
from nlpgd.params import GPT2Params
from nlpgd.params.gpt2 import DEFAULT_PROMPTS, PROMPT_PAIRS

from conftest import make_corpus, tiny_llama

PROMPTS = {"spam": "The following is a spam message:\n", "ham": "Here is a message from a friend:\n"}


@pytest.fixture(scope="module")
def train():
    return make_corpus(30, seed=0)


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("llama") / "tiny-llama")


def fit(folder, train, **kw) -> GPT2Classifier:
    base = dict(checkpoint=str(folder), epochs=0, max_length=24, lowercase=False, prompts=PROMPTS, eval_batch_size=4)
    m = GPT2Classifier(GPT2Params(**{**base, **kw}))
    m.progress = False
    return m.fit(*train, FitContext(seed=0, progress=False))


@pytest.fixture(scope="module")
def zero_shot(llama_dir, train):
    return fit(llama_dir, train)


def direct(model: GPT2Classifier, context: list[int], text: str) -> float:
    """The sum of the log-probabilities of the message's tokens after ``context``, from one
    forward pass over context + message, written out here without the scoring module."""
    body = model.tokenizer_(text, add_special_tokens=False)["input_ids"][: model.max_length_]
    lm = model.lms_["spam"]
    with torch.inference_mode():
        logits = lm(input_ids=torch.tensor([context + body])).logits[0].float()
    logp = torch.log_softmax(logits, dim=-1)
    return float(sum(logp[len(context) - 1 + k, tok] for k, tok in enumerate(body)))


def prompt_context(model: GPT2Classifier, prompt: str) -> list[int]:
    """The prompt as the tokenizer encodes a plain text (the fixture's adds no BOS)."""
    return list(model.tokenizer_(prompt)["input_ids"])


TEXTS = ["win a free prize now, reply to claim", "see you at lunch tomorrow", "ok", "", "call " * 40]


def test_channel_scores_equal_the_direct_sum_with_and_without_the_cache(zero_shot):
    m = zero_shot
    want = np.array([[direct(m, prompt_context(m, PROMPTS[y]), t) for y in m.classes_] for t in TEXTS])
    assert want[3].tolist() == [0.0, 0.0] and (want[[0, 1, 2, 4]] < 0).all()
    cached = m.class_log_likelihoods(TEXTS, list(m.classes_))
    np.testing.assert_allclose(cached, want, atol=1e-4)
    contexts = C.classifier_contexts(m, m.channel_)
    bodies = [ids[: m.max_length_] for ids in m.encode(TEXTS)]
    kwargs = dict(filler_id=m.eos_id_, batch_size=3)
    uncached = C.channel_log_likelihoods(m.lms_["ham"], contexts, m.classes_, bodies, reuse_cache=False, **kwargs)
    np.testing.assert_allclose(uncached, want, atol=1e-4)
    # the prompt's own tokens are never scored, and the uniform prior is the only other term
    np.testing.assert_allclose(m.predict_log_joint(TEXTS), want + np.log(0.5), atol=1e-4)


def test_the_cache_is_computed_once_per_class_and_copied_per_batch(zero_shot, monkeypatch):
    calls = []
    real = lm_scoring.ContextCache.__init__

    def counting(self, lm, context):
        calls.append(len(context))
        real(self, lm, context)

    monkeypatch.setattr(lm_scoring.ContextCache, "__init__", counting)
    texts = make_corpus(10, seed=3)[0]  # 20 messages, batches of 4
    zero_shot.class_log_likelihoods(texts, list(zero_shot.classes_))
    assert len(calls) == 2  # once per class, not once per batch
    monkeypatch.setattr(lm_scoring, "CACHE_BUDGET", 1)  # every batch a single row: same numbers
    tight = zero_shot.class_log_likelihoods(texts, list(zero_shot.classes_))
    monkeypatch.setattr(lm_scoring, "CACHE_BUDGET", 512 * 2**20)
    np.testing.assert_allclose(tight, zero_shot.class_log_likelihoods(texts, list(zero_shot.classes_)), atol=1e-5)


def test_the_checkpoint_is_scored_as_it_is(llama_dir, zero_shot):
    from transformers import AutoTokenizer

    assert len(zero_shot.tokenizer_) == len(AutoTokenizer.from_pretrained(llama_dir))  # no label or pad token added
    assert zero_shot.lms_["spam"] is zero_shot.lms_["ham"]


def test_demonstrations_go_before_the_prompt_and_are_balanced(llama_dir, train):
    m = fit(llama_dir, train, demonstrations=4, demonstration_tokens=5)
    shown = m.channel_.demonstrations
    assert sorted(y for _, y in shown) == ["ham", "ham", "spam", "spam"]
    assert all(t in train[0] for t, _ in shown)
    tok = m.tokenizer_
    context = []
    for text, y in shown:
        context += tok(PROMPTS[y], add_special_tokens=False)["input_ids"]
        context += (
            tok(text, add_special_tokens=False)["input_ids"][:5] + tok("\n\n", add_special_tokens=False)["input_ids"]
        )
    want = [direct(m, context + tok(PROMPTS[y], add_special_tokens=False)["input_ids"], TEXTS[0]) for y in m.classes_]
    np.testing.assert_allclose(m.class_log_likelihoods(TEXTS[:1], list(m.classes_))[0], want, atol=1e-4)
    again = fit(llama_dir, train, demonstrations=4, demonstration_tokens=5)
    assert again.channel_.demonstrations == shown  # drawn with the seed


def test_calibration_by_the_prior_and_by_content_free_inputs(llama_dir, train):
    texts, labels = train[0][:40], train[1][:40]
    skewed = (
        texts[:10] + [t for t, y in zip(texts, labels) if y == "ham"],
        labels[:10] + ["ham"] * labels.count("ham"),
    )
    prior = fit(llama_dir, skewed, calibration="prior")
    n_spam = skewed[1].count("spam")
    want = np.log(np.array([len(skewed[1]) - n_spam + 1, n_spam + 1]) / (len(skewed[1]) + 2))
    np.testing.assert_allclose(prior.log_prior(), want)
    assert not prior.params.label_free()

    ctx = fit(llama_dir, train, calibration="contextual")
    assert ctx.params.label_free()
    for y in ctx.classes_:
        cf = [direct(ctx, prompt_context(ctx, PROMPTS[y]), t) for t in C.CONTENT_FREE]
        assert ctx.channel_.offsets[y] == pytest.approx(-np.mean(cf), abs=1e-4)
    raw = fit(llama_dir, train)
    shift = np.array([ctx.channel_.offsets[y] for y in ctx.classes_])
    np.testing.assert_allclose(
        ctx.class_log_likelihoods(TEXTS, list(ctx.classes_)),
        raw.class_log_likelihoods(TEXTS, list(raw.classes_)) + shift,
        atol=1e-5,
    )


def test_a_saved_channel_model_predicts_the_same(llama_dir, train, tmp_path):
    m = fit(llama_dir, train, demonstrations=2, calibration="contextual")
    m.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert loaded.channel_.as_dict() == m.channel_.as_dict()
    np.testing.assert_allclose(loaded.predict_proba(TEXTS), m.predict_proba(TEXTS), atol=1e-6)
    tokens = loaded.token_log_likelihoods(TEXTS[0], "spam")
    context = prompt_context(m, PROMPTS["spam"])
    assert sum(v for _, v in tokens) == pytest.approx(
        direct(m, C.classifier_contexts(m, m.channel_)["spam"], TEXTS[0]), abs=1e-4
    )
    assert len(context) < len(C.classifier_contexts(m, m.channel_)["spam"])  # the demonstrations are in it


def test_default_prompts_and_a_context_too_long_for_the_model(llama_dir, train):
    assert GPT2Params(checkpoint="x", epochs=0, prompts="default").channel_prompts() == DEFAULT_PROMPTS
    with pytest.raises(NlpgdError, match="the prompt with its demonstrations takes .* exceeds the model's 1024"):
        fit(llama_dir, train, demonstrations=40, demonstration_tokens=60, max_length=200)


@pytest.mark.parametrize(
    "model, message",
    [
        (
            {"type": "gpt2", "checkpoint": "smollm2", "epochs": 0, "prompts": {"spam": "Spam:\n"}},
            "prompts miss class 'ham'",
        ),
        (
            {"type": "gpt2", "checkpoint": "smollm2", "epochs": 0, "prompts": {"spam": "a", "ham": "b", "junk": "c"}},
            "prompts name unknown class 'junk'",
        ),
        (
            {"type": "distilbert", "prompts": "default"},
            "model 'm' is a distilbert: prompts need a causal language model",
        ),
        ({"type": "naive_bayes", "prompts": "default"}, "model 'm' is a naive_bayes: prompts need a causal language"),
        ({"type": "gpt2", "prompts": "default"}, "prompts need a pretrained causal LM (e.g. checkpoint: smollm2)"),
        ({"type": "gpt2", "checkpoint": "smollm2", "prompts": "default"}, "set epochs: 0"),
        ({"type": "gpt2", "checkpoint": "smollm2", "epochs": 0, "demonstrations": 8}, "set prompts too"),
    ],
)
def test_bad_prompts_are_one_sentence_and_exit_2(tmp_path, model, message):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "data": {"source": "spamassassin"}, "models": {"m": model}}))
    with pytest.raises(NlpgdError) as err:
        load_config(path)
    assert message in str(err.value) and "\n" not in str(err.value)
    r = CliRunner().invoke(app, ["compare", str(path), "--output-dir", str(tmp_path / "out")])
    assert r.exit_code == 2 and message in r.stderr and r.stderr.count("\n") == 1, r.stderr
    assert not (tmp_path / "out").exists()


def test_demonstrations_are_drawn_per_class():
    texts = [f"m{i}" for i in range(10)]
    labels = ["ham"] * 8 + ["spam"] * 2
    got = C.choose_demonstrations(texts, labels, ["ham", "spam"], 5, seed=1)
    assert sorted(y for _, y in got) == ["ham", "ham", "ham", "spam", "spam"]
    assert C.choose_demonstrations(texts, labels, ["ham", "spam"], 5, seed=2) != got
    assert C.choose_demonstrations(texts, labels, ["ham", "spam"], 0, seed=1) == []
    few = C.choose_demonstrations(texts, labels, ["ham", "spam"], 8, seed=1)
    # a class with fewer messages gives what it has, the other the rest
    assert sorted(y for _, y in few) == ["ham"] * 6 + ["spam"] * 2 and len({t for t, _ in few}) == 8
    assert len(C.choose_demonstrations(texts, labels, ["ham", "spam"], 50, seed=1)) == 10


def test_learning_curve_shows_prompted_models_at_0_and_the_few_shot_sizes(llama_dir, tmp_path):
    from conftest import TINY_CSV

    prompted = {"type": "gpt2", "checkpoint": str(llama_dir), "epochs": 0, "prompts": PROMPTS, "max_length": 16}
    cfg = {
        "name": "lc-channel",
        "seeds": [0, 1],
        "data": {"source": "csv", "path": str(TINY_CSV), "validation_size": 0.2, "test_size": 0.2},
        "models": {"naive_bayes": {}, "logreg": {}, "zero": prompted, "few": {**prompted, "demonstrations": 4}},
        "experiment": {
            "bootstrap": 200,
            "min_examples_seen": 0,
            "reference_seeds": [0],
            "learning_curve": {"sizes": [16, 32, "full"], "few_shot_sizes": [16]},
        },
    }
    path = tmp_path / "lc.yaml"
    path.write_text(yaml.safe_dump(cfg))
    r = CliRunner().invoke(
        app, ["experiment", "learning-curve", str(path), "--output-dir", str(tmp_path / "o"), "--quiet"]
    )
    assert r.exit_code == 0, r.output
    folder = Path(r.output.strip().splitlines()[-1].removeprefix("run folder: "))
    preds = folder / "predictions"
    assert (preds / "full/zero/seed0.test.csv").is_file() and not (preds / "n16/zero").exists()
    assert (preds / "n16/few/seed0.test.csv").is_file() and not (preds / "n16/few/seed1.test.csv").exists()
    results = json.loads((folder / "results.json").read_text())
    table = next(t for t in results["tables"] if "with 0 and few labels" in t["title"])
    assert [row[:3] for row in table["rows"]] == [
        ["zero", "generative, prompted (no training)", "0"],
        ["few", "generative, prompted (no training)", "16"],
        ["logreg", "discriminative, trained", "16"],
    ]
    text = results["verdict"]["text"]
    assert "Without training, zero (generative, channel prompting) reaches ROC-AUC" in text and "with 0 labels" in text
    assert "The discriminative logreg reaches" in text
    panel = results["figures"][0]["panels"][0]
    assert panel["xscale"] == "symlog"
    zero = next(s for s in panel["series"] if s["label"].startswith("zero"))
    assert zero["x"] == [0] and not [s for s in panel["series"] if s["label"] == "zero (reference)"]


def test_a_channel_model_samples_what_follows_the_class_prompt(zero_shot):
    samples = zero_shot.generate("spam", 5, seed=0, max_new_tokens=8)
    assert len(samples) == 5 and len(set(samples)) == 5
    assert not [s for s in samples if s.startswith(PROMPTS["spam"].strip()[:10])]  # the prompt is not part of a sample
    assert zero_shot.generate("spam", 5, seed=0, max_new_tokens=8) == samples


def test_the_context_starts_as_the_tokenizer_starts_a_plain_text():
    class Tok:
        def __init__(self, bos):
            self.bos = bos

        def __call__(self, text, add_special_tokens=True):
            return {"input_ids": ([self.bos] if add_special_tokens and self.bos is not None else []) + [5]}

    assert C.text_start(Tok(None)) == []  # GPT-2, SmolLM2: no BOS before text (<|im_start|> opens a chat turn)
    assert C.text_start(Tok(7)) == [7]  # Llama-2 style <s>
    channel = C.Channel({"ham": "h", "spam": "s"})
    assert channel.contexts(Tok(7), lambda texts: [[9] for _ in texts], 3) == {"ham": [7, 5], "spam": [7, 5]}


@pytest.mark.parametrize("name", sorted(PROMPT_PAIRS))
def test_a_written_down_pair_is_chosen_by_name_and_scored_as_written(llama_dir, train, name):
    assert GPT2Params(checkpoint="x", epochs=0, prompts=name).channel_prompts() == PROMPT_PAIRS[name]
    m = fit(llama_dir, train, prompts=name)
    contexts = C.classifier_contexts(m, m.channel_)
    assert {y: m.tokenizer_.decode(ids) for y, ids in contexts.items()} == PROMPT_PAIRS[name]
    want = np.array([[direct(m, contexts[y], t) for y in m.classes_] for t in TEXTS[:2]])
    np.testing.assert_allclose(m.class_log_likelihoods(TEXTS[:2], list(m.classes_)), want, atol=1e-4)


def _benchmark(name: str):
    """The module ``benchmarks/<name>.py`` (benchmarks are scripts, not a package)."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "benchmarks" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _bench():
    return _benchmark("bench_channel")


def test_the_benchmark_chooses_the_pair_on_validation_and_reports_test_alone(monkeypatch, capsys):
    bench = _bench()
    calls = []
    auc = {name: 0.6 for name in PROMPT_PAIRS} | {"chat": 0.9}

    def fake_run(data, k, prompts, split, n, args):
        calls.append((k, prompts, split))
        point = auc[prompts] if split == "validation" else 0.5
        ci = {m: {"point": point, "ci_low": point, "ci_high": point} for m in ("roc_auc", "pr_auc")}
        return {"n": n, "spam": n // 2, "load_s": 1.0, "score_s": 1.0, "cpu_s": 1.0, "ci": ci}

    monkeypatch.setattr(bench, "run", fake_run)
    monkeypatch.setattr(bench, "load_splits", lambda config: None)
    bench.main(["--data", "sms", "--demonstrations", "0", "16"])
    assert calls == [(0, name, "validation") for name in PROMPT_PAIRS] + [(0, "chat", "test"), (16, "chat", "test")]
    out = capsys.readouterr().out
    assert "chosen on validation: prompts chat" in out and "sms test, prompts chat, demonstrations=16" in out


def test_exploring_on_validation_never_reads_test(monkeypatch, capsys):
    bench = _bench()
    calls = []

    def fake_run(data, k, prompts, split, n, args):
        calls.append((k, prompts, split, args.demonstration_tokens))
        ci = {m: {"point": 0.5, "ci_low": 0.4, "ci_high": 0.6} for m in ("roc_auc", "pr_auc")}
        return {"n": n, "spam": n // 2, "load_s": 1.0, "score_s": 1.0, "cpu_s": 1.0, "ci": ci}

    monkeypatch.setattr(bench, "run", fake_run)
    monkeypatch.setattr(bench, "load_splits", lambda config: None)
    argv = ["--data", "spamassassin", "--prompts", "list", "--demonstrations", "16", "--demonstration-tokens", "64"]
    bench.main([*argv, "--report-split", "validation"])
    assert calls == [(16, "list", "validation", 64)]
    out = capsys.readouterr().out
    assert "spamassassin validation, prompts list, demonstrations=16" in out and "target" not in out


def test_the_default_pair_keeps_its_wording_and_the_added_pairs_are_as_written():
    def pair(name):
        return GPT2Params(checkpoint="x", epochs=0, prompts=name).channel_prompts()

    assert pair("default") == {
        "spam": "The following is a spam message:\n",
        "ham": "The following is a normal message:\n",
    }
    assert pair("email") == {
        "spam": "The following is a spam email:\n",
        "ham": "The following is an email from a colleague:\n",
    }
    assert pair("list")["ham"] == "The following is an email to a mailing list:\n"
    assert (
        pair("text")["ham"] == "<|im_start|>user\nWrite a text message to a friend.<|im_end|>\n<|im_start|>assistant\n"
    )


@pytest.mark.parametrize("name", sorted(PROMPT_PAIRS))
def test_every_written_down_pair_is_a_config_value(tmp_path, name):
    model = {"type": "gpt2", "checkpoint": "smollm2", "epochs": 0, "prompts": name}
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"name": "x", "data": {"source": "spamassassin"}, "models": {"m": model}}))
    assert load_config(path).models["m"].channel_prompts() == PROMPT_PAIRS[name]


def _variants():
    return _benchmark("channel_variants")


@pytest.mark.parametrize("n", [12, 24])
def test_the_variants_first_n_tokens_are_the_direct_sum_and_what_max_length_selects(llama_dir, train, n):
    m = fit(llama_dir, train, max_length=24)
    contexts = C.classifier_contexts(m, m.channel_)
    bodies = [ids[:24] for ids in m.encode(TEXTS)]
    cut = fit(llama_dir, train, max_length=n)  # the classifier the variant "@n" stands for
    m.max_length_ = n  # direct() cuts the message at the model's max_length_
    for y in m.classes_:
        lp = _variants().token_logprobs(m.lms_[y], contexts[y], bodies, m.eos_id_, tokens=30)  # batches of one
        assert [len(a) for a in lp] == [len(b) for b in bodies]
        got = np.array([a[:n].sum() for a in lp])
        np.testing.assert_allclose(got, [direct(m, contexts[y], t) for t in TEXTS], atol=1e-4)
        want = cut.class_log_likelihoods(TEXTS, [y])[:, 0]
        np.testing.assert_allclose(got, want, atol=1e-4)


def test_the_description_mixture_and_the_pair_ensemble_are_computed_as_written():
    V = _variants()
    rng = np.random.default_rng(0)
    prompts = {p for pair in PROMPT_PAIRS.values() for p in pair.values()}
    lp = {p: [rng.normal(-2, 1, size=k) for k in (5, 1, 9)] for p in prompts}
    got = V.scores(lp, 4)
    S = {p: np.array([a[:4].sum() for a in arrs]) for p, arrs in lp.items()}

    def mixture(label):  # log of the mean likelihood over the class's distinct descriptions
        distinct = {pair[label] for pair in PROMPT_PAIRS.values()}
        return np.log(np.mean([np.exp(S[p]) for p in distinct], axis=0))

    np.testing.assert_allclose(got["mixture"], mixture("spam") - mixture("ham"), atol=1e-4)
    pairs = [S[pair["spam"]] - S[pair["ham"]] for pair in PROMPT_PAIRS.values()]
    np.testing.assert_allclose(got["ensemble"], np.mean(pairs, axis=0), atol=1e-4)
    np.testing.assert_allclose(got["pair:chat"], pairs[list(PROMPT_PAIRS).index("chat")], atol=1e-12)
    assert len(V.distinct_prompts("spam")) == len({pair["spam"] for pair in PROMPT_PAIRS.values()})
