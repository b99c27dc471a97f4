"""Streaming scoring: messages per second and peak memory of ``nlpgd classify RUN - --json``
(or, with ``--mode evaluate``, of ``nlpgd evaluate RUN --dataset csv:FILE --split all --model ARM``
on the same messages with their labels, de-duplication off).

Prints figures, asserts nothing. For each arm (naive Bayes, logistic regression, MiniLM as
the ``distilbert`` arm, GPT-2) and each size (10k, 100k, 1M short messages, drawn with
replacement from the SMS Spam Collection, seed 0), the command runs as its own process,
reading the messages from a file on stdin and writing its JSON lines to /dev/null. Per run:
wall seconds, messages per second (startup included, and without it: the startup is the
same command on one message), CPU seconds (all threads; on cores shared with other jobs
"messages per CPU second" moves much less than the wall-clock rate), and peak RSS.

    .venv/bin/python benchmarks/bench_scoring.py --train                  # trains the run first
    .venv/bin/python benchmarks/bench_scoring.py --run outputs/bench-scoring/latest
    .venv/bin/python benchmarks/bench_scoring.py --run RUN --sizes 10000,100000 --arms gpt2
    .venv/bin/python benchmarks/bench_scoring.py --run RUN --mode evaluate --sizes 10000,100000

``evaluate`` reads the CSV a batch at a time (nlpgd/data/stream.py: a first pass keeps about
20 bytes a message, its label, a hash of its text, its lengths and its split; the scoring pass
reads, scores and writes a chunk at a time), so its peak RSS grows by those bytes and the
exact metrics' per-message numbers, not by the texts: ROC-AUC and PR-AUC sort every score, and
scikit-learn's metrics hold about 120 bytes a message for a moment at the end. The file is
converted to Arrow once on disk by ``datasets`` first (in the datasets cache) and read through
a memory map, whose pages count in RSS as file-backed memory the kernel can drop: the last
column splits the peak into anonymous memory (the process's own) and file-backed pages. The
SpamAssassin corpus, ``data.id_column`` and subsamples are still read whole (not what this
benchmark runs).

``--train`` fits the main job's models (configs/default.yaml: naive Bayes, logreg, MiniLM at
96 tokens, the scratch GPT-2 at 96 tokens; not the hybrid) on the SMS collection with
``max_train_samples`` 2,000 into ``--output-dir`` (about 2 minutes on 2 cores).

Targets (issue 20): peak RSS at 1M within 1.2x of the peak at 10k for every arm; naive Bayes
>= 30,000 msg/s; the main job's GPT-2 (both classes, 96 tokens) >= 1,000 msg/s, on 2 cores.
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
SMS_CANDIDATES = [REPO.parent / "shared" / "data" / "sms_spam" / "SMSSpamCollection"] + [
    p / "shared" / "data" / "sms_spam" / "SMSSpamCollection" for p in REPO.parents
]
ARMS = {"naive_bayes": "naive Bayes", "logreg": "logreg", "distilbert": "MiniLM", "gpt2": "GPT-2"}
TARGET_RSS_RATIO = 1.2
TARGET_RATE = {"naive_bayes": 30_000, "gpt2": 1_000}


def default_sms() -> Path | None:
    return next((p for p in SMS_CANDIDATES if p.is_file()), None)


def nlpgd_command(*args: str) -> list[str]:
    return [sys.executable, "-m", "nlpgd", *args]


def child_env() -> dict[str, str]:
    env = dict(os.environ, HF_HUB_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    return env


def train_run(sms: Path, output_dir: Path) -> Path:
    """Fit the main job's models (without the hybrid) on SMS; the new run folder."""
    cfg = yaml.safe_load((REPO / "configs" / "default.yaml").read_text(encoding="utf-8"))
    cfg["name"] = "bench-scoring"
    cfg["description"] = "configs/default.yaml's models without the hybrid, on SMS (benchmarks/bench_scoring.py)"
    cfg["data"] = {"source": "uci_sms", "path": str(sms), "max_train_samples": 2000}
    cfg["models"] = {k: v for k, v in cfg["models"].items() if k in ARMS}
    cfg["output_dir"] = str(output_dir)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench_scoring.yaml"
        path.write_text(yaml.safe_dump(cfg, sort_keys=False), encoding="utf-8")
        print(f"training {', '.join(cfg['models'])} on {sms} into {output_dir} ...", flush=True)
        subprocess.run(nlpgd_command("compare", str(path), "--quiet"), check=True, env=child_env())
    return (output_dir / "bench-scoring" / "latest").resolve()


