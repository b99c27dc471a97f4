"""Hugging Face hub access that fails fast when there is no network.

`from_pretrained(name)` and `load_dataset(name)` retry for a minute or more when the hub is
unreachable. Before touching the hub we open one TCP connection with a short timeout; if it
fails we switch the libraries to offline mode (so anything already in the local cache still
loads) and turn the inevitable miss into a one-sentence :class:`NlpgdError`.
"""

from __future__ import annotations

import os
import socket
import sys
from functools import lru_cache
from urllib.parse import urlparse

from nlpgd.errors import NlpgdError

_TRUTHY = {"1", "true", "yes", "on"}


def offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY


@lru_cache(maxsize=1)
def _probe(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def hub_reachable(timeout: float = 3.0) -> bool:
    """True when the hub endpoint accepts a TCP connection within ``timeout`` seconds."""
    if offline_env():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    return _probe(url.hostname or "huggingface.co", port, timeout)


def go_offline() -> None:
    """Put huggingface_hub, datasets and transformers in offline mode (cache only)."""
    os.environ["HF_HUB_OFFLINE"] = "1"
    for mod, attr in (
        ("huggingface_hub.constants", "HF_HUB_OFFLINE"),
        ("datasets.config", "HF_HUB_OFFLINE"),
        ("transformers.utils.hub", "_is_offline_mode"),
    ):
        module = sys.modules.get(mod)
        if module is not None and hasattr(module, attr):
            setattr(module, attr, True)


def prepare_hub(name: str, what: str) -> bool:
    """Call before loading ``name`` from the hub. Returns True when offline (cache only)."""
    if hub_reachable():
        return False
    go_offline()
    return True


def offline_error(name: str, what: str, hint: str = "") -> NlpgdError:
    msg = (
        f"cannot load {what} '{name}': it is not a local path and the Hugging Face hub is "
        f"unreachable (offline, and it is not in the local cache)"
    )
    if hint:
        msg += f"; {hint}"
    return NlpgdError(msg)
