"""A GPT-2 arm's tokenizer and LMs: where they come from (:func:`tokenizer_and_base`), which
token ids start and end a message (:func:`special_ids`), and how they are saved (:func:`save_lms`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from nlpgd.distributed import is_main_process
from nlpgd.errors import NlpgdError
from nlpgd.models.causal_lm import load_causal_lm, scratch_model
from nlpgd.models.lm_data import label_token
from nlpgd.models.lora import adapt, save_lm
from nlpgd.models.vocab import EOS, PAD, train_bpe
from nlpgd.params import GPT2Params
from nlpgd.safe_load import load_errors, refuse_custom_code


def tokenizer_and_base(p: GPT2Params, classes: Sequence[str], texts: list[str], work: Path, resume: bool):
    """The tokenizer (with the label tokens of ``classes`` under prefix conditioning, and end
    and pad tokens) and the starting model: a BPE learned on ``texts`` (or the interrupted
    fit's, in ``work``) and a scratch GPT-2, or a checkpoint's own, adapted (LoRA when asked)."""
    specials = [label_token(c) for c in classes] if p.conditioning == "prefix" else []
    tok_dir = work / "tokenizer"
    if p.checkpoint == "scratch":
        if resume and tok_dir.is_dir():
            from transformers import AutoTokenizer

            refuse_custom_code(tok_dir)
            with load_errors(tok_dir, "the tokenizer of the interrupted fit"):
                tok = AutoTokenizer.from_pretrained(tok_dir, trust_remote_code=False)
        else:
            corpus = [t.lower() for t in texts] if p.lowercase else texts
            tok = train_bpe(corpus, p.vocab_size, p.bpe_min_frequency, specials)
            if is_main_process():  # under torchrun the ranks learn the same vocabulary; one writes it
                tok.save_pretrained(tok_dir)
        return tok, scratch_model(p, tok)
    tok, model = load_causal_lm(p.checkpoint)
    if p.prompts is not None:  # channel prompting scores the checkpoint as it is: no token added
        return tok, _as_is(tok, model, p.checkpoint)
    base_len = len(tok)
    extra: dict[str, Any] = {}
    if tok.eos_token is None:
        extra["eos_token"] = EOS
    if tok.pad_token is None or tok.pad_token_id == tok.eos_token_id:
        extra["pad_token"] = PAD
    if specials:
        extra["additional_special_tokens"] = specials
    if extra:
        # keep the tokenizer's own extra special tokens (chat markers etc.)
        tok.add_special_tokens(extra, replace_extra_special_tokens=False)
    return tok, adapt(model, tok, base_len, p, specials)  # added rows set; LoRA adapters when p.lora


def _as_is(tok, model, checkpoint: str):
    """The checkpoint's model unchanged, padded with its end token (padding is never scored)."""
    if tok.eos_token is None:
        raise NlpgdError(f"checkpoint '{checkpoint}' has no end-of-text token to pad a batch with")
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return model


def special_ids(tok, classes: Sequence[str], conditioning: str) -> tuple[int, int, dict[str, int]]:
    """``(end id, pad id, {class: start id})``: each class's label token under prefix
    conditioning, else a bare start-of-text token (the model's own BOS if it has one)."""
    eos, pad = int(tok.eos_token_id), int(tok.pad_token_id)
    if conditioning == "prefix":
        return eos, pad, {c: int(tok.convert_tokens_to_ids(label_token(c))) for c in classes}
    start = tok.bos_token_id if tok.bos_token_id is not None else eos
    return eos, pad, {c: int(start) for c in classes}


def save_lms(lms: dict, classes: Sequence[str], path: Path, p: GPT2Params) -> tuple[dict[str, str], dict[str, str]]:
    """Save each distinct LM once under ``path`` (``lm`` under prefix conditioning, else
    ``lm_<i>``); returns ``({class: folder}, {folder: format})`` (full, lora or as_is)."""
    lm_dirs: dict[str, str] = {}
    folders: dict[int, str] = {}
    formats: dict[str, str] = {}
    for i, c in enumerate(classes):
        lm = lms[c]
        if id(lm) not in folders:
            folders[id(lm)] = "lm" if p.conditioning == "prefix" else f"lm_{i}"
            formats[folders[id(lm)]] = save_lm(lm, path / folders[id(lm)], p)
        lm_dirs[str(c)] = folders[id(lm)]
    return lm_dirs, formats
