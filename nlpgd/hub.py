"""Hugging Face hub access that fails fast when there is no network.

`from_pretrained(name)` and `load_dataset(name)` retry for a minute or more when the hub is
unreachable. Before touching the hub we open one TCP connection with a short timeout (the
hub's own ``HF_HUB_ETAG_TIMEOUT`` when it is set, else 3 s); if it fails, the calls that
follow read the local cache only, each asked for it on its own: ``local_files_only=True`` on
``from_pretrained``, and offline mode for the one ``load_dataset`` call (:func:`datasets_offline`,
restored afterwards). Nothing is switched off for the rest of the process, so a later call
retries the hub. A name that is not cached becomes one sentence (:func:`offline_error`).
"""

from __future__ import annotations

import contextlib
import os
import socket
from functools import lru_cache
from typing import Iterator
from urllib.parse import urlparse

from nlpgd.errors import NlpgdError

_TRUTHY = {"1", "true", "yes", "on"}
PROBE_TIMEOUT = 3.0  # seconds, unless HF_HUB_ETAG_TIMEOUT says otherwise


def offline_env() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUTHY


@lru_cache(maxsize=4)
def _probe(host: str, port: int, timeout: float) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def probe_timeout() -> float:
    """The hub's metadata timeout (``HF_HUB_ETAG_TIMEOUT``) when set to a number, else 3 s."""
    try:
        value = float(os.environ.get("HF_HUB_ETAG_TIMEOUT", ""))
    except ValueError:
        return PROBE_TIMEOUT
    return value if value > 0 else PROBE_TIMEOUT


def hub_reachable(timeout: float | None = None) -> bool:
    """True when the hub endpoint accepts a TCP connection within ``timeout`` seconds."""
    if offline_env():
        return False
    url = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    port = url.port or (443 if url.scheme == "https" else 80)
    return _probe(url.hostname or "huggingface.co", port, probe_timeout() if timeout is None else timeout)


def prepare_hub(name: str, what: str) -> bool:
    """Call before loading ``name`` from the hub. True: the hub is unreachable, so the calls
    that follow must read the local cache only (``local_files_only=True``,
    :func:`datasets_offline`). Changes nothing else."""
    return not hub_reachable()


@contextlib.contextmanager
def datasets_offline(offline: bool) -> Iterator[None]:
    """``datasets``' own offline switch (``datasets.config.HF_HUB_OFFLINE``) for one block:
    ``load_dataset`` has no per-call equivalent of ``local_files_only`` that stops its retries.
    The previous value is restored afterwards."""
    if not offline:
        yield
        return
    import datasets

    before = datasets.config.HF_HUB_OFFLINE
    datasets.config.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        datasets.config.HF_HUB_OFFLINE = before


def offline_error(name: str, what: str, hint: str = "") -> NlpgdError:
    msg = (
        f"cannot load {what} '{name}': it is not a local path and the Hugging Face hub is "
        f"unreachable (offline, and it is not in the local cache)"
    )
    if hint:
        msg += f"; {hint}"
    return NlpgdError(msg)
