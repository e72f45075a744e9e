"""Self-contained HTML pages: the sortable leaderboard (results/leaderboard.html) and one
page per model (results/{model}/summary.html, the model card for Snakemake's report).

A page needs no network to be viewed: styles and the sorting script are inline and the
benchmark plots are embedded as base64 PNG. The content is the same blocks the Markdown
card is rendered from (:func:`npu_adapt.reports.card_blocks`).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from npu_adapt.reports import (
    LEADERBOARD_COLUMNS,
    STATUS_MEANING,
    STATUS_ORDER,
    Code,
    Heading,
    Image,
    Link,
    Table,
    Text,
    card_blocks,
    leaderboard_cells,
    ranked,
)

# Leaderboard columns sorted as numbers (the others as text; status by its rank).
NUMERIC_COLUMNS = {
    "params_m",
    "rel_l2",
    "cosine",
    "max_abs_diff",
    "mean_abs_diff",
    "top1_match",
    "top5_match",
    "latency_p50_ms_bs1",
    "cv_pct",
    "best_throughput",
    "best_batch",
    "peak_host_rss_mb",
    "peak_device_mem_mb",
    "param_bytes",
    "ttft_ms",
    "decode_tokens_per_s",
    "status",
}

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", sans-serif; margin: 1.5rem auto; max-width: 80rem; padding: 0 1rem; color: #1b1f24; }
h1 { font-size: 1.6rem; } h2 { font-size: 1.3rem; margin-top: 2rem; } h3 { font-size: 1.1rem; } h4 { font-size: 1rem; }
table { border-collapse: collapse; margin: 0.5rem 0 1rem; font-size: 0.85rem; }
th, td { border: 1px solid #d0d7de; padding: 0.25rem 0.5rem; text-align: left; vertical-align: top; }
th { background: #f6f8fa; }
th button { all: unset; cursor: pointer; font-weight: 600; }
th[aria-sort="ascending"] button::after { content: " \\25B2"; }
th[aria-sort="descending"] button::after { content: " \\25BC"; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.why { color: #57606a; font-size: 0.8em; }
.status-pass { color: #116329; font-weight: 600; } .status-self-check { color: #0550ae; font-weight: 600; }
.status-warn { color: #9a6700; font-weight: 600; } .status-fail { color: #a40e26; font-weight: 600; }
.status-error { color: #fff; background: #82071e; font-weight: 600; padding: 0 0.25rem; } .status-blocked { color: #6e7781; font-weight: 600; }
pre { background: #f6f8fa; padding: 0.75rem; overflow-x: auto; }
code { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 0.9em; }
img { max-width: 100%; }
section.model { border-top: 2px solid #d0d7de; margin-top: 2rem; }
"""

# Click a header to sort (again to reverse); `#sort=COLUMN` or `#sort=-COLUMN` in the URL
# sorts on load. Missing values (n/a) always sort last. Sets data-ready="true" when done.
SORT_SCRIPT = """
"use strict";
(function () {
  const table = document.getElementById("leaderboard");
  const body = table.tBodies[0];
  const headers = Array.from(table.tHead.rows[0].cells);
  function sortBy(column, descending) {
    const index = headers.findIndex((th) => th.dataset.column === column);
    if (index < 0) return;
    const numeric = headers[index].dataset.type === "number";
    const rows = Array.from(body.rows);
    rows.sort(function (a, b) {
      const x = a.cells[index].dataset.sort, y = b.cells[index].dataset.sort;
      if (x === "" || y === "") return (x === "") - (y === "");
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    rows.forEach((row) => body.appendChild(row));
    headers.forEach((th) => th.removeAttribute("aria-sort"));
    headers[index].setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.dataset.sortedBy = (descending ? "-" : "") + column;
  }
  headers.forEach(function (th) {
    th.querySelector("button").addEventListener("click", function () {
      const descending = th.getAttribute("aria-sort") === "ascending";
      sortBy(th.dataset.column, descending);
      try { history.replaceState(null, "", "#sort=" + (descending ? "-" : "") + th.dataset.column); } catch (e) { /* file: URLs in some browsers */ }
    });
  });
  const wanted = /^#sort=(-?)(\\w+)$/.exec(window.location.hash);
  if (wanted) sortBy(wanted[2], wanted[1] === "-");
  table.dataset.ready = "true";
})();
"""


