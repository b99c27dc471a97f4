"""The blended generative-discriminative objective of the GPT-2 arm (nlpgd.models.hybrid)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from test_gpt2 import TINY

from nlpgd.config import config_from_dict
from nlpgd.errors import NlpgdError
from nlpgd.models.base import FitContext
from nlpgd.models.causal_lm import collate
from nlpgd.models.gpt2 import GPT2Classifier
from nlpgd.models.hybrid import JointLMs, hybrid_collate, hybrid_trainer, make_trainer
from nlpgd.models.registry import load_model
from nlpgd.params import GPT2Params

from conftest import make_corpus


def tiny(**kw) -> GPT2Params:
    return GPT2Params(**{**TINY, **kw})


def fit(params: GPT2Params, train, work=None) -> GPT2Classifier:
    m = GPT2Classifier(params)
    m.progress = False
    return m.fit(*train, FitContext(seed=0, work_dir=work, progress=False))


TRAIN, TEST = make_corpus(40, seed=0), make_corpus(10, seed=1)


@pytest.fixture
def train():
    return TRAIN


@pytest.fixture
def test_set():
    return TEST


@pytest.fixture(scope="module")
def lm_model():
    """The plain language model (weights 1, 0)."""
    return fit(tiny(epochs=2), TRAIN)


@pytest.fixture(scope="module")
def hybrid_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("hybrid-work")


@pytest.fixture(scope="module")
def hybrid(hybrid_dir):
    return fit(tiny(discriminative_weight=1.0), TRAIN, hybrid_dir)


@pytest.fixture(scope="module")
def per_class():
    return fit(tiny(conditioning="per_class", discriminative_weight=1.0, epochs=3), TRAIN)


def _args(tmp_path):
    from transformers import TrainingArguments

    return TrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, disable_tqdm=True)


def _batch(clf: GPT2Classifier, texts, labels, with_class=True):
    rows = [dict(r) for r in clf.lm_dataset(texts, labels)]
    return (hybrid_collate if with_class else collate)(clf.eos_id_)(rows)


def _lm(clf: GPT2Classifier):
    if clf.params.conditioning == "prefix":
        return clf.lms_[clf.classes_[0]]
    return JointLMs([clf.lms_[c] for c in clf.classes_])


def _loss(clf, weights, batch, tmp_path, **kw) -> torch.Tensor:
    lm = _lm(clf)
    return hybrid_trainer(clf, lm, _args(tmp_path), weights).compute_loss(lm, dict(batch), **kw)


def _mixed(train, n=16):
    """``n`` training texts, every third one with the other label: a term the fitted models
    have not already driven to zero (on the disjoint-vocabulary corpus they separate perfectly)."""
    texts, labels = train[0][:n], list(train[1][:n])
    flip = {"spam": "ham", "ham": "spam"}
    return texts, [flip[y] if i % 3 == 0 else y for i, y in enumerate(labels)]


def _by_hand(clf: GPT2Classifier, texts, labels) -> float:
    """Mean cross-entropy of softmax_y(log_likelihood(x, y) + log P(y)) against the true class."""
    scores = np.column_stack([clf.log_likelihood(texts, c) for c in clf.classes_]) + clf.class_log_prior_
    log_post = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
    truth = [list(clf.classes_).index(y) for y in labels]
    return float(-np.mean(log_post[np.arange(len(texts)), truth]))


def test_both_weights_zero_is_a_config_error_naming_the_keys():
    cfg = {"name": "t", "data": {"source": "csv", "path": "x.csv"}, "models": {"gpt2": {"generative_weight": 0}}}
    cfg["models"]["gpt2"]["discriminative_weight"] = 0
    with pytest.raises(NlpgdError, match="models.gpt2.*generative_weight and discriminative_weight are both 0"):
        config_from_dict(cfg)
    with pytest.raises(NlpgdError, match="discriminative_weight"):
        config_from_dict({**cfg, "models": {"gpt2": {"discriminative_weight": -1}}})


def test_default_weights_train_with_the_plain_trainer(lm_model, tmp_path):
    from transformers import Trainer

    trainer = make_trainer(lm_model, _lm(lm_model), _args(tmp_path), None, None)
    assert type(trainer) is Trainer


def test_at_discriminative_weight_0_the_loss_is_todays_lm_loss_exactly(lm_model, train, tmp_path):
    from transformers import Trainer

    texts, labels = train[0][:12], train[1][:12]
    lm = _lm(lm_model).eval()
    plain_batch = _batch(lm_model, texts, labels, with_class=False)
    plain = Trainer(model=lm, args=_args(tmp_path), data_collator=collate(lm_model.eos_id_))
    batch = _batch(lm_model, texts, labels)
    with torch.no_grad():
        today = lm(**plain_batch).loss
        n_items = int((plain_batch["labels"][:, 1:] != -100).sum())
        for kw in ({}, {"num_items_in_batch": n_items}):  # evaluation, and training as the Trainer calls it
            expected = plain.compute_loss(lm, dict(plain_batch), **kw)
            assert _loss(lm_model, (1.0, 0.0), batch, tmp_path, **kw).item() == expected.item()
        assert _loss(lm_model, (1.0, 0.0), batch, tmp_path).item() == today.item()
        # and the generative term of the blended pass is the same loss (one batched pass, other rounding)
        blended = _loss(lm_model, (1.0, 1.0), batch, tmp_path)
        disc = _loss(lm_model, (0.0, 1.0), batch, tmp_path)
        assert (blended - disc).item() == pytest.approx(today.item(), abs=1e-5)


@pytest.mark.parametrize("which", ["prefix", "per_class"])
def test_discriminative_term_is_the_posterior_cross_entropy_by_hand(which, lm_model, per_class, train, tmp_path):
    clf = lm_model if which == "prefix" else per_class
    texts, labels = _mixed(train)
    with torch.no_grad():
        got = _loss(clf, (0.0, 1.0), _batch(clf, texts, labels), tmp_path).item()
    assert got == pytest.approx(_by_hand(clf, texts, labels), rel=1e-5, abs=1e-6)
    assert got > 0


def test_validation_loss_is_the_blended_loss(lm_model, train, tmp_path):
    texts, labels = train[0][:8], train[1][:8]
    batch = _batch(lm_model, texts, labels)
    lm = _lm(lm_model)
    trainer = hybrid_trainer(lm_model, lm, _args(tmp_path), (1.0, 0.5))
    loss, _, _ = trainer.prediction_step(lm, dict(batch), prediction_loss_only=True)
    lm.eval()
    with torch.no_grad():
        expected = trainer.compute_loss(
            lm, dict(batch), num_items_in_batch=trainer._get_num_items_in_batch([batch], "cpu")
        )
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def _grads(clf, weights, batch, tmp_path) -> torch.Tensor:
    lm = _lm(clf)
    lm.train()
    lm.zero_grad()
    try:
        _loss(clf, weights, batch, tmp_path).backward()
        return torch.cat([p.grad.flatten() for p in lm.parameters() if p.grad is not None]).clone()
    finally:
        lm.zero_grad()
        lm.eval()


@pytest.mark.parametrize("which", ["prefix", "per_class"])
def test_gradients_reach_the_model_from_both_terms(which, lm_model, per_class, train, tmp_path):
    clf = lm_model if which == "prefix" else per_class  # TINY has dropout 0: train mode is deterministic
    batch = _batch(clf, *_mixed(train))
    gen, disc = _grads(clf, (1.0, 0.0), batch, tmp_path), _grads(clf, (0.0, 1.0), batch, tmp_path)
    both = _grads(clf, (1.0, 1.0), batch, tmp_path)
    assert gen.norm() > 0 and disc.norm() > 0
    assert torch.nn.functional.cosine_similarity(gen, disc, dim=0).abs() < 0.99  # two different directions
    torch.testing.assert_close(both, gen + disc, rtol=1e-4, atol=1e-6)


def test_hybrid_classifies_generates_and_reloads(hybrid, test_set, tmp_path):
    texts, labels = test_set
    assert hybrid.family == "hybrid" and hybrid.can("generative") and hybrid.can("can_generate")
    assert np.mean(hybrid.predict(texts) == np.array(labels)) >= 0.9
    kw = dict(seed=1, max_new_tokens=10, progress=False)
    samples = hybrid.generate("spam", 4, **kw)
    assert len(samples) == 4 and all(s.strip() for s in samples)
    hybrid.save(tmp_path / "m")
    loaded = load_model(tmp_path / "m")
    assert (loaded.params.generative_weight, loaded.params.discriminative_weight) == (1.0, 1.0)
    np.testing.assert_array_equal(loaded.predict_proba(texts), hybrid.predict_proba(texts))
    assert loaded.generate("spam", 4, **kw) == samples


@pytest.mark.parametrize("key, value", [("discriminative_weight", 0.5), ("generative_weight", 2.0)])
def test_resumed_hybrid_fit_refuses_changed_weights(key, value, hybrid, train, hybrid_dir):
    m = GPT2Classifier(tiny(**{"discriminative_weight": 1.0, key: value}))
    with pytest.raises(NlpgdError, match=f"parameter '{key}' differs"):
        m.fit(*train, FitContext(seed=0, work_dir=hybrid_dir, resume=True, progress=False))


def test_resumed_hybrid_fit_continues(hybrid, train, hybrid_dir, test_set):
    m = GPT2Classifier(tiny(discriminative_weight=1.0))
    m.progress = False
    m.fit(*train, FitContext(seed=0, work_dir=hybrid_dir, resume=True, progress=False))
    np.testing.assert_allclose(m.predict_proba(test_set[0]), hybrid.predict_proba(test_set[0]), atol=1e-6)


def test_per_class_hybrid_trains_the_class_lms_together(per_class, test_set, tmp_path):
    texts, labels = test_set
    assert per_class.lms_["spam"] is not per_class.lms_["ham"]
    assert np.mean(per_class.predict(texts) == np.array(labels)) >= 0.9
    joint = JointLMs([per_class.lms_[c] for c in per_class.classes_])
    keys = set(joint.state_dict())
    assert joint._keys_to_ignore_on_save and not keys & set(joint._keys_to_ignore_on_save)
    per_class.save(tmp_path / "pc")
    loaded = load_model(tmp_path / "pc")
    np.testing.assert_array_equal(loaded.predict_proba(texts), per_class.predict_proba(texts))
    assert len(per_class.generate("ham", 2, seed=0, max_new_tokens=8, progress=False)) == 2


def test_pure_discriminative_end_still_generates(train):
    m = fit(tiny(generative_weight=0.0, discriminative_weight=1.0, epochs=2), train)
    assert len(m.generate("spam", 3, seed=0, max_new_tokens=8, progress=False)) == 3


def test_class_balance_repeats_carry_the_true_class(lm_model):
    texts, labels = ["a", "b", "c"], ["ham", "ham", "spam"]
    ds = lm_model.lm_dataset(texts, labels, {"ham": 1, "spam": 3})
    assert ds["class_index"] == [0, 0, 1, 1, 1]
    assert [r[0] for r in ds["input_ids"]] == [lm_model.start_ids_[c] for c in ["ham", "ham", "spam", "spam", "spam"]]


_DDP_SCRIPT = """
import sys, torch
sys.path.insert(0, "tests")
from conftest import make_corpus
from nlpgd.models.base import FitContext
from nlpgd.models.gpt2 import GPT2Classifier
from nlpgd.params import GPT2Params
texts, labels = make_corpus(32, seed=0)
kw = dict(n_layer=1, n_embd=32, n_head=2, vocab_size=300, n_positions=32, max_length=32, epochs=2, batch_size=8,
          learning_rate=1e-2, dropout=0.0, discriminative_weight=1.0, conditioning=sys.argv[1])
