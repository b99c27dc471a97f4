"""Blocks to Markdown and to a self-contained HTML page, and how numbers are written.

A report is a list of blocks: ``("h", level, text)`` (or ``("h", level, text, anchor)``: a
heading others link to as ``#anchor``), ``("p", text)``, ``("ul", items)``, ``("table",
headers, rows)``, ``("figure", png bytes, relative path, alt text, caption)`` and ``("details",
summary, blocks)`` (blocks folded under a one-line summary: ``<details>`` in HTML and in
Markdown). A table cell is a value, or a :func:`cell`: text with a verdict (coloured in HTML)
and a link.
"""

from __future__ import annotations

import base64
import html
import math

from nlpgd.report.load import split_files

# -- numbers and values -------------------------------------------------------------------


def _num(v, digits=4, pct=False) -> str:
    """``digits`` decimals; a negative ``digits`` means that many significant digits."""
    if v is None:
        return "n/a"
    if digits < 0:
        return f"{v:.{-digits}g}"
    return f"{100 * v:.{max(digits - 2, 0)}f}%" if pct else f"{v:.{digits}f}"


def fmt_stat(st: dict | None, digits: int = 4, pct: bool = False, ci: bool = True) -> str:
    """``mean ± sd [lo, hi]`` (the ± part only with several seeds, the interval only if known)."""
    if not st or st.get("mean") is None:
        return "n/a"
    s = _num(st["mean"], digits, pct)
    if st.get("std") is not None:
        s += f" ± {_num(st['std'], digits, pct)}"
    if ci and st.get("ci_low") is not None:
        s += f" [{_num(st['ci_low'], digits, pct)}, {_num(st['ci_high'], digits, pct)}]"
    return s


def fmt_threshold(st: dict) -> str:
    """Thresholds per seed; values next to 0 or 1 are shown by their distance from it."""

    def one(v):
        if v is None:
            return "n/a"
        if v == -math.inf:
            return "-inf (all blocked)"
        if 0.9999 <= v < 1:
            return f"1 − {1 - v:.1e}"
        if 0 < v < 1e-4:
            return f"{v:.1e}"
        return f"{v:.4f}"

    return ", ".join(one(v) for v in st["per_seed"].values())


def fmt_p(p: float) -> str:
    return "n/a" if p is None else (f"{p:.2e}" if p < 1e-4 else f"{p:.4f}")


def fmt_big(v) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, list):
        return " / ".join(fmt_big(x) for x in v)
    return f"{int(v):,}"


def fmt_where(where) -> str:
    """Where the data came from: a path or name as recorded, or ``train: a.csv, test: b.csv``."""
    files = split_files(where)
    if files is None:
        return str(where)
    return ", ".join(f"{split}: {path}" for split, path in files.items())


# -- Markdown -----------------------------------------------------------------------------


def _md(text) -> str:
    """Text (data texts, ids and paths among it) made inert in Markdown, as :func:`_h` makes it
    in HTML: no tag (``<script>``) or entity a renderer that allows HTML would act on, and no
    link (``[x](javascript:...)``)."""
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace("](", "]\\(")


def cell(text, verdict: str | None = None, href: str | None = None) -> dict:
    """A table cell with a verdict (``held``, ``did not hold``, ``equivalent``, ``inconclusive``:
    its colour in HTML) and a link to an anchor of the page (``#anchor``, made by nlpgd)."""
    return {"text": str(text), "verdict": verdict, "href": href}


def _md_cell(v) -> str:
    if isinstance(v, dict):
        text = _md_cell(v["text"])
        return f"[{text}]({v['href']})" if v.get("href") else text
    return _md(v).replace("|", "\\|").replace("\n", " ")


