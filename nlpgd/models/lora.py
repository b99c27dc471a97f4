"""A pretrained causal LM in a run: added tokens, LoRA adapters, or the model as it is.

The GPT-2 arm (:mod:`nlpgd.models.gpt2`) conditions a language model on the class through
tokens it adds to the vocabulary (``<|spam|>``, ``<|ham|>``, a pad token). For a pretrained
checkpoint this module decides what those tokens start as and what a run keeps:

- :func:`prepare_base`: the rows of the added tokens are set deterministically (a label token
  starts as the mean embedding of its word, e.g. ``spam``; any other added token, such as a
  pad token, as the mean of all rows), so the same rows are rebuilt from the checkpoint when
  a run is loaded. With ``lora`` in the params the model is wrapped in LoRA adapters through
  ``peft`` (:func:`apply_lora`); the label tokens' rows train with them (peft's trainable
  tokens), and every other pretrained weight stays frozen. Without label tokens to train
  (``conditioning: per_class``) and with ``lora.layers`` set, only the last blocks are
  adapted, and the backward pass stops below them: a cheaper step.
- :func:`save_lm` / :func:`load_lm`: a run keeps one of three formats per language model:
  ``full`` (every weight, as for a model trained from scratch), ``lora`` (peft's
  ``save_pretrained``: ``adapter_model.safetensors`` and ``adapter_config.json``, a few MB;
  the base is loaded from its checkpoint and the adapters merged into it for scoring and
  generation), or ``as_is`` (``epochs: 0``: nothing was trained, nothing but the tokenizer is
  kept, and the model is rebuilt from its checkpoint). Loading follows the safe-loading rules
  (:mod:`nlpgd.safe_load`): no custom code, intact safetensors only, no pickle.

peft is an optional dependency (``pip install peft``); only ``lora`` needs it.
"""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch

from nlpgd.errors import NlpgdError
from nlpgd.io import ensure_dir, read_json
from nlpgd.models.causal_lm import as_plain_model, load_causal_lm
from nlpgd.params import GPT2Params
from nlpgd.safe_load import check_weights, load_errors, refuse_custom_code

PEFT_INSTALL = "pip install peft"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
ADAPTER_CONFIG = "adapter_config.json"
FORMATS = ("full", "lora", "as_is")


def require_peft() -> None:
    if importlib.util.find_spec("peft") is None:
        raise NlpgdError(f"lora needs the peft package, which is not installed: {PEFT_INSTALL}")


def is_adapted(model) -> bool:
    """Whether ``model`` carries peft adapters."""
    return hasattr(model, "peft_config")


# -- the starting point -------------------------------------------------------------------
def prepare_base(model, tok, base_len: int, label_tokens: list[str]):
    """Resize ``model`` to ``tok`` and set the rows of the tokens added after ``base_len``
    (see the module docstring); returns the model."""
    if len(tok) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tok), mean_resizing=False)
    emb = model.get_input_embeddings().weight
    out = model.get_output_embeddings()
    tables = [emb] if out is None or out.weight.data_ptr() == emb.data_ptr() else [emb, out.weight]
    with torch.no_grad():
        for table in tables:
            mean = table[:base_len].mean(dim=0)
            for i in range(base_len, len(tok)):
                token = tok.convert_ids_to_tokens(i)
                ids = [j for j in _word_ids(tok, token) if j < base_len] if token in label_tokens else []
                table[i] = table[ids].mean(dim=0) if ids else mean
    model.config.pad_token_id = tok.pad_token_id
    return model


def _word_ids(tok, token: str) -> list[int]:
    """The base-vocabulary ids of a label token's word (``<|spam|>`` -> ``spam``)."""
    if not (token.startswith("<|") and token.endswith("|>")) or len(token) <= 4:
        return []
    return tok(token[2:-2], add_special_tokens=False)["input_ids"]


def apply_lora(model, params: GPT2Params, new_ids: list[int]):
    """``model`` wrapped in LoRA adapters on ``params.lora.target_modules`` (of the last
    ``params.lora.layers`` blocks, or all); the rows of ``new_ids`` (the added label tokens)
    train too, every other weight is frozen."""
    require_peft()
    from peft import LoraConfig, get_peft_model

    lora = params.lora
    check_targets(model, lora.target_modules, params.checkpoint)
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
        task_type="CAUSAL_LM",
        trainable_token_indices=list(new_ids) or None,
        layers_to_transform=_last_layers(model, lora.layers, params.checkpoint),
    )
    # peft looks the base up by this name when it saves adapters, to see whether the vocabulary
    # grew, and then saves the whole embedding matrix too (or asks the hub); the added rows
    # are saved anyway, and the base is rebuilt from params.checkpoint
    model.name_or_path = ""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        adapted = get_peft_model(model, config)
    adapted.peft_config["default"].base_model_name_or_path = None
    return adapted


