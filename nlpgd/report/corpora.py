"""The claims page of a run on several corpora (``corpora:`` in the config).

``claims.md``, ``claims.html`` and ``results.json`` in the run folder: a table of claims (rows)
by corpora (columns), each cell every pair's verdict with its advantage and interval; the
cross-corpus matrix (per matched pair a heat map, ``figures/matrix-<k>.png``, of each member's
score trained on one corpus and tested on each, and of the generative member's advantage in
drop, with the table of drops and their verdicts); then per claim, per corpus, the verdict line,
the claim's figure and its verdict table, each corpus's full reports staying in its folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from nlpgd.io import atomic_write_bytes, atomic_write_text, write_json
from nlpgd.report.claims import anchor, verdict_table
from nlpgd.report.figures import _plt, _suptitle, png_bytes
from nlpgd.report.render import cell, render_html, render_markdown
from nlpgd.report.verdict import effect, primary_of, short_pair
from nlpgd.report.write import json_safe


def _grid(values: list[list]) -> np.ndarray:
    return np.array([[np.nan if v is None else float(v) for v in row] for row in values], dtype=np.float64)


def _heat(ax, values: np.ndarray, names: list[str], title: str, cmap: str, vmin: float, vmax: float) -> None:
    """One panel: trained on (rows) × tested on (columns), each cell's value written in it;
    cells without a value (the advantage's diagonal) grey."""
    import matplotlib

    colors = matplotlib.colormaps[cmap].with_extremes(bad="0.9")
    image = ax.imshow(np.ma.masked_invalid(values), cmap=colors, vmin=vmin, vmax=vmax)
    ax.figure.colorbar(image, ax=ax, shrink=0.8)
    for (i, j), v in np.ndenumerate(values):
        shade = (v - vmin) / (vmax - vmin) if np.isfinite(v) else 0.5
        light = np.isfinite(v) and (cmap == "viridis" and shade < 0.5 or cmap == "RdBu" and abs(shade - 0.5) > 0.35)
        text = f"{v:+.3f}" if cmap == "RdBu" and np.isfinite(v) else f"{v:.3f}" if np.isfinite(v) else "in-domain"
        ax.text(j, i, text, ha="center", va="center", fontsize=8, color="white" if light else "black")
    ax.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
    ax.set_yticks(range(len(names)), names, fontsize=8)
    ax.set(title=title, xlabel="tested on", ylabel="trained on")


def heatmap(pair: dict, names: list[str], metric_label: str, context: str) -> bytes:
    """Three panels: each member's score (trained on × tested on, one colour scale for both) and
    the generative member's advantage in drop (off the diagonal; blue: the generative member
    dropped less, red: the discriminative member did)."""
    plt = _plt()
    members = (pair["generative"], pair["discriminative"])
    scores = [_grid([[None if s is None else s["mean"] for s in row] for row in pair["scores"][m]]) for m in members]
    advantage = _grid(pair["advantage"])
    finite = np.concatenate([s[np.isfinite(s)] for s in scores])
    lo, hi = (float(finite.min()), float(finite.max())) if finite.size else (0.0, 1.0)
    hi = max(hi, lo + 1e-3)
    reach = max(float(np.nanmax(np.abs(advantage))) if np.isfinite(advantage).any() else 0.0, 1e-3)
    fig, axes = plt.subplots(1, 3, figsize=(4.8 * 3, 4.2), squeeze=False, layout="constrained")
    for ax, m, s in zip(axes[0], members, scores):
        _heat(ax, s, names, f"{m}: {metric_label}", "viridis", lo, hi)
    _heat(axes[0][2], advantage, names, f"{members[0]}'s advantage in {metric_label} drop", "RdBu", -reach, reach)
    _suptitle(fig, f"Across corpora: {pair['label']}", context)
    return png_bytes(fig)


def _claim_cell(r: dict, href: str):
    """Every pair's verdict with the favoured member's advantage [interval], per condition."""
    primary = primary_of(r)
    if not primary:
        return cell("no matched pair", None, href)
    parts = [
        f"{short_pair(f['pair'])}{f' ({c})' if (c := f.get('condition')) else ''}: {f['verdict']} {effect(f, 3)}"
        for f in primary
    ]
    verdicts = {f["verdict"] for f in primary}
    return cell("; ".join(parts), verdicts.pop() if len(verdicts) == 1 else None, href)


def _matrix_blocks(found: dict, figures: list[tuple], context: str, tables: list[dict]) -> list:
    blocks: list = [("h", 2, "Across corpora: trained on one, tested on another", "cross-corpus")]
    if not found["pairs"]:
        return [*blocks, ("p", "One corpus only, or no matched pair: there is no cross-corpus matrix.")]
    blocks += [("p", f"Claim: {found['claim']}"), ("p", f"Method: {found['method']}")]
    for k, p in enumerate(found["pairs"]):
        blocks.append(("h", 3, p["label"]))
        png, rel, title = figures[k]
        blocks.append(("figure", png, rel, title, f"{title} — {context}"))
        scores, drops = tables[2 * k], tables[2 * k + 1]
        rows = [[*row[:-1], cell(row[-1], row[-1])] for row in drops["rows"]]  # the verdict, coloured in HTML
        blocks += [("p", drops["title"]), ("table", drops["headers"], rows)]
        blocks.append(("details", scores["title"], [("table", scores["headers"], scores["rows"])]))
    return blocks


def _report_folder(out_dir: Path, folder: str, corpus: str, experiment: str) -> str:
    """Where a corpus's report of ``experiment`` lies: its own folder on a claims page, else the corpus's."""
    own = f"{folder}/{corpus}/{experiment}"
    return own if (out_dir / own).is_dir() else f"{folder}/{corpus}"


def _figure_of(out_dir: Path, base: str, r: dict) -> tuple | None:
    """The claim's first figure as the corpus's report drew it."""
    if not r["figures"]:
        return None
    rel = f"{base}/figures/{r['figures'][0]['name']}.png"
    path = out_dir / rel
    return (path.read_bytes(), rel, r["figures"][0]["title"]) if path.is_file() else None


def _claim_blocks(out_dir: Path, results: dict[str, list[dict]], contexts: dict, folder: str, i: int) -> list:
    first = next(iter(results.values()))[i]
    blocks: list = [("h", 2, first["title"], anchor(first)), ("p", f"Claim: {first['claim']}")]
    for c, rs in results.items():
        r = rs[i]
        blocks += [("h", 3, f"On {c}"), ("p", f"Verdict: {r['verdict']['headline']}.")]
        if r["verdict"].get("warning"):
            blocks.append(("p", r["verdict"]["warning"]))
        base = _report_folder(out_dir, folder, c, r["experiment"])
        if fig := _figure_of(out_dir, base, r):
            blocks.append(("figure", *fig, f"{fig[2]} — {contexts[c]}"))
        blocks += verdict_table(r)
        blocks.append(("p", f"Full report: {base}/report.md."))
        blocks.append(("details", "The verdict in full", [("p", r["verdict"]["text"])]))
    return blocks


def corpora_blocks(out_dir: Path, results: dict, contexts: dict, found: dict, figures: list, tables: list, folder: str):
    """The whole page (see the module's description)."""
    names = list(results)
    first = next(iter(results.values()))
    rows = [
        [cell(r["title"], href=f"#{anchor(r)}"), *(_claim_cell(results[c][i], f"#{anchor(r)}") for c in names)]
        for i, r in enumerate(first)
    ]
    blocks: list = [
        ("h", 1, f"Generative versus discriminative: the claims on {len(names)} corpora"),
        ("ul", [f"{c}: {contexts[c]}" for c in names]),
        ("table", ["claim", *names], rows),
        (
            "p",
            "Each cell: every matched pair's verdict on that corpus, with the favoured member's advantage (mean over "
            "seeds [95% interval]); each corpus is analysed as a run on it alone would be (its own Holm correction, "
            f"its notes and every table in its folder {folder}/NAME). The cross-corpus matrix follows.",
        ),
    ]
    blocks += _matrix_blocks(found, figures, "; ".join(contexts.values()), tables)
    for i in range(len(first)):
        blocks += _claim_blocks(out_dir, results, contexts, folder, i)
    return blocks


def write_corpora_page(out_dir: Path, results: dict, contexts: dict, found: dict, tables: list, folder: str) -> Path:
    """The page, its heat maps and ``results.json`` in ``out_dir``; returns ``claims.md``'s path.
    ``results``: ``{corpus: [each experiment's results.json form]}``; ``found``: the matrix
    (:func:`nlpgd.experiments.claims.matrix.analyse`) and ``tables`` its tables (two per pair:
    scores, drops)."""
    out_dir = Path(out_dir)
    context = "; ".join(contexts.values())
    figures = []
    for k, p in enumerate(found["pairs"]):
        png = heatmap(p, found["corpora"], found["metric_label"], context)
        rel = f"figures/matrix-{k + 1}.png"
        atomic_write_bytes(out_dir / rel, png)
        figures.append((png, rel, f"{found['metric_label']} across corpora: {p['label']}"))
    blocks = corpora_blocks(out_dir, results, contexts, found, figures, tables, folder)
    atomic_write_text(out_dir / "claims.md", render_markdown(blocks))
    atomic_write_text(out_dir / "claims.html", render_html(blocks, f"Claims on {len(results)} corpora"))
    claims = [
        {k: r.get(k) for k in ("experiment", "title", "claim", "metric", "key_numbers", "wall_seconds")}
        | {"corpus": c, "verdict": r["verdict"], "findings": primary_of(r)}
        for i in range(len(next(iter(results.values()))))
        for c, rs in results.items()
        for r in [rs[i]]
    ]
    summary = {"corpora": contexts, "folder": folder, "claims": claims, "matrix": {**found, "tables": tables}}
    write_json(out_dir / "results.json", json_safe(summary))
    return out_dir / "claims.md"
