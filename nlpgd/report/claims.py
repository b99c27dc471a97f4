"""Reports of the claims experiments: one per experiment, and the claims page.

An experiment's results (built by :mod:`nlpgd.experiments.claims`) hold its claim, its verdict
(label and paragraph, generated from the numbers by :mod:`nlpgd.report.verdict`), tables of
formatted numbers and figure descriptions. This module turns them into report blocks
(:mod:`nlpgd.report.render`), PNG figures (:mod:`nlpgd.report.curves`) and files, all through
:mod:`nlpgd.io`:

- :func:`write_experiment_report`: ``report.md``, self-contained ``report.html``,
  ``results.json``, ``verdict.md`` (the verdict line and paragraph) and ``figures/*.png``;
- :func:`write_claims_page`: ``claims.md`` and ``claims.html``: a summary table (claim × pair,
  verdict words linking to the sections), then per claim the one-line verdict, the figure and
  the verdict table (pairs × conditions), with the paragraph and every comparison folded.
"""

from __future__ import annotations

from pathlib import Path

from nlpgd.io import atomic_write_bytes, atomic_write_text, ensure_dir, write_json
from nlpgd.report.curves import draw
from nlpgd.report.render import cell, render_html, render_markdown
from nlpgd.report.verdict import VERDICTS, effect, grid, num, primary_of, short_pair
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


def _verdict_blocks(result: dict, level: int, anchor: str | None = None) -> list:
    """The title, the claim, the one-line verdict and its warning."""
    v = result["verdict"]
    title = ("h", level, result["title"], anchor) if anchor else ("h", level, result["title"])
    blocks = [title, ("p", f"Claim: {result['claim']}"), ("p", f"Verdict: {v['headline']}.")]
    if v.get("warning"):
        blocks.append(("p", v["warning"]))
    return blocks


def _table_blocks(table: dict, level: int) -> list:
    blocks: list = [("h", level, table["title"])]
    if table.get("text"):
        blocks.append(("p", table["text"]))
    if table["rows"]:
        blocks.append(("table", table["headers"], table["rows"]))
    else:
        blocks.append(("p", "Nothing to show."))
    return blocks


def _verdict_cell(f: dict | None) -> dict | str:
    if f is None:
        return "n/a"
    dagger = " †" if (f.get("holm") or {}).get("survives") is False else ""
    return cell(f"{f['verdict']}{dagger}: {effect(f)}", f["verdict"])


def verdict_table(result: dict) -> list:
    """The small table under a claim: pairs × conditions, each cell the verdict and the favoured
    member's advantage with its interval (coloured by verdict in HTML)."""
    primary = primary_of(result)
    if not primary:
        return [("p", "No matched pair was compared.")]
    columns, rows = grid(primary)
    f0 = primary[0]
    favoured = ", ".join(dict.fromkeys(f["favoured"] for f in primary))
    caption = (
        f"Each cell: the verdict and the advantage in {f0['metric_label']} of the member the claim favours "
        f"({favoured}), mean over seeds [95% interval]; equivalent means inside ± {num(f0['margin'])}."
    )
    if any((f.get("holm") or {}).get("survives") is False for f in primary):
        caption += " † does not survive the Holm correction across the page."
    return [
        ("table", ["pair", *columns], [[pair, *(_verdict_cell(f) for f in cells)] for pair, cells in rows]),
        ("p", caption),
    ]


def _details(result: dict, context: str, level: int) -> list:
    """What stays folded: the verdict paragraph, method, notes and every table."""
    blocks: list = [
        ("p", result["verdict"]["text"]),
        ("p", f"Computed on: {context}."),
        ("p", f"Method: {result['method']}"),
    ]
    if result.get("wall_seconds") is not None:
        blocks.append(("p", f"Wall time: {result['wall_seconds']:.0f} s."))
    if result["notes"]:
        blocks.append(("ul", [f"Note: {n}" for n in result["notes"]]))
    for table in result["tables"]:
        blocks += _table_blocks(table, level + 1)
    return blocks