def _last_layers(model, n: int | None, checkpoint: str) -> list[int] | None:
    if n is None:
        return None
    total = getattr(model.config, "num_hidden_layers", None) or getattr(model.config, "n_layer", None)
    if not isinstance(total, int):
        raise NlpgdError(
            f"lora.layers needs a model that says how many blocks it has; checkpoint '{checkpoint}' does not"
        )
    if n > total:
        raise NlpgdError(f"lora.layers is {n}, but checkpoint '{checkpoint}' has {total} blocks")
    return list(range(total - n, total))


def check_targets(model, targets: list[str], checkpoint: str) -> None:
    """One sentence unless every target names a linear layer of ``model`` (by its last name)."""
    linear = sorted(
        {
            name.rsplit(".", 1)[-1]
            for name, module in model.named_modules()
            if name and (isinstance(module, torch.nn.Linear) or type(module).__name__ == "Conv1D")
        }
    )
    missing = [t for t in targets if t not in linear]
    if missing:
        raise NlpgdError(
            f"lora.target_modules names '{missing[0]}', which checkpoint '{checkpoint}' does not have; "
            f"its linear layers are: {', '.join(linear) or 'none'}"
        )


def adapt(model, tok, base_len: int, params: GPT2Params, label_tokens: list[str]):
    """The starting model of a fit: :func:`prepare_base`, then LoRA when ``params.lora``."""
    model = prepare_base(model, tok, base_len, label_tokens)
    if params.lora is None:
        return model
    new_labels = [i for i in range(base_len, len(tok)) if tok.convert_ids_to_tokens(i) in label_tokens]
    return apply_lora(model, params, new_labels)


# -- persistence -------------------------------------------------------------------------
def save_lm(lm, folder: Path, params: GPT2Params) -> str:
    """Write ``lm`` into ``folder``; returns its format (``full``, ``lora`` or ``as_is``)."""
    ensure_dir(folder)
    if is_adapted(lm):
        lm.save_pretrained(folder, safe_serialization=True, save_embedding_layers=False)
        return "lora"
    if params.epochs == 0 and params.checkpoint != "scratch":
        return "as_is"  # nothing trained: rebuilt from the checkpoint on load
    as_plain_model(lm).save_pretrained(folder)
    return "full"


def load_lm(folder: Path, fmt: str, params: GPT2Params, tok, label_tokens: list[str]):
    """The language model saved by :func:`save_lm` in ``folder`` (LoRA adapters merged)."""
    from transformers import AutoModelForCausalLM

    if fmt not in FORMATS:
        raise NlpgdError(f"{folder}: unknown language-model format {fmt!r} (expected one of {', '.join(FORMATS)})")
    if fmt == "full":
        refuse_custom_code(folder)
        check_weights(folder)
        with load_errors(folder, "the language model"):
            return AutoModelForCausalLM.from_pretrained(folder, trust_remote_code=False)
    if params.checkpoint == "scratch":
        raise NlpgdError(f"{folder}: a '{fmt}' language model needs a pretrained checkpoint, not 'scratch'")
    if fmt == "lora":
        _check_adapter(folder)  # before the base loads: a broken run fails fast
    base_tok, base = load_causal_lm(params.checkpoint)
    model = prepare_base(base, tok, len(base_tok), label_tokens)
    if fmt == "as_is":
        return model
    from peft import PeftModel

    with warnings.catch_warnings(), load_errors(folder, "the LoRA adapters"):
        warnings.simplefilter("ignore")
        # adapters are weights only (``_check_adapter``); never code from the folder
        adapted = PeftModel.from_pretrained(model, folder, is_trainable=False, trust_remote_code=False)
        return adapted.merge_and_unload()


def _check_adapter(folder: Path) -> None:
    """Refuse an adapter folder that is incomplete, not LoRA, pickled or asks for code."""
    require_peft()
    refuse_custom_code(folder)
    config = read_json(folder / ADAPTER_CONFIG, "LoRA adapter config")
    if not isinstance(config, dict) or config.get("peft_type") != "LORA":
        raise NlpgdError(f"{folder / ADAPTER_CONFIG} does not describe LoRA adapters")
    if config.get("auto_mapping"):
        raise NlpgdError(f"{folder / ADAPTER_CONFIG} asks for a custom model class (auto_mapping); refusing it")
    if not (folder / ADAPTER_WEIGHTS).is_file():
        raise NlpgdError(f"LoRA adapter weights {folder / ADAPTER_WEIGHTS} are missing")
    check_weights(folder)