def _inline(text: str) -> str:
    """Escaped text with `code` spans."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _cell(cell, href_prefix: str) -> str:
    if isinstance(cell, Link):
        return f'<a href="{html.escape(href_prefix + cell.href)}">{html.escape(cell.text)}</a>'
    value, paren, why = cell.partition(" (")
    if value == "n/a" and paren:
        return f'n/a <span class="why">({html.escape(why)}</span>'
    return html.escape(cell)


def status_span(status: str) -> str:
    """A status in its colour (pass green, self-check blue, warn amber, fail red, error white
    on dark red, blocked grey), its meaning as the tooltip."""
    meaning = STATUS_MEANING.get(status, "")
    return f'<span class="status-{html.escape(status)}" title="{html.escape(meaning, quote=True)}">{html.escape(status)}</span>'


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_blocks(blocks: list, card_dir: Path, href_prefix: str = "", heading_shift: int = 0) -> str:
    """HTML of card blocks. Images are read from ``card_dir`` and embedded; links (relative
    to the card) get ``href_prefix`` when the page lives elsewhere."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(block.level + heading_shift, 6)
            parts.append(f"<h{level}>{html.escape(block.text)}</h{level}>")
        elif isinstance(block, Text):
            label = f"<strong>{html.escape(block.label)}</strong> " if block.label else ""
            status = re.match(r"[a-z-]+(?=[:;]|$)", block.text)
            if block.label and status and status[0] in STATUS_ORDER:  # a card's status and verdict lines, coloured
                parts.append(f"<p>{label}{status_span(status[0])}{_inline(block.text[status.end() :])}</p>")
            else:
                parts.append(f"<p>{label}{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(name)}</th>" for name in block.header)
            rows = "".join(
                "<tr>" + "".join(f"<td>{_cell(cell, href_prefix)}</td>" for cell in row) + "</tr>" for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Code):
            parts.append(
                f'<pre><code class="language-{html.escape(block.language)}">{html.escape(block.text.rstrip())}</code></pre>'
            )
        elif isinstance(block, Image):
            path = card_dir / block.path
            if path.is_file():
                parts.append(f'<img alt="{html.escape(block.alt)}" src="{data_uri(path)}">')
            else:
                parts.append(f"<p>n/a ({html.escape(block.path)} was not written)</p>")
        else:
            raise TypeError(f"unknown block {block!r}")
    return "\n".join(parts)


def document(title: str, body: str, script: str = "") -> str:
    script_tag = f"<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}\n{script_tag}\n</body>\n</html>\n"
    )


def model_page(summary: dict, card_dir: str) -> str:
    """One model's card as a self-contained page (written beside its README.md)."""
    body = render_blocks(card_blocks(summary, card_dir), Path(card_dir))
    return document(f"{summary['model']}: npu-adapt model card", body)


def _sort_key(column: str, value) -> str:
    """The data-sort attribute: raw numbers, the status rank, empty for a missing value."""
    if value is None:
        return ""
    if column == "status":
        return str(STATUS_ORDER.get(value, len(STATUS_ORDER)))
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def leaderboard_table(rows: list[dict], reasons: dict[str, dict]) -> str:
    head = "".join(
        f'<th data-column="{column}" data-type="{"number" if column in NUMERIC_COLUMNS else "text"}"><button type="button">{column}</button></th>'
        for column in LEADERBOARD_COLUMNS
    )
    body = []
    for row in ranked(rows):
        cells = leaderboard_cells(row, reasons.get(row["model"], {}))
        tds = []
        for column, text in zip(LEADERBOARD_COLUMNS, cells):
            sort = html.escape(_sort_key(column, row[column]), quote=True)
            if column == "model":
                content = f'<a href="#model-{html.escape(row["model"])}">{html.escape(text)}</a>'
            elif column == "status":
                content = status_span(text)
            else:
                content = _cell(text, "")
            css = ' class="num"' if column in NUMERIC_COLUMNS and row[column] is not None and column != "status" else ""
            tds.append(f'<td data-sort="{sort}"{css}>{content}</td>')
        body.append(f'<tr data-model="{html.escape(row["model"])}">' + "".join(tds) + "</tr>")
    return f'<table id="leaderboard"><thead><tr>{head}</tr></thead><tbody>\n' + "\n".join(body) + "\n</tbody></table>"


def leaderboard_page(rows: list[dict], reasons: dict[str, dict], summaries: dict[str, dict], results_dir: Path) -> str:
    """The leaderboard, sortable, followed by every model's card with its benchmark plot.
    ``results_dir``: the directory of the page; each model's card lives in a subdirectory."""
    parts = [
        "<h1>npu-adapt leaderboard / 排行榜</h1>",
        "<p>Generated by npu-adapt from each model's summary.json (the same numbers as leaderboard.csv). "
        "Click a column to sort it. Error columns show the worst case over a model's outputs. 点击列名排序。</p>",
        "<p>"
        + "; ".join(f"{status_span(status)}: {html.escape(meaning)}" for status, meaning in STATUS_MEANING.items())
        + ".</p>",
        leaderboard_table(rows, reasons),
    ]
    for row in ranked(rows):
        model = row["model"]
        card_dir = results_dir / model
        blocks = card_blocks(summaries[model], str(card_dir))
        parts.append(f'<section class="model" id="model-{html.escape(model)}">')
        parts.append(render_blocks(blocks, card_dir, href_prefix=f"{model}/", heading_shift=1))
        parts.append("</section>")
    return document("npu-adapt leaderboard", "\n".join(parts), SORT_SCRIPT)