def write_messages(sms: Path, n: int, folder: Path) -> Path:
    """``n`` messages drawn with replacement (seed 0), one per line (the newlines inside a
    message become spaces, as a mail archive's one-line export would have them)."""
    path = folder / f"messages_{n}.txt"
    if not path.is_file():
        lines = sms.read_text(encoding="utf-8").splitlines()
        texts = [" ".join(line.split("\t", 1)[1].split()) for line in lines if "\t" in line]
        rng = random.Random(0)
        with path.open("w", encoding="utf-8") as f:
            for start in range(0, n, 100_000):
                f.writelines(rng.choice(texts) + "\n" for _ in range(min(100_000, n - start)))
    return path


def write_labelled(sms: Path, n: int, folder: Path) -> Path:
    """The same draws as :func:`write_messages`, with their labels, as ``text,label`` CSV."""
    import csv

    path = folder / f"labelled_{n}.csv"
    if not path.is_file():
        lines = sms.read_text(encoding="utf-8").splitlines()
        rows = [(" ".join(t.split()), label) for label, t in (line.split("\t", 1) for line in lines if "\t" in line)]
        rng = random.Random(0)
        with path.open("w", encoding="utf-8", newline="") as f:
            w = csv.writer(f)
            w.writerow(["text", "label"])
            w.writerows(rng.choice(rows) for _ in range(n))
    return path


def command_args(mode: str, run: Path, arm: str, messages: Path) -> list[str]:
    if mode == "classify":
        return ["classify", str(run), "-", "--json", "--model", arm]
    name = f"bench-{arm}-{messages.stem}"
    spec = ["--dataset", f"csv:{messages}", "--split", "all", "--set", "dedup=false"]
    return ["evaluate", str(run), *spec, "--model", arm, "--name", name, "--quiet"]


def classify_once(
    run: Path, arm: str, messages: Path, chunk_size: int | None, mode: str = "classify"
) -> tuple[float, float, float]:
    """Wall seconds, CPU seconds (user + system, all threads) and peak RSS (MB) of
    ``classify RUN - --json --model ARM < messages`` (or of the evaluate command)."""
    args = command_args(mode, run, arm, messages)
    if chunk_size:
        args += ["--chunk-size", str(chunk_size)]
    with messages.open("rb") as stdin, open(os.devnull, "wb") as devnull:
        t0 = time.perf_counter()
        proc = subprocess.Popen(nlpgd_command(*args), stdin=stdin, stdout=devnull, env=child_env())
        split = RssSplit(proc.pid)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        split.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{mode} --model {arm} on {messages.name} exited with {proc.returncode}")
    LAST_SPLIT.update(split.peaks)
    return wall, usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024  # Linux reports kilobytes


LAST_SPLIT: dict[str, float] = {}  # the last run's sampled peaks of RssAnon and RssFile (MB)


class RssSplit:
    """Peaks of a process's anonymous memory (its own: objects, tensors) and file-backed
    resident pages (libraries, and memory-mapped files such as the Arrow cache ``evaluate``
    reads, which the kernel can drop at any time), sampled every 20 ms from /proc (Linux):
    peak RSS counts both."""

    def __init__(self, pid: int):
        import threading

        self.pid, self.peaks, self.done = pid, {"RssAnon": 0.0, "RssFile": 0.0}, threading.Event()
        self.thread = threading.Thread(target=self._poll, daemon=True)
        self.thread.start()

    def _poll(self) -> None:
        while not self.done.wait(0.02):
            try:
                with open(f"/proc/{self.pid}/status") as f:
                    for line in f:
                        key = line.split(":", 1)[0]
                        if key in self.peaks:
                            self.peaks[key] = max(self.peaks[key], int(line.split()[1]) / 1024)
            except (OSError, ValueError):  # gone, or not Linux
                return

    def stop(self) -> None:
        self.done.set()
        self.thread.join()