def experiment_blocks(result: dict, figures: list[tuple], context: str, level: int = 1) -> list:
    """The report of one experiment: the verdict line, the figures, the verdict table, then the
    paragraph, method, notes and every table, folded."""
    blocks = _verdict_blocks(result, level)
    for png, rel, title in figures:
        blocks.append(("figure", png, rel, title, f"{title} — {context}"))
    blocks += verdict_table(result)
    if result.get("holm"):
        blocks.append(("p", result["holm"]["text"]))
    blocks.append(("details", "The verdict in full, the method and every comparison", _details(result, context, level)))
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
    verdict_md = [*_verdict_blocks(result, 1), ("p", result["verdict"]["text"])]
    atomic_write_text(out_dir / "verdict.md", render_markdown(verdict_md))
    write_json(out_dir / "results.json", json_safe(result))
    return figures


def anchor(result: dict) -> str:
    return f"claim-{result['experiment']}"


def summary_table(results: list[dict]) -> tuple[list[str], list[list]]:
    """Claim × pair, the verdict words only, each linking to its claim's section."""
    pairs = list(dict.fromkeys(short_pair(p) for r in results for p in r["verdict"].get("by_pair", {})))
    rows = []
    for r in results:
        words = {
            short_pair(p): " / ".join(dict.fromkeys(c.values())) for p, c in r["verdict"].get("by_pair", {}).items()
        }
        href = f"#{anchor(r)}"
        row = [cell(r["title"], href=href)]
        for p in pairs:
            w = words.get(p)
            row.append(cell(w, w if w in VERDICTS else None, href) if w else "—")
        rows.append(row)
    return ["claim", *pairs], rows


def claims_blocks(
    results: list[dict], figures: dict[str, list[tuple]], context: str, notes: list[str], tables=()
) -> list:
    """The claims page: one summary table (claim × pair), ``tables`` (what differs within each
    pair), then per claim the verdict line, the figure and the verdict table, with every
    comparison folded."""
    headers, rows = summary_table(results)
    blocks: list = [
        ("h", 1, "Generative versus discriminative: the claims, tested"),
        ("p", f"Computed on: {context}."),
        ("table", headers, rows),
        (
            "p",
            "Each verdict compares the members of a matched pair (trained on identical data) on the metric it "
            "names: the favoured member's advantage, averaged over training seeds, with a 95% interval that holds "
            "both the seed-to-seed variation and the sampling of the test messages. Held: the interval lies above "
            "0; did not hold: below 0; equivalent: inside the metric's margin (a difference too small to matter); "
            "inconclusive: none of these. Wall time is the new work of each experiment in this run.",
        ),
    ]
    if results and results[0].get("holm"):
        blocks.append(("p", results[0]["holm"]["text"]))
    if notes:
        blocks.append(("ul", [f"Note: {n}" for n in notes]))
    for table in tables:
        blocks += _table_blocks(table, 2)
    for r in results:
        blocks += _verdict_blocks(r, 2, anchor(r))
        for png, rel, title in figures.get(r["experiment"], [])[:1]:
            blocks.append(("figure", png, rel, title, f"{title} — {context}"))
        blocks += verdict_table(r)
        wall = "" if r.get("wall_seconds") is None else f" Wall time {r['wall_seconds']:.0f} s."
        blocks.append(("p", f"Full report: {r['experiment']}/report.md.{wall}"))
        folded = [("p", r["verdict"]["text"])]
        folded += (
            _table_blocks(
                next((t for t in r["tables"] if t["title"].startswith("Every comparison")), r["tables"][0]), 3
            )
            if r["tables"]
            else []
        )
        blocks.append(("details", "The verdict in full and every comparison behind it", folded))
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
        "holm": results[0].get("holm") if results else None,
        "tables": list(tables),
        "claims": [
            {k: r.get(k) for k in ("experiment", "title", "claim", "metric", "key_numbers", "wall_seconds")}
            | {"verdict": r["verdict"], "findings": primary_of(r)}
            for r in results
        ],
    }
    write_json(out_dir / "results.json", json_safe(summary))
    return out_dir / "claims.md"