m = GPT2Classifier(GPT2Params(**kw))
m.progress = False
m.fit(texts, labels, FitContext(seed=0, progress=False, validation=make_corpus(6, seed=1)))
lms = {id(v): v for v in m.lms_.values()}.values()
total = sum(float(p.detach().double().sum()) for lm in lms for p in lm.parameters())
print(f"rank={torch.distributed.get_rank()} checksum={total:.8f}", flush=True)
torch.distributed.barrier()
torch.distributed.destroy_process_group()
"""


@pytest.mark.slow
@pytest.mark.parametrize("conditioning", ["prefix", "per_class"])
def test_hybrid_trains_under_ddp_on_two_cpu_processes(conditioning, tmp_path):
    """torchrun, 2 processes over gloo: the blended loss trains and the replicas stay equal."""
    import os
    import re
    import subprocess
    import sys

    from conftest import REPO

    script = tmp_path / "ddp_hybrid.py"
    script.write_text(_DDP_SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "CUDA_VISIBLE_DEVICES": ""}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script)]
    proc = subprocess.run([*cmd, conditioning], cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    sums = dict(re.findall(r"rank=(\d) checksum=([-\d.]+)", proc.stdout))
    assert set(sums) == {"0", "1"} and sums["0"] == sums["1"], proc.stdout


def test_discriminative_term_adds_the_class_prior():
    """Under an unbalanced prior the prior does not cancel: the term is the cross-entropy of
    softmax(log P(x | y) + log P(y)), by hand, and not that of the likelihoods alone."""
    from nlpgd.models.hybrid import discriminative_term

    ll = torch.tensor([[-10.0, -11.0], [-20.0, -19.5], [-5.0, -5.2]], dtype=torch.float64)
    truth = torch.tensor([0, 1, 1])
    log_prior = torch.log(torch.tensor([0.9, 0.1], dtype=torch.float64))
    scores = ll.numpy() + log_prior.numpy()
    log_post = scores - np.logaddexp.reduce(scores, axis=1, keepdims=True)
    expected = float(-np.mean(log_post[np.arange(3), truth.numpy()]))
    got = discriminative_term(ll, truth, log_prior).item()
    assert got == pytest.approx(expected, rel=1e-12)
    without = discriminative_term(ll, truth, torch.zeros(2, dtype=torch.float64)).item()
    assert abs(got - without) > 0.1


def test_discriminative_loss_of_a_model_trained_on_unbalanced_classes(tmp_path):
    """The hybrid's loss as the Trainer computes it, for a model whose training prior is 4:1."""
    texts, labels = TRAIN
    ham = [i for i, y in enumerate(labels) if y == "ham"]
    spam = [i for i, y in enumerate(labels) if y == "spam"][:10]
    keep = ham + spam
    clf = fit(tiny(epochs=1), ([texts[i] for i in keep], [labels[i] for i in keep]))
    assert abs(float(np.exp(clf.class_log_prior_).max()) - 0.8) < 1e-9
    mixed_texts, mixed_labels = _mixed(TRAIN)
    with torch.no_grad():
        got = _loss(clf, (0.0, 1.0), _batch(clf, mixed_texts, mixed_labels), tmp_path).item()
    assert got == pytest.approx(_by_hand(clf, mixed_texts, mixed_labels), rel=1e-5, abs=1e-6)
