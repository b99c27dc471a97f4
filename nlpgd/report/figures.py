"""Report figures (matplotlib, Agg backend, PNG) from saved test predictions.

:func:`render_figures` draws the figures of a report one by one as PNG bytes; the caller
decides where they go. Every figure is titled with what it was computed on (experiment,
data set, split sizes, seeds), so a smoke run cannot be mistaken for a result. Inputs are
plain arrays: ``y`` (0/1 test labels, 1 = spam) and, per model, P(spam) of shape ``(S, n)``
(one row per seed, all on the same ``n`` test messages).
"""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Iterator

import numpy as np

from nlpgd.io import atomic_write_bytes
from nlpgd.stats import reliability_bins

DPI = 100
FIGURES = {
    "roc": "ROC curves",
    "pr": "Precision-recall curves",
    "reliability": "Reliability diagrams",
    "confusion": "Confusion matrices",
    "scores": "Score histograms",
    "continuum": "The generative-discriminative continuum",
}
CONTINUUM_PANELS = (
    ("f1", "test spam F1"),
    ("log_loss", "test log loss"),
    ("ece", "test ECE"),
    ("label_fidelity", "samples called {label} by naive Bayes"),
    ("distinct_2", "distinct-2 of the samples"),
)


def _plt():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _colors(n: int) -> list:
    import matplotlib

    cmap = matplotlib.colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def library() -> str:
    """What draws the figures, for ``results.json``."""
    import matplotlib

    return f"matplotlib {matplotlib.__version__} (Agg)"


def png_bytes(fig) -> bytes:
    """``fig`` as PNG (no metadata, so the file carries no URLs); closes the figure."""
    plt = _plt()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None})
    plt.close(fig)
    return buf.getvalue()


def save_png(fig, path: Path) -> Path:
    """Write ``fig`` as PNG atomically (see :func:`png_bytes`) and close it."""
    atomic_write_bytes(path, png_bytes(fig))
    return Path(path)


def _grid(plt, n: int, title: str, context: str, cell=(4.2, 3.6)):
    ncols = min(n, 3)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(
        nrows, ncols, figsize=(cell[0] * ncols, cell[1] * nrows + 0.7), squeeze=False, layout="constrained"
    )
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    _suptitle(fig, title, context)
    return fig, list(axes.flat[:n])


def _suptitle(fig, title: str, context: str) -> None:
    # every figure uses layout="constrained", which keeps this two-line title clear of the axes
    fig.suptitle(f"{title}\n{context}", fontsize=9)


def _seed_label(seeds) -> str:
    return "seed " + str(seeds[0]) if len(seeds) == 1 else f"{len(seeds)} seeds, one line each"


def roc_figure(y, probs: dict, seeds, context: str):
    """ROC curves of every model on one axis (one line per seed), with a zoom on low ham rates."""
    from sklearn.metrics import roc_auc_score, roc_curve

    plt = _plt()
    fig, (ax, zoom) = plt.subplots(1, 2, figsize=(11, 4.8), layout="constrained")
    _suptitle(fig, f"ROC, test split ({_seed_label(seeds)})", context)
    both = len(np.unique(y)) == 2
    for (name, P), color in zip(probs.items(), _colors(len(probs))):
        aucs = [roc_auc_score(y, p) for p in P] if both else []
        label = f"{name} (AUC {np.mean(aucs):.4f})" if aucs else name
        for s, p in enumerate(P):
            if not both:
                break
            fpr, tpr, _ = roc_curve(y, p)
            kw = dict(color=color, lw=1.4 if s == 0 else 0.8, alpha=1.0 if s == 0 else 0.5)
            ax.plot(fpr, tpr, label=label if s == 0 else None, **kw)
            zoom.plot(fpr, tpr, label=label if s == 0 else None, **kw)
    ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8, label="chance")
    for target, ls in ((0.001, "--"), (0.01, "-.")):
        zoom.axvline(target, color="grey", ls=ls, lw=0.8, label=f"{target:.1%} ham blocked")
    for a, right, title in ((ax, 1, "full range"), (zoom, 0.05, "zoom: at most 5% ham blocked")):
        a.set(
            xlim=(0, right),
            ylim=(0, 1.01),
            xlabel="ham blocked (false positive rate)",
            ylabel="spam caught (true positive rate)",
            title=title,
        )
    ax.legend(loc="lower right", fontsize=8)
    zoom.legend(loc="lower right", fontsize=8)
    if not both:
        ax.text(0.5, 0.5, "undefined: the test split has one class", ha="center")
    return fig


