"""Writing a report: load, analyse, draw, render; every file goes through :mod:`nlpgd.io`, so a
write the system refuses is one sentence naming the path and leaves no temporary file."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from nlpgd.io import atomic_write_bytes, atomic_write_text, ensure_dir, write_json
from nlpgd.report.analysis import analyse, analyse_runs
from nlpgd.report.figures import library, render_figures
from nlpgd.report.load import RunPredictions, load_run_predictions, load_runs, rel
from nlpgd.report.render import render_html, render_markdown
from nlpgd.report.sections import comparison_blocks, run_blocks
from nlpgd.runs import now_iso


def json_safe(obj):
    """JSON-safe copy: NaN/inf become null, numpy types become Python ones, ``_`` keys are dropped."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items() if not str(k).startswith("_")}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return json_safe(obj.tolist())
    if isinstance(obj, (np.bool_, bool)):
        return bool(obj)
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        return float(obj) if math.isfinite(obj) else None
    return obj


def _write_figures(rp: RunPredictions, res: dict, fig_dir: Path, out_dir: Path) -> dict[str, tuple[bytes, str]]:
    """Draw one run's figures into ``fig_dir``; records them in ``res`` and returns
    ``{name: (png, path relative to out_dir)}``."""
    pngs = render_figures(
        rp.labels["test"],
        rp.probs["test"],
        res["_calibrated"],
        rp.seeds,
        res["context"],
        res.get("continuum"),
        log_odds=rp.log_odds["test"],
    )
    figures = {}
    for name, png in pngs:
        path = fig_dir / f"{name}.png"
        atomic_write_bytes(path, png)
        figures[name] = (png, rel(path, out_dir))
    res["method"]["figures"] = library()
    res["figures"] = {name: r for name, (_, r) in figures.items()}
    return figures


def _write_outputs(out_dir: Path, blocks: list, title: str, results: dict) -> Path:
    md = out_dir / "report.md"
    atomic_write_text(md, render_markdown(blocks))
    atomic_write_text(out_dir / "report.html", render_html(blocks, title))
    write_json(out_dir / "results.json", json_safe(results))
    return md


def write_report(run_dir: Path, partial_ok: bool = False, out_dir: Path | None = None, n_resamples: int = 1000) -> Path:
    """Rebuild ``report.md``, ``report.html``, ``results.json`` and ``figures/*.png`` of one run
    from its saved predictions (no model is loaded). They go into the run folder unless
    ``out_dir`` is given. ``partial_ok`` accepts a ``<id>.partial`` folder (``compare`` reports
    before marking the run complete). Returns the path of ``report.md``."""
    rp = load_run_predictions(run_dir, partial_ok=partial_ok)
    out_dir = ensure_dir(Path(out_dir) if out_dir is not None else rp.path)  # a bad --out fails before the work
    res = analyse(rp, n_resamples=n_resamples, generated=now_iso())
    figures = _write_figures(rp, res, out_dir / "figures", out_dir)
    title = f"{res['run']['experiment']} — run {res['run']['run_id']}"
    return _write_outputs(out_dir, run_blocks(res, figures), title, res)


def write_comparison(run_dirs: list[Path], out_dir: Path, n_resamples: int = 1000) -> Path:
    """A combined report of two or more finished runs in ``out_dir`` (``report.md``,
    ``report.html``, ``results.json``, ``figures/<run>/*.png``). Returns the path of ``report.md``.

    Each run keeps its own intervals and McNemar tests. When every run has the same test
    messages with the same labels, models of different runs are also paired with McNemar's
    test, seed by seed on the seeds the two runs share."""
    loaded = load_runs(run_dirs)
    out_dir = ensure_dir(Path(out_dir))
    results = analyse_runs(loaded, n_resamples=n_resamples, generated=now_iso())
    figures = {
        res["label"]: _write_figures(rp, res, out_dir / "figures" / res["label"], out_dir)
        for rp, res in zip(loaded, results["runs"])
    }
    title = f"Comparison of {len(loaded)} runs"
    return _write_outputs(out_dir, comparison_blocks(results, figures), title, results)
