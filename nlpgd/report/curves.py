"""Figures of the claims experiments, drawn from their JSON description alone.

A figure is ``{"name", "title", "panels": [...]}``; a panel is ``{"title", "xlabel",
"ylabel", "xscale" (optional), "xticks" and "xticklabels" (optional), "series": [...]}``; a
series is ``{"label", "x", "y", "lo", "hi", "style", "group"}``: one line with a shaded 95%
band, its colour fixed by ``group`` across the figure (so a model keeps its colour), its line
style by ``style`` (``-``, ``--``, ``:``; ``o`` for a lone marker). Every number drawn is in
``results.json``, so a figure can be redrawn from the run folder.
"""

from __future__ import annotations

import math

import numpy as np

from nlpgd.report.figures import _colors, _plt, _suptitle, png_bytes


def _arr(values) -> np.ndarray:
    return np.array([np.nan if v is None else float(v) for v in values], dtype=np.float64)


def _draw_series(ax, s: dict, color) -> None:
    x, y, lo, hi = _arr(s["x"]), _arr(s["y"]), _arr(s["lo"]), _arr(s["hi"])
    if s.get("style") == "o" or len(x) == 1:
        err = np.vstack([np.clip(y - lo, 0, None), np.clip(hi - y, 0, None)])
        ax.errorbar(x, y, yerr=np.nan_to_num(err), fmt="o", color=color, ms=5, capsize=3, label=s["label"])
        return
    ax.plot(x, y, s.get("style") or "-", color=color, lw=1.5, marker=".", label=s["label"])
    ok = np.isfinite(lo) & np.isfinite(hi)
    if ok.any():
        ax.fill_between(x[ok], lo[ok], hi[ok], color=color, alpha=0.15, lw=0)


def _panel(ax, panel: dict, colors: dict) -> None:
    for s in panel["series"]:
        if s["x"]:
            _draw_series(ax, s, colors[s.get("group") or s["label"]])
    if panel.get("xscale") in ("log", "symlog"):  # symlog: a log axis that also shows 0
        ax.set_xscale(
            *(("symlog",) if panel["xscale"] == "symlog" else ("log",)),
            **({"linthresh": 1} if panel["xscale"] == "symlog" else {}),
        )
        low = 0 if panel["xscale"] == "symlog" else 1e-300
        ticks = sorted({float(x) for s in panel["series"] for x in s["x"] if x is not None and x >= low})
        if ticks and panel.get("xticks") is None:
            ax.set_xticks(ticks)
            ax.set_xticklabels([f"{t:g}" for t in ticks], fontsize=7)
            ax.minorticks_off()
    if panel.get("xticks") is not None:
        ax.set_xticks(panel["xticks"])
        ax.set_xticklabels(panel.get("xticklabels") or [str(t) for t in panel["xticks"]])
    ax.set(title=panel["title"], xlabel=panel.get("xlabel", ""), ylabel=panel.get("ylabel", ""))
    ax.grid(alpha=0.3, lw=0.5)
    if panel["series"]:
        ax.legend(fontsize=7, loc="best")


def draw(figure: dict, context: str) -> bytes:
    """The figure as PNG bytes: its panels in a grid of at most three columns."""
    plt = _plt()
    panels = figure["panels"] or [{"title": "nothing to show", "series": []}]
    ncols = min(len(panels), 3)
    nrows = math.ceil(len(panels) / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(5.0 * ncols, 3.9 * nrows + 0.8), squeeze=False, layout="constrained"
    )
    groups = list(dict.fromkeys(s.get("group") or s["label"] for p in panels for s in p["series"]))
    colors = dict(zip(groups, _colors(len(groups))))
    for ax, panel in zip(axes.flat, panels):
        _panel(ax, panel, colors)
    for ax in list(axes.flat)[len(panels) :]:
        ax.set_visible(False)
    _suptitle(fig, figure["title"], context)
    return png_bytes(fig)
