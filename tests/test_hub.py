"""The hub route: an unreachable hub makes the loads that follow read the cache only, each call
on its own, and leaves the process as it was (no HF_HUB_OFFLINE for the rest of it)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

from conftest import REPO

SCRIPT = """
import json, os, time
from nlpgd.errors import NlpgdError
from nlpgd.config import DataConfig
from nlpgd.data import load_splits
from nlpgd.models.causal_lm import load_causal_lm
from nlpgd.models.distilbert import load_pretrained

out = {}
for what, load in (
    ("lm", lambda: load_causal_lm("distilgpt2")),
    ("encoder", lambda: load_pretrained("no-such-org/no-such-encoder", ["ham", "spam"])),
    ("data", lambda: load_splits(DataConfig(source="hub", name="no-such-org/no-such-data"))),
):
    t0 = time.perf_counter()
    try:
        load()
        out[what] = {"error": None}
    except NlpgdError as exc:
        out[what] = {"error": str(exc)}
    out[what]["seconds"] = time.perf_counter() - t0
import datasets, huggingface_hub.constants as hc
out["env"] = os.environ.get("HF_HUB_OFFLINE")
out["datasets_offline"] = bool(datasets.config.HF_HUB_OFFLINE)
out["hub_offline"] = bool(hc.HF_HUB_OFFLINE)
print(json.dumps(out))
"""


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]  # closed once the socket is: connections are refused


def test_unreachable_hub_fails_fast_and_leaves_the_process_online(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_OFFLINE"}
    env.update(
        HF_ENDPOINT=f"http://127.0.0.1:{_closed_port()}",
        HF_HOME=str(tmp_path / "hf"),  # an empty cache: nothing to fall back on
        PYTHONPATH=str(REPO),
        OMP_NUM_THREADS="1",
    )
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    for what, name in (("lm", "distilgpt2"), ("encoder", "no-such-encoder"), ("data", "no-such-data")):
        error = out[what]["error"]
        assert error and name in error and "hub is unreachable" in error and "\n" not in error, (what, error)
        assert out[what]["seconds"] < 15, (what, out[what]["seconds"])
    # the process was not switched offline: a later hub call would try the network again
    assert out["env"] is None
    assert not out["datasets_offline"] and not out["hub_offline"]
    assert time.perf_counter() - t0 < 120


def test_probe_waits_as_long_as_the_hub_setting_says(monkeypatch):
    from nlpgd.hub import PROBE_TIMEOUT, probe_timeout

    monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", "1.5")
    assert probe_timeout() == 1.5
    for unusable in ("", "soon", "0", "-2"):
        monkeypatch.setenv("HF_HUB_ETAG_TIMEOUT", unusable)
        assert probe_timeout() == PROBE_TIMEOUT
