"""The cached-trunk fine-tune (issue 19, lever 4): the lower blocks frozen and run once, only the
top blocks trained on their cached output."""

from __future__ import annotations

import pytest
import torch

from nlpgd.errors import NlpgdError
from nlpgd.models.cached_trunk import CachedBatch, cache_trunk, fine_tune_top, split_point, top_loss

from conftest import make_corpus, tiny_llama

LAYERS, TOP = 4, 2


@pytest.fixture(scope="module")
def llama_folder(tmp_path_factory):
    return tiny_llama(tmp_path_factory.mktemp("llama") / "tiny-llama", layers=LAYERS)


def load(folder):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(folder).float().eval(), AutoTokenizer.from_pretrained(folder)


def batches(tok, n: int = 24, size: int = 8) -> list[tuple[torch.Tensor, torch.Tensor]]:
    texts = make_corpus(n // 2, seed=3)[0]
    out = []
    for i in range(0, len(texts), size):
        enc = tok(texts[i : i + size], return_tensors="pt", padding=True)  # messages of different lengths
        out.append((enc["input_ids"], enc["attention_mask"]))
    return out


def full_loss(model, ids, mask) -> float:
    with torch.no_grad():
        return float(model(input_ids=ids, attention_mask=mask, labels=ids.masked_fill(mask == 0, -100)).loss)


def cached_loss(model, ids, mask) -> float:
    k = split_point(model, TOP)
    with torch.no_grad():
        return float(top_loss(model, k, CachedBatch(cache_trunk(model, k, ids, mask), ids, mask)))


def test_cached_trunk_gives_the_uncached_loss(llama_folder):
    model, tok = load(llama_folder)
    ids, mask = batches(tok)[0]
    assert int(mask.sum()) < mask.numel()  # padding in the batch: the mask must carry through
    assert cached_loss(model, ids, mask) == pytest.approx(full_loss(model, ids, mask), abs=1e-5)


def test_only_the_top_blocks_change_and_the_cache_stays_valid(llama_folder):
    model, tok = load(llama_folder)
    data = batches(tok)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    fit = fine_tune_top(model, data, n_top=TOP, epochs=3, learning_rate=1e-2, seed=0)
    assert len(fit.losses) == 3 and fit.losses[-1] < fit.losses[0]
    top = tuple(f"model.layers.{i}." for i in range(LAYERS - TOP, LAYERS))
    changed = {name for name, p in model.named_parameters() if not torch.equal(p, before[name])}
    assert changed, "nothing trained"
    assert all(name.startswith(top) for name in changed), sorted(changed)
    for prefix in top:  # every top block trained
        assert any(name.startswith(prefix) for name in changed), prefix
    ids, mask = data[1]  # after training, the cached path is still the whole model
    assert cached_loss(model, ids, mask) == pytest.approx(full_loss(model, ids, mask), abs=1e-5)


def test_refuses_bad_top_counts_and_other_architectures(llama_folder):
    from transformers import GPT2Config, GPT2LMHeadModel

    model, _ = load(llama_folder)
    for bad in (0, LAYERS + 1, True):
        with pytest.raises(NlpgdError, match="top blocks"):
            split_point(model, bad)
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=16, n_head=2, vocab_size=50))
    with pytest.raises(NlpgdError, match="rotary positions"):
        split_point(gpt2, 1)