def rate(n: int, seconds: float) -> str:
    return f"{n / seconds:,.0f}" if seconds > 0 else "-"


def bench_arm(
    run: Path, arm: str, files: dict[int, Path], one: Path, chunk_size: int | None, mode: str = "classify"
) -> dict[int, float]:
    start_s, start_cpu, start_mb = classify_once(run, arm, one, chunk_size, mode)
    print(f"\n{ARMS[arm]} ({arm}): startup (one message) {start_s:.1f} s, {start_mb:,.0f} MB", flush=True)
    print(
        f"{'messages':>10s} {'wall s':>8s} {'msg/s':>9s} {'msg/s after startup':>20s} "
        f"{'CPU s':>8s} {'msg per CPU s':>14s} {'peak RSS MB':>12s} {'anon / file MB':>15s}"
    )
    peaks = {}
    for n, path in files.items():
        wall, cpu, peak = classify_once(run, arm, path, chunk_size, mode)
        peaks[n] = peak
        print(
            f"{n:>10,d} {wall:>8.1f} {rate(n, wall):>9s} {rate(n, wall - start_s):>20s} "
            f"{cpu:>8.1f} {rate(n, cpu - start_cpu):>14s} {peak:>12,.0f} "
            f"{LAST_SPLIT.get('RssAnon', 0):>7,.0f} / {LAST_SPLIT.get('RssFile', 0):<5,.0f}",
            flush=True,
        )
    if len(peaks) > 1:
        lo, hi = min(peaks), max(peaks)
        ratio = peaks[hi] / peaks[lo]
        verdict = "meets" if ratio <= TARGET_RSS_RATIO else "misses"
        print(f"peak RSS at {hi:,} / at {lo:,}: {ratio:.2f}x ({verdict} the {TARGET_RSS_RATIO}x target)")
    if arm in TARGET_RATE:
        print(f"target: >= {TARGET_RATE[arm]:,} msg/s")
    return peaks


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, help="a finished run folder holding the arms (see --train)")
    ap.add_argument("--train", action="store_true", help="fit the main job's models on SMS first")
    ap.add_argument("--output-dir", type=Path, default=REPO / "outputs", help="where --train puts its run")
    ap.add_argument("--data", type=Path, default=default_sms(), help="the SMS Spam Collection (UCI file)")
    ap.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated message counts")
    ap.add_argument("--arms", default=",".join(ARMS), help=f"comma-separated, of {', '.join(ARMS)}")
    ap.add_argument("--large-arms", default=None, help="arms that run the sizes above 100k (default: all)")
    ap.add_argument("--chunk-size", type=int, default=None, help="the command's --chunk-size (default: its own)")
    ap.add_argument("--mode", choices=("classify", "evaluate"), default="classify", help="which command to time")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "nlpgd-bench-scoring")
    args = ap.parse_args()
    if args.data is None or not args.data.is_file():
        raise SystemExit("the SMS Spam Collection was not found: pass --data PATH")
    if args.train:
        args.run = train_run(args.data, args.output_dir.resolve())
    if args.run is None:
        raise SystemExit("pass --run RUN (a run folder with the arms) or --train")
    sizes = [int(s) for s in args.sizes.split(",")]
    arms = [a for a in args.arms.split(",") if a]
    large = set(arms if args.large_arms is None else args.large_arms.split(","))
    args.work.mkdir(parents=True, exist_ok=True)
    write = write_messages if args.mode == "classify" else write_labelled
    files = {n: write(args.data, n, args.work) for n in sizes}
    one = write(args.data, 1 if args.mode == "classify" else 3, args.work)  # evaluate needs one in its split
    print(f"run {args.run}; {os.cpu_count()} cores, load average {os.getloadavg()[0]:.1f} at the start")
    print(f"sizes {', '.join(f'{n:,}' for n in sizes)} (above 100,000 only for {', '.join(sorted(large)) or 'none'})")
    for arm in arms:
        bench_arm(
            run=args.run,
            arm=arm,
            files={n: p for n, p in files.items() if n <= 100_000 or arm in large},
            one=one,
            chunk_size=args.chunk_size,
            mode=args.mode,
        )
    print(f"\nload average {os.getloadavg()[0]:.1f} at the end (other jobs on the same cores make every figure noisy)")


if __name__ == "__main__":
    main()