def pr_figure(y, probs: dict, seeds, context: str):
    """Precision-recall curves of every model on one axis (one line per seed)."""
    from sklearn.metrics import average_precision_score, precision_recall_curve

    plt = _plt()
    fig, ax = plt.subplots(figsize=(6.5, 5.2), layout="constrained")
    _suptitle(fig, f"Precision-recall, test split ({_seed_label(seeds)})", context)
    both = len(np.unique(y)) == 2
    for (name, P), color in zip(probs.items(), _colors(len(probs))):
        if not both:
            break
        aps = [average_precision_score(y, p) for p in P]
        for s, p in enumerate(P):
            prec, rec, _ = precision_recall_curve(y, p)
            ax.step(
                rec,
                prec,
                where="post",
                color=color,
                lw=1.4 if s == 0 else 0.8,
                alpha=1.0 if s == 0 else 0.5,
                label=f"{name} (AP {np.mean(aps):.4f})" if s == 0 else None,
            )
    prevalence = float(np.mean(y)) if len(y) else 0.0
    ax.axhline(prevalence, ls=":", color="grey", lw=0.8, label=f"chance (spam share {prevalence:.3f})")
    ax.set(xlim=(0, 1), ylim=(0, 1.02), xlabel="recall (spam caught)", ylabel="precision (spam among blocked)")
    ax.legend(loc="lower left", fontsize=8)
    return fig


def reliability_figure(y, probs: dict, calibrated: dict, seeds, context: str, n_bins: int = 10):
    """Reliability diagram per model, before and after temperature scaling (seeds pooled)."""
    plt = _plt()
    title = f"Reliability, test split (seeds pooled; {n_bins} equal-width bins; marker area ~ messages per bin)"
    fig, axes = _grid(plt, len(probs), title, context)
    yy = np.tile(y, len(seeds))
    for ax, (name, P), color in zip(axes, probs.items(), _colors(len(probs))):
        ax.plot([0, 1], [0, 1], ls=":", color="grey", lw=0.8, label="perfect calibration")
        for arr, style, what in ((P, "-o", "as saved"), (calibrated.get(name), "--s", "temperature-scaled")):
            if arr is None:
                continue
            r = reliability_bins(yy, np.ravel(arr), n_bins)
            alpha = 1.0 if what == "as saved" else 0.6
            ax.plot(r["mean_predicted"], r["fraction_spam"], style[0:-1], color=color, lw=1.2, alpha=alpha, label=what)
            # marker area grows with the number of messages in the bin
            ax.scatter(
                r["mean_predicted"],
                r["fraction_spam"],
                s=8 + 120 * np.sqrt(np.array(r["count"]) / len(yy)),
                marker=style[-1],
                color=color,
                alpha=alpha,
                zorder=3,
            )
        ax.set(xlim=(0, 1), ylim=(0, 1), xlabel="mean predicted P(spam)", ylabel="fraction spam", title=name)
        ax.legend(loc="upper left", fontsize=7)
    return fig


def confusion_figure(y, probs: dict, seeds, context: str, threshold: float = 0.5):
    """Confusion matrix per model at the 0.5 threshold (mean over seeds)."""
    plt = _plt()
    fig, axes = _grid(
        plt,
        len(probs),
        f"Confusion matrices, test split, threshold {threshold} "
        f"({'mean over ' + str(len(seeds)) + ' seeds' if len(seeds) > 1 else 'seed ' + str(seeds[0])})",
        context,
        cell=(3.6, 3.4),
    )
    y = np.asarray(y).astype(int)
    for ax, (name, P) in zip(axes, probs.items()):
        cms = []
        for p in P:
            pred = (p > threshold).astype(int)
            cms.append([[np.sum((y == t) & (pred == q)) for q in (0, 1)] for t in (0, 1)])
        cm = np.mean(cms, axis=0)
        ax.imshow(cm, cmap="Blues", vmin=0)
        for t in (0, 1):
            for q in (0, 1):
                txt = f"{cm[t, q]:.0f}" if len(seeds) == 1 else f"{cm[t, q]:.1f}"
                ax.text(
                    q,
                    t,
                    txt,
                    ha="center",
                    va="center",
                    color="white" if cm[t, q] > cm.max() / 2 else "black",
                    fontsize=11,
                )
        ax.set(
            xticks=[0, 1],
            yticks=[0, 1],
            xticklabels=["ham", "spam"],
            yticklabels=["ham", "spam"],
            xlabel="predicted",
            ylabel="true",
            title=name,
        )
    return fig


