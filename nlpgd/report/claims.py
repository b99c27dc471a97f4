"""Reports of the claims experiments: one per experiment, and the claims page.

An experiment's results (built by :mod:`nlpgd.experiments.claims`) hold its claim, its verdict
(label and paragraph, generated from the numbers by :mod:`nlpgd.report.verdict`), tables of
formatted numbers and figure descriptions. This module turns them into report blocks
(:mod:`nlpgd.report.render`), PNG figures (:mod:`nlpgd.report.curves`) and files, all through
:mod:`nlpgd.io`:

- :func:`write_experiment_report`: ``report.md``, self-contained ``report.html``,
  ``results.json``, ``verdict.md`` (the verdict paragraph) and ``figures/*.png``;
- :func:`write_claims_page`: ``claims.md`` and ``claims.html``: per claim the claim in one
  sentence, the verdict, the numbers behind it and the figure, after a table of all verdicts.
"""

from __future__ import annotations

from pathlib import Path

from nlpgd.io import atomic_write_bytes, atomic_write_text, ensure_dir, write_json
from nlpgd.report.curves import draw
from nlpgd.report.render import render_html, render_markdown
from nlpgd.report.write import json_safe


def _figures(result: dict, out_dir: Path, context: str, prefix: str = "") -> list[tuple]:
    """Draw every figure of ``result`` into ``out_dir/figures``; ``(png, relative path, title)``."""
    out = []
    for fig in result["figures"]:
        png = draw(fig, context)
        path = out_dir / "figures" / f"{fig['name']}.png"
        atomic_write_bytes(path, png)
        out.append((png, f"{prefix}figures/{fig['name']}.png", fig["title"]))
    return out


def _verdict_blocks(result: dict, level: int) -> list:
    v = result["verdict"]
    return [
        ("h", level, result["title"]),
        ("p", f"Claim: {result['claim']}"),
        ("p", v["text"]),
    ]


def _table_blocks(table: dict, level: int) -> list:
    blocks: list = [("h", level, table["title"])]
    if table.get("text"):
        blocks.append(("p", table["text"]))
    if table["rows"]:
        blocks.append(("table", table["headers"], table["rows"]))
    else:
        blocks.append(("p", "Nothing to show."))
    return blocks


def experiment_blocks(result: dict, figures: list[tuple], context: str, level: int = 1) -> list:
    """The full report of one experiment."""
    blocks = _verdict_blocks(result, level)
    blocks.append(("p", f"Computed on: {context}."))
    blocks.append(("p", f"Method: {result['method']}"))
    if result.get("wall_seconds") is not None:
        blocks.append(("p", f"Wall time: {result['wall_seconds']:.0f} s."))
    if result["notes"]:
        blocks.append(("ul", [f"Note: {n}" for n in result["notes"]]))
    for table in result["tables"]:
        blocks += _table_blocks(table, level + 1)
    blocks.append(("h", level + 1, "Figures"))
    for png, rel, title in figures:
        blocks.append(("figure", png, rel, title, f"{title} — {context}"))
    return blocks


def write_experiment_report(out_dir: Path, result: dict, context: str, title: str) -> Path:
    """Every file of one experiment's report in ``out_dir``; returns the path of ``report.md``."""
    _write_experiment(Path(out_dir), result, context, title)
    return Path(out_dir) / "report.md"


def _write_experiment(out_dir: Path, result: dict, context: str, title: str) -> list[tuple]:
    out_dir = ensure_dir(out_dir)
    figures = _figures(result, out_dir, context)
    result = {**result, "context": context, "figure_files": [rel for _, rel, _ in figures]}
    blocks = experiment_blocks(result, figures, context)
    atomic_write_text(out_dir / "report.md", render_markdown(blocks))
    atomic_write_text(out_dir / "report.html", render_html(blocks, title))
    atomic_write_text(out_dir / "verdict.md", render_markdown(_verdict_blocks(result, 1)))
    write_json(out_dir / "results.json", json_safe(result))
    return figures


def _summary_row(r: dict) -> list:
    wall = r.get("wall_seconds")
    return [
        r["title"],
        r["claim"],
        r["verdict"]["label"],
        ", ".join(r["verdict"]["metric"]) or "n/a",
        r["key_numbers"],
        "n/a" if wall is None else f"{wall:.0f}",
    ]


def claims_blocks(
    results: list[dict], figures: dict[str, list[tuple]], context: str, notes: list[str], tables=()
) -> list:
    """The claims page: the verdict table, ``tables`` (what differs within each pair), then one
    section per claim."""
    blocks: list = [
        ("h", 1, "Generative versus discriminative: the claims, tested"),
        ("p", f"Computed on: {context}."),
        (
            "p",
            "Each verdict compares the members of each matched pair (trained on identical data) on the metric it "
            "names, with a 95% two-level bootstrap interval (training seeds, then test messages) of the favoured "
            "member's advantage: held when the interval lies above 0, did not hold when below, inconclusive when "
            "it includes 0, mixed when pairs or parts of the claim disagree. Wall time is the new work of each "
            "experiment in this run (fits shared with an earlier experiment are not counted twice).",
        ),
        (
            "table",
            ["experiment", "claim", "verdict", "metric", "key numbers", "wall s"],
            [_summary_row(r) for r in results],
        ),
    ]
    if notes:
        blocks.append(("ul", [f"Note: {n}" for n in notes]))
    for table in tables:
        blocks += _table_blocks(table, 2)
    for r in results:
        blocks += _verdict_blocks(r, 2)
        if r["tables"]:
            blocks += _table_blocks(r["tables"][0], 3)
        for png, rel, title in figures.get(r["experiment"], [])[:1]:
            blocks.append(("figure", png, rel, title, f"{title} — {context}"))
        blocks.append(("p", f"Full report: {r['experiment']}/report.md"))
    return blocks


def write_claims_page(out_dir: Path, results: list[dict], context: str, notes: list[str], tables=()) -> Path:
    """Each experiment's report in ``out_dir/<experiment>/`` and the claims page in ``out_dir``
    (``claims.md``, ``claims.html``, ``results.json``); returns the path of ``claims.md``."""
    out_dir = ensure_dir(Path(out_dir))
    figures = {}
    for r in results:
        drawn = _write_experiment(out_dir / r["experiment"], r, context, f"{r['title']} — {context}")
        figures[r["experiment"]] = [(png, f"{r['experiment']}/{rel}", title) for png, rel, title in drawn]
    blocks = claims_blocks(results, figures, context, notes, tables)
    atomic_write_text(out_dir / "claims.md", render_markdown(blocks))
    atomic_write_text(out_dir / "claims.html", render_html(blocks, f"Claims — {context}"))
    summary = {
        "context": context,
        "notes": notes,
        "tables": list(tables),
        "claims": [
            {k: r.get(k) for k in ("experiment", "title", "claim", "metric", "key_numbers", "wall_seconds")}
            | {"verdict": r["verdict"]}
            for r in results
        ],
    }
    write_json(out_dir / "results.json", json_safe(summary))
    return out_dir / "claims.md"
