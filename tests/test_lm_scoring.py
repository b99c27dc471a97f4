"""The causal-LM scoring module: batching by length changes no score, the logits budget and the
batch size hold, a shared context conditions rows without being scored, and the realism
reference LM goes through the same batches."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nlpgd.models import lm_scoring
from nlpgd.models.lm_scoring import ReferenceLM, ScoreJob, length_batches, score_jobs

from conftest import make_corpus, tiny_llama

VOCAB = 40


@pytest.fixture(scope="module")
def lm():
    from transformers import GPT2Config, GPT2LMHeadModel

    torch.manual_seed(0)
    cfg = GPT2Config(vocab_size=VOCAB, n_positions=64, n_embd=16, n_layer=1, n_head=2, bos_token_id=0, eos_token_id=0)
    return GPT2LMHeadModel(cfg).eval()


def _rows(n: int, seed: int) -> list[list[int]]:
    rng = np.random.default_rng(seed)
    return [[1, *rng.integers(2, VOCAB, size=int(rng.integers(1, 30))).tolist(), 0] for _ in range(n)]


def _by_hand(lm, row: list[int]) -> float:
    with torch.inference_mode():
        logp = torch.log_softmax(lm(input_ids=torch.tensor([row])).logits[0].float(), dim=-1)
    return float(sum(logp[t, row[t + 1]] for t in range(len(row) - 1)))


def test_batched_length_sorted_scores_equal_one_by_one(lm):
    rows = _rows(23, seed=1)
    other = [[2, *r[1:]] for r in rows]  # a second column: the same messages behind another start token
    (batched,) = score_jobs([ScoreJob(lm, [rows, other])], filler_id=0, batch_size=5)
    (alone,) = score_jobs([ScoreJob(lm, [rows, other])], filler_id=0, batch_size=1)
    np.testing.assert_allclose(batched, alone, atol=1e-5)
    by_hand = np.array([[_by_hand(lm, r), _by_hand(lm, o)] for r, o in zip(rows, other)])
    np.testing.assert_allclose(batched, by_hand, rtol=1e-6)  # float32 sums of up to 30 terms
    (naive,) = score_jobs([ScoreJob(lm, [rows, other])], filler_id=0, batch_size=7, sort=False, fixed_width=40)
    np.testing.assert_allclose(naive, alone, atol=1e-5)


def test_batches_keep_the_size_and_the_logits_budget():
    lengths = [9, 3, 7, 3, 12, 1, 5]
    batches = list(length_batches(lengths, batch_size=3, rows_per_item=2, vocab=10, budget=2 * 2 * 8 * 10))
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    order = [i for b in batches for i in b]
    assert [lengths[i] for i in order] == sorted(lengths)  # shortest first
    for b in batches:
        widest = max(lengths[i] for i in b)
        assert len(b) <= 3 and (len(b) == 1 or len(b) * 2 * widest * 10 <= 2 * 2 * 8 * 10)


def test_a_gpu_batch_may_hold_a_share_of_the_free_memory(monkeypatch):
    """On the CPU the fixed budget; on a CUDA device free memory / CUDA_BYTES_PER_LOGIT, never
    below the CPU's (the CUDA query is faked: no GPU is needed to test the rule)."""
    from nlpgd.models import lm_scoring as S

    assert S.logits_budget("cpu") == S.LOGITS_BUDGET
    gib = 2**30
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (100 * gib, 140 * gib))
    assert S.logits_budget("cuda:0") == 100 * gib // S.CUDA_BYTES_PER_LOGIT > 60 * S.LOGITS_BUDGET
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda dev=None: (gib // 4, 140 * gib))
    assert S.logits_budget("cuda:0") == S.LOGITS_BUDGET


def test_a_context_conditions_the_rows_and_is_not_scored(lm):
    rows = _rows(6, seed=2)
    context = [5, 6, 7]
    (with_context,) = score_jobs([ScoreJob(lm, [[r[1:] for r in rows]])], filler_id=0, batch_size=4, context=context)
    full = [context + r[1:] for r in rows]
    expected = [_by_hand(lm, f) - _by_hand(lm, context) for f in full]
    np.testing.assert_allclose(with_context[:, 0], expected, rtol=1e-6)


def test_a_lone_token_scores_zero_without_a_forward_pass(lm, monkeypatch):
    calls = []
    monkeypatch.setattr(lm_scoring, "_forward", lambda *a: calls.append(a) or np.zeros(0))
    (out,) = score_jobs([ScoreJob(lm, [[[1], [3]]])], filler_id=0, batch_size=4)
    assert out.tolist() == [[0.0], [0.0]] and not calls


def test_reference_lm_batches_under_the_logits_budget(tmp_path, monkeypatch):
    ref = ReferenceLM(str(tiny_llama(tmp_path / "ref", layers=1)), batch_size=16)
    texts = make_corpus(10, seed=3)[0]
    expected, _ = ref.score(texts)
    widths = []
    forward = ref.model.forward
    monkeypatch.setattr(ref.model, "forward", lambda **kw: widths.append(kw["input_ids"].shape) or forward(**kw))
    monkeypatch.setattr(lm_scoring, "LOGITS_BUDGET", 1)  # one message a batch
    got, _ = ref.score(texts)
    assert len(widths) == len(texts) and all(rows == 1 for rows, _ in widths)
    np.testing.assert_allclose(got, expected, atol=1e-5)


def _float64_reference(lm, row: list[int]) -> float:
    """The straightforward computation: a float64 copy of the LM, one row alone, the
    log-softmax over the whole vocabulary at every position, the row's next tokens gathered."""
    import copy

    lm64 = copy.deepcopy(lm).double()
    with torch.inference_mode():
        logp = torch.log_softmax(lm64(input_ids=torch.tensor([row])).logits[0], dim=-1)
    return float(logp[torch.arange(len(row) - 1), torch.tensor(row[1:])].sum())


@pytest.mark.parametrize("arch", ["gpt2", "llama"])
def test_batched_log_odds_equal_a_float64_reference(lm, arch, tmp_path):
    """Both classes' rows in one batch, padding, the output layer at the scored positions only:
    each column, and the log-odds between them, equal the float64 reference to 1e-5."""
    if arch == "llama":
        from transformers import AutoModelForCausalLM

        lm = AutoModelForCausalLM.from_pretrained(tiny_llama(tmp_path / "llama", layers=1)).eval()
    rows = _rows(17, seed=4)  # token ids below VOCAB, which both models have
    other = [[2, *r[1:]] for r in rows]
    (got,) = score_jobs([ScoreJob(lm, [rows, other])], filler_id=0, batch_size=6)
    ref = np.array([[_float64_reference(lm, r), _float64_reference(lm, o)] for r, o in zip(rows, other)])
    np.testing.assert_allclose(got, ref, atol=1e-5)
    np.testing.assert_allclose(got[:, 1] - got[:, 0], ref[:, 1] - ref[:, 0], atol=1e-5)


def test_the_output_layer_runs_only_where_a_token_is_scored(lm):
    """The vocabulary-wide logits are most of a small LM's scoring time: the output layer sees
    one hidden state per scored token, never the padding or a row's last position."""
    rows = _rows(9, seed=5)
    seen = []
    handle = lm.get_output_embeddings().register_forward_hook(lambda _m, args, out: seen.append(out.shape))
    try:
        score_jobs([ScoreJob(lm, [rows])], filler_id=0, batch_size=4)
    finally:
        handle.remove()
    assert sum(shape[0] for shape in seen) == sum(len(r) - 1 for r in rows)
    assert all(len(shape) == 2 and shape[-1] == VOCAB for shape in seen)


def test_gpt2_activations_are_fused_while_scoring_and_put_back(lm, monkeypatch):
    """transformers' NewGELUActivation is eight element-wise operations; scoring swaps in torch's
    fused tanh GELU (the same formula) and puts the model's own module back afterwards."""
    from transformers.activations import NewGELUActivation

    during = []
    forward = lm_scoring._forward
    monkeypatch.setattr(
        lm_scoring, "_forward", lambda lm_, *a: during.append(type(lm_.transformer.h[0].mlp.act)) or forward(lm_, *a)
    )
    score_jobs([ScoreJob(lm, [_rows(3, seed=6)])], filler_id=0, batch_size=8)
    assert during and all(t is torch.nn.GELU for t in during)
    assert type(lm.transformer.h[0].mlp.act) is NewGELUActivation