def score_histogram_figure(y, probs: dict, seeds, context: str, n_bins: int = 25):
    """Histogram of P(spam) per true class, per model (seeds pooled, log count axis)."""
    plt = _plt()
    fig, axes = _grid(plt, len(probs), "Score histograms per class, test split (seeds pooled)", context)
    yy = np.tile(np.asarray(y).astype(bool), len(seeds))
    edges = np.linspace(0, 1, n_bins + 1)
    for ax, (name, P) in zip(axes, probs.items()):
        p = np.ravel(P)
        ax.hist(p[~yy], bins=edges, alpha=0.6, color="tab:blue", label=f"ham (n={int((~yy).sum())})")
        ax.hist(p[yy], bins=edges, alpha=0.6, color="tab:red", label=f"spam (n={int(yy.sum())})")
        ax.axvline(0.5, color="grey", ls=":", lw=0.8, label="threshold 0.5")
        ax.set_yscale("log")
        ax.set(xlim=(0, 1), xlabel="P(spam)", ylabel="messages (log scale)", title=name)
        ax.legend(loc="upper center", fontsize=7)
    return fig


def continuum_figure(continuum: dict, seeds, context: str):
    """Each metric against the discriminative share of the loss, dw / (gw + dw): one dot per
    seed, the mean with ± one standard deviation over seeds."""
    plt = _plt()
    points = continuum["points"]
    fig, axes = _grid(plt, len(CONTINUUM_PANELS), "Generative-discriminative continuum (test split; samples)", context)
    x = np.array([p["share"] for p in points], dtype=float)
    ticks = [f"{p['share']:.2f}\n{p['model']}" for p in points]
    for ax, (key, label) in zip(axes, CONTINUUM_PANELS):
        label = label.format(label=continuum.get("label") or "the label")
        stats = [p.get(key) or {} for p in points]
        per_seed = [[v for v in (st.get("per_seed") or {}).values() if v is not None] for st in stats]
        for xi, vals in zip(x, per_seed):
            ax.scatter([xi] * len(vals), vals, s=14, color="tab:blue", alpha=0.5, zorder=2)
        mean = np.array([np.nan if st.get("mean") is None else st["mean"] for st in stats])
        sd = np.array([st.get("std") or 0.0 for st in stats])
        ax.errorbar(x, mean, yerr=sd, color="tab:red", marker="o", capsize=3, lw=1.2, label="mean ± sd over seeds")
        if np.all(np.isnan(mean)):
            ax.text(0.5, 0.5, "not recorded", ha="center", va="center", transform=ax.transAxes, color="grey")
        ax.set_xticks(x, ticks, fontsize=6)
        ax.set(xlabel="discriminative share dw / (gw + dw)", ylabel=label, title=label)
        ax.legend(loc="best", fontsize=7)
    return fig


def render_figures(
    y, probs: dict, calibrated: dict, seeds, context: str, continuum: dict | None = None, log_odds: dict | None = None
) -> Iterator[tuple[str, bytes]]:
    """Every report figure as ``(name, PNG bytes)``, in the order of :data:`FIGURES`, each drawn
    only when the previous one has been taken; the continuum only when ``continuum`` is given.
    The ROC and PR curves rank ``log_odds`` when given (P(spam) ties everything past log-odds 37)."""
    y = np.asarray(y).astype(int)
    ranked = probs if log_odds is None else log_odds
    figs = {
        "roc": lambda: roc_figure(y, ranked, seeds, context),
        "pr": lambda: pr_figure(y, ranked, seeds, context),
        "reliability": lambda: reliability_figure(y, probs, calibrated, seeds, context),
        "confusion": lambda: confusion_figure(y, probs, seeds, context),
        "scores": lambda: score_histogram_figure(y, probs, seeds, context),
    }
    if continuum:
        figs["continuum"] = lambda: continuum_figure(continuum, seeds, context)
    for name, make in figs.items():
        yield name, png_bytes(make())