def render_markdown(blocks: list) -> str:
    """The blocks as Markdown (text made inert, see :func:`_md`; ``|`` in table cells escaped;
    figures linked by relative path)."""
    out: list[str] = []
    for b in blocks:
        kind = b[0]
        if kind == "h":
            if len(b) > 3:
                out += [f'<a id="{b[3]}"></a>', ""]
            out += ["#" * min(b[1], 6) + " " + _md(b[2]), ""]
        elif kind == "details":
            out += [f"<details><summary>{_md(b[1])}</summary>", "", render_markdown(b[2]), "</details>", ""]
        elif kind == "p":
            out += [_md(b[1]), ""]
        elif kind == "ul":
            out += [f"- {_md(item)}" for item in b[1]] + [""]
        elif kind == "table":
            headers, rows = b[1], b[2]
            out.append("| " + " | ".join(_md_cell(h) for h in headers) + " |")
            out.append("|" + "---|" * len(headers))
            out += ["| " + " | ".join(_md_cell(c) for c in r) + " |" for r in rows]
            out.append("")
        elif kind == "figure":
            out += [f"![{_md(b[3])}]({b[2]})", "", f"*{_md(b[4])}*", ""]
        else:
            raise ValueError(f"unknown block kind {kind!r}")
    return "\n".join(out).rstrip() + "\n"


# -- HTML ---------------------------------------------------------------------------------


def _h(text) -> str:
    # escaped text; "://" is broken up so no URL-looking text (e.g. a data source) appears in the page
    return html.escape(str(text)).replace("://", "&#58;//")


CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;max-width:1200px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
table{border-collapse:collapse;margin:0.5em 0 1.2em;font-size:0.85em}
th,td{border:1px solid #ccc;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f2f2f2} tr:nth-child(even) td{background:#fafafa}
figure{margin:1em 0 2em} figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:0.85em;color:#555} li{margin:0.2em 0}
td.v-held{background:#d9f2d9} td.v-did-not-hold{background:#f7d4d4} td.v-equivalent{background:#dbe8f7}
td.v-inconclusive{background:#eeeeee} td a{color:inherit}
details{margin:0.5em 0 1.5em} summary{cursor:pointer;font-weight:600}
"""


def _td(c) -> str:
    if not isinstance(c, dict):
        return f"<td>{_h(c)}</td>"
    text = f'<a href="{_h(c["href"])}">{_h(c["text"])}</a>' if c.get("href") else _h(c["text"])
    cls = f' class="v-{c["verdict"].replace(" ", "-")}"' if c.get("verdict") else ""
    return f"<td{cls}>{text}</td>"


def _html_block(b) -> str:
    kind = b[0]
    if kind == "h":
        n = min(b[1], 6)
        anchor = f' id="{_h(b[3])}"' if len(b) > 3 else ""
        return f"<h{n}{anchor}>{_h(b[2])}</h{n}>"
    if kind == "details":
        inner = "\n".join(_html_block(x) for x in b[2])
        return f"<details><summary>{_h(b[1])}</summary>\n{inner}\n</details>"
    if kind == "p":
        return f"<p>{_h(b[1])}</p>"
    if kind == "ul":
        return "<ul>" + "".join(f"<li>{_h(i)}</li>" for i in b[1]) + "</ul>"
    if kind == "table":
        head = "<table><thead><tr>" + "".join(f"<th>{_h(c)}</th>" for c in b[1]) + "</tr></thead><tbody>"
        rows = ["<tr>" + "".join(_td(c) for c in r) + "</tr>" for r in b[2]]
        return "\n".join([head, *rows, "</tbody></table>"])
    if kind == "figure":
        data = base64.b64encode(b[1]).decode("ascii")
        return (
            f'<figure><img alt="{_h(b[3])}" src="data:image/png;base64,{data}">'
            f"<figcaption>{_h(b[4])}</figcaption></figure>"
        )
    raise ValueError(f"unknown block kind {kind!r}")


def render_html(blocks: list, title: str) -> str:
    """A self-contained page: inline CSS, figures as base64 data URIs, no external reference."""
    head = ["<!DOCTYPE html>", '<html lang="en">', "<head>", '<meta charset="utf-8">', f"<title>{_h(title)}</title>"]
    out = [*head, f"<style>{CSS}</style>", "</head>", "<body>"]
    out += [_html_block(b) for b in blocks]
    out += ["</body>", "</html>", ""]
    return "\n".join(out)
