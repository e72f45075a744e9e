"""Self-contained HTML pages: the leaderboard (results/leaderboard.html) and one
page per model (results/{model}/summary.html, the model card for Snakemake's report).

A page needs no network to be viewed: styles and scripts are inline, the leaderboard's
scatter is inline SVG and the benchmark plots are embedded as base64 PNG. The content is the
same blocks the Markdown card is rendered from (:func:`npu_adapt.reports.card_blocks`).
"""

from __future__ import annotations

import base64
import html
import math
import re
from pathlib import Path

from npu_adapt.reports import (
    BENCHMARK_COLUMN_NOTES,
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
    format_cell,
    leaderboard_cells,
    ranked,
    shown,
)

# Leaderboard columns sorted as text; every other column sorts as a number (status by its
# rank). Derived from LEADERBOARD_COLUMNS, so a new numeric column needs no second list.
TEXT_COLUMNS = {"model", "task", "source", "pretrained", "target_device", "target_dtype", "stable", "reason"}
NUMERIC_COLUMNS = set(LEADERBOARD_COLUMNS) - TEXT_COLUMNS

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC", "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif; margin: 1.5rem auto; max-width: 80rem; padding: 0 1rem; color: #1b1f24; }
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


def document(title: str, body: str, script: str = "", style: str = "") -> str:
    script_tag = f"<script>{script}</script>" if script else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{html.escape(title)}</title>\n<style>{STYLE}{style}</style>\n</head>\n<body>\n{body}\n{script_tag}\n</body>\n</html>\n"
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


# Leaderboard page ------------------------------------------------------------------------

# The columns a reader compares models by, shown first so they fit a laptop screen; every
# other leaderboard column (and the reason) is in the row's details.
KEY_COLUMNS = [
    "model",
    "status",
    "rel_l2",
    "cosine",
    "latency_p50_ms_bs1",
    "best_throughput",
    "peak_host_rss_mb",
    "peak_device_mem_mb",
]

KEY_COLUMN_NOTES = {
    "rel_l2": "worst (largest) relative L2 error over the model's outputs",
    "cosine": "worst (smallest) cosine similarity over the model's outputs",
}

# Status colours (the scatter's points; the same as the .status-* classes of STYLE).
STATUS_COLOURS = {
    "pass": "#116329",
    "self-check": "#0550ae",
    "warn": "#9a6700",
    "fail": "#a40e26",
    "error": "#82071e",
    "blocked": "#6e7781",
}

BOARD_STYLE = """
body.board { max-width: none; margin: 1rem 1.5rem; }
.strip { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin: 0.5rem 0; }
.chip { border: 1px solid #d0d7de; border-radius: 1rem; padding: 0.15rem 0.7rem; background: #fff; cursor: pointer; font: inherit; }
.chip[aria-pressed="true"] { outline: 2px solid #0969da; }
.chip.empty { opacity: 0.45; }
.chip b { font-variant-numeric: tabular-nums; }
.filters { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; margin: 0.5rem 0; font-size: 0.9rem; }
.board-layout { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
#leaderboard th { white-space: nowrap; }
#leaderboard td.model { white-space: nowrap; }
#leaderboard .key td { white-space: nowrap; }
#leaderboard .key td .why { display: none; }
#leaderboard button.expand { all: unset; cursor: pointer; width: 1.2em; display: inline-block; color: #57606a; }
#leaderboard button.expand::before { content: "\\25B8"; }
#leaderboard button.expand[aria-expanded="true"]::before { content: "\\25BE"; }
#leaderboard tr.details td { background: #f6f8fa; }
dl.details { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem; margin: 0.25rem 0; max-width: 60rem; white-space: normal; }
dl.details dt { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; color: #57606a; }
dl.details dd { margin: 0; }
figure.scatter { margin: 0; }
figure.scatter figcaption { font-size: 0.85rem; color: #57606a; max-width: 32rem; }
svg text { font-size: 11px; fill: #1b1f24; }
svg .axis { stroke: #57606a; } svg .grid { stroke: #eaeef2; }
"""

# Sorting (click a header, again to reverse; `#sort=COLUMN` or `#sort=-COLUMN` sorts on load;
# n/a always last), filters by status and family (`#status=warn&family=timm_image` on load),
# row details on expand. Each key header's right edge goes to data-right so a test can check
# that the key columns fit the window. Sets data-ready="true" when done.
BOARD_SCRIPT = """
"use strict";
(function () {
  const table = document.getElementById("leaderboard");
  const headers = Array.from(table.tHead.rows[0].cells).filter((th) => th.dataset.column);
  const entries = Array.from(table.tBodies);
  const points = Array.from(document.querySelectorAll("#scatter [data-model]"));
  const statusFilter = document.getElementById("filter-status");
  const familyFilter = document.getElementById("filter-family");
  const chips = Array.from(document.querySelectorAll(".chip[data-status]"));
  function sortBy(column, descending) {
    const th = headers.find((h) => h.dataset.column === column);
    if (!th) return;
    const index = headers.indexOf(th), numeric = th.dataset.type === "number";
    entries.sort(function (a, b) {
      const x = a.rows[0].cells[index].dataset.sort, y = b.rows[0].cells[index].dataset.sort;
      if (x === "" || y === "") return (x === "") - (y === "");
      const order = numeric ? Number(x) - Number(y) : x.localeCompare(y);
      return descending ? -order : order;
    });
    entries.forEach((entry) => table.appendChild(entry));
    headers.forEach((h) => h.removeAttribute("aria-sort"));
    th.setAttribute("aria-sort", descending ? "descending" : "ascending");
    table.dataset.sortedBy = (descending ? "-" : "") + column;
  }
  function filter() {
    const status = statusFilter.value, family = familyFilter.value;
    const shown = new Set();
    entries.forEach(function (entry) {
      const row = entry.rows[0];
      const visible = (!status || row.dataset.status === status) && (!family || row.dataset.family === family);
      entry.hidden = !visible;
      if (visible) shown.add(row.dataset.model);
    });
    points.forEach((point) => point.setAttribute("opacity", shown.has(point.dataset.model) ? "1" : "0.12"));
    chips.forEach((chip) => chip.setAttribute("aria-pressed", String(chip.dataset.status === status)));
    table.dataset.shown = String(shown.size);
  }
  function fragment() {
    const parts = [];
    if (table.dataset.sortedBy) parts.push("sort=" + table.dataset.sortedBy);
    if (statusFilter.value) parts.push("status=" + statusFilter.value);
    if (familyFilter.value) parts.push("family=" + familyFilter.value);
    try { history.replaceState(null, "", "#" + parts.join("&")); } catch (e) { /* file: URLs in some browsers */ }
  }
  headers.forEach(function (th) {
    th.querySelector("button").addEventListener("click", function () {
      sortBy(th.dataset.column, th.getAttribute("aria-sort") === "ascending");
      fragment();
    });
  });
  entries.forEach(function (entry) {
    const button = entry.querySelector("button.expand");
    button.addEventListener("click", function () {
      const open = button.getAttribute("aria-expanded") !== "true";
      button.setAttribute("aria-expanded", String(open));
      entry.rows[1].hidden = !open;
    });
  });
  [statusFilter, familyFilter].forEach((select) => select.addEventListener("change", function () { filter(); fragment(); }));
  chips.forEach(function (chip) {
    chip.addEventListener("click", function () {
      statusFilter.value = statusFilter.value === chip.dataset.status ? "" : chip.dataset.status;
      filter(); fragment();
    });
  });
  const wanted = new URLSearchParams(window.location.hash.slice(1));
  const sort = /^(-?)(\\w+)$/.exec(wanted.get("sort") || "");
  if (sort) sortBy(sort[2], sort[1] === "-");
  for (const [select, key] of [[statusFilter, "status"], [familyFilter, "family"]]) {
    if (Array.from(select.options).some((option) => option.value === wanted.get(key))) select.value = wanted.get(key);
  }
  filter();
  function measure() {
    headers.forEach((th) => { th.dataset.right = String(Math.round(th.getBoundingClientRect().right)); });
    table.dataset.viewport = String(window.innerWidth);
  }
  measure();
  window.addEventListener("resize", measure);
  table.dataset.ready = "true";
})();
"""


def _family(summary: dict) -> str:
    return summary.get("family") or "n/a"


def _header(column: str, kind: str) -> str:
    """A sortable header, its CSV name breakable at underscores, what it means as the tooltip."""
    label = html.escape(column).replace("_", "_<wbr>")
    note = KEY_COLUMN_NOTES.get(column) or BENCHMARK_COLUMN_NOTES.get(column)
    title = f' title="{html.escape(note, quote=True)}"' if note else ""
    return f'<th data-column="{column}" data-type="{kind}"{title}><button type="button">{label}</button></th>'


def summary_strip(rows: list[dict]) -> str:
    """Models by status (each a button filtering the table) and the run's targets."""
    counts = {status: sum(row["status"] == status for row in rows) for status in STATUS_ORDER}
    targets: dict[str, int] = {}
    for row in rows:
        target = f"{format_cell(row['target_device'])} {format_cell(row['target_dtype'])}"
        targets[target] = targets.get(target, 0) + 1
    chips = "".join(
        f'<button type="button" class="chip{"" if count else " empty"}" data-status="{status}" aria-pressed="false" '
        f'title="{html.escape(STATUS_MEANING[status], quote=True)}">{status_span(status)} <b>{count}</b></button>'
        for status, count in counts.items()
    )
    target_text = "; ".join(f"{html.escape(target)}: {count}" for target, count in targets.items())
    return (
        f'<div class="strip" id="summary"><strong>{len(rows)} model{"s" if len(rows) != 1 else ""} / 模型</strong>'
        f"{chips}<span>target / 目标: {target_text}</span></div>"
    )


def filters(rows: list[dict], summaries: dict[str, dict]) -> str:
    statuses = "".join(
        f'<option value="{status}">{status} ({sum(row["status"] == status for row in rows)})</option>'
        for status in STATUS_ORDER
    )
    families = sorted({_family(summaries[row["model"]]) for row in rows})
    family_options = "".join(f'<option value="{html.escape(f)}">{html.escape(f)}</option>' for f in families)
    return (
        '<div class="filters"><label>status / 状态 <select id="filter-status"><option value="">all</option>'
        f"{statuses}</select></label>"
        '<label>family / 模型族 <select id="filter-family"><option value="">all</option>'
        f"{family_options}</select></label>"
        "<span>Click a column to sort, ▸ for a row's other columns. 点击列名排序，点击 ▸ 查看详情。</span></div>"
    )


def leaderboard_table(rows: list[dict], reasons: dict[str, dict], summaries: dict[str, dict]) -> str:
    """The key columns, one <tbody> per model: its key row, then its details row (every
    other leaderboard column, and why a missing key value is missing), hidden until expanded."""
    head = "".join(_header(column, "number" if column in NUMERIC_COLUMNS else "text") for column in KEY_COLUMNS)
    entries = []
    for row in ranked(rows):
        model = row["model"]
        cells = dict(zip(LEADERBOARD_COLUMNS, leaderboard_cells(row, reasons.get(model, {}))))
        tds = []
        for column in KEY_COLUMNS:
            sort = html.escape(_sort_key(column, row[column]), quote=True)
            text = cells[column]
            if column == "model":
                label = html.escape(f"details of {model}", quote=True)
                content = (
                    f'<button type="button" class="expand" aria-expanded="false" aria-label="{label}"></button>'
                    f'<a href="#model-{html.escape(model)}">{html.escape(text)}</a>'
                )
            elif column == "status":
                content = status_span(text)
            else:
                content = _cell(text, "")
            css = ' class="num"' if column in NUMERIC_COLUMNS and row[column] is not None and column != "status" else ""
            title = f' title="{html.escape(text, quote=True)}"' if row[column] is None else ""
            tds.append(f'<td data-sort="{sort}"{css}{title}>{content}</td>')
        detail_columns = [c for c in LEADERBOARD_COLUMNS if c not in KEY_COLUMNS or row[c] is None]
        details = "".join(f"<dt>{column}</dt><dd>{_cell(cells[column], '')}</dd>" for column in detail_columns)
        details += f'<dt>card</dt><dd><a href="#model-{html.escape(model)}">{html.escape(model)} model card</a></dd>'
        entries.append(
            f'<tbody class="entry"><tr class="key" data-model="{html.escape(model)}" data-status="{html.escape(row["status"])}" '
            f'data-family="{html.escape(_family(summaries[model]))}">{"".join(tds)}</tr>'
            f'<tr class="details" data-details-of="{html.escape(model)}" hidden><td colspan="{len(KEY_COLUMNS)}"><dl class="details">{details}</dl></td></tr></tbody>'
        )
    return f'<table id="leaderboard"><thead><tr>{head}</tr></thead>\n' + "\n".join(entries) + "\n</table>"


def _decades(values: list[float], minimum_span: int) -> tuple[int, int]:
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    if high - low < minimum_span:
        low = high - minimum_span
    return low, high


def scatter(rows: list[dict], reasons: dict[str, dict]) -> str:
    """Accuracy against speed: worst rel_l2 over batch-1 p50 latency, both log scales, one
    point per model coloured by status. A rel_l2 of exactly 0 (bit-identical outputs) has no
    logarithm: those points sit on their own line under the axis, labelled 0."""
    width, height, left, right, top, bottom = 560, 360, 64, 20, 16, 64
    plotted = [r for r in ranked(rows) if r["latency_p50_ms_bs1"] is not None and r["rel_l2"] is not None]
    left_out = [r for r in ranked(rows) if r not in plotted]
    parts = [
        f'<svg id="scatter" width="{width}" height="{height}" viewBox="0 0 {width} {height}" role="img" '
        'aria-label="worst rel_l2 against batch-1 p50 latency, log scales">'
    ]
    if plotted:
        x_low, x_high = _decades([r["latency_p50_ms_bs1"] for r in plotted], 1)
        positive = [r["rel_l2"] for r in plotted if r["rel_l2"] > 0]
        y_low, y_high = _decades(positive, 2) if positive else (-6, 0)
        zero_y = height - bottom + 6  # the line of rel_l2 = 0, under the log axis
        axis_y = height - bottom - 12

        def x_of(value: float) -> float:
            return left + (math.log10(value) - x_low) / (x_high - x_low) * (width - left - right)

        def y_of(value: float) -> float:
            if value <= 0:
                return zero_y
            return top + (y_high - math.log10(value)) / (y_high - y_low) * (axis_y - top)

        for k in range(x_low, x_high + 1):
            x = x_of(10.0**k)
            parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{zero_y}"/>')
            parts.append(f'<text x="{x:.1f}" y="{zero_y + 18}" text-anchor="middle">{10.0**k:g}</text>')
        for k in range(y_low, y_high + 1):
            y = y_of(10.0**k)
            parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>')
            parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">1e{k}</text>')
        parts.append(f'<text x="{left - 6}" y="{zero_y + 4}" text-anchor="end">0</text>')
        parts.append(f'<line class="axis" x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}"/>')
        parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{zero_y + 4}"/>')
        parts.append(
            f'<text x="{(left + width - right) / 2}" y="{height - 10}" text-anchor="middle">'
            "latency_p50_ms_bs1 (ms, log) / 延迟</text>"
        )
        parts.append(
            f'<text transform="translate(14 {(top + axis_y) / 2}) rotate(-90)" text-anchor="middle">'
            "worst rel_l2 (log) / 相对误差</text>"
        )
        for index, row in enumerate(plotted):
            x, y = x_of(row["latency_p50_ms_bs1"]), y_of(row["rel_l2"])
            model, status = html.escape(row["model"]), html.escape(row["status"])
            tip = (
                f"{row['model']}: {row['status']}, rel_l2 {format_cell(row['rel_l2'])}, "
                f"latency_p50_ms_bs1 {format_cell(row['latency_p50_ms_bs1'])} ms"
            )
            label = ""
            if len(plotted) <= 12:  # more labels than that would cover each other: the tooltip names the point
                dy = -8 if index % 2 == 0 else 16
                label = f'<text x="{x + 7:.1f}" y="{y + dy:.1f}">{model}</text>'
            parts.append(
                f'<g data-model="{model}" data-status="{status}"><circle cx="{x:.1f}" cy="{y:.1f}" r="5" '
                f'fill="{STATUS_COLOURS.get(row["status"], "#1b1f24")}" stroke="#fff"><title>{html.escape(tip)}</title>'
                f"</circle>{label}</g>"
            )
    else:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no model has both numbers</text>')
    parts.append("</svg>")
    legend = " ".join(status_span(s) for s in STATUS_ORDER if any(r["status"] == s for r in plotted))
    missing = "; ".join(
        f"{html.escape(r['model'])} ("
        + ", ".join(
            f"{column} {_cell(shown(None, reasons.get(r['model'], {}).get(column, 'not measured')), '')}"
            for column in ("rel_l2", "latency_p50_ms_bs1")
            if r[column] is None
        )
        + ")"
        for r in left_out
    )
    caption = (
        "Accuracy vs speed / 精度与速度: lower is more accurate, further left is faster. "
        + (f"Points: {legend}. " if legend else "")
        + (f"Not plotted: {missing}." if missing else "")
    )
    return f'<figure class="scatter">{"".join(parts)}<figcaption>{caption}</figcaption></figure>'


def leaderboard_page(rows: list[dict], reasons: dict[str, dict], summaries: dict[str, dict], results_dir: Path) -> str:
    """The leaderboard: a summary strip, filters, the key columns (sortable; a row expands to
    the others), the accuracy-vs-speed scatter, then every model's card with its benchmark
    plot. ``results_dir``: the directory of the page; each model's card lives in a subdirectory."""
    parts = [
        "<h1>npu-adapt leaderboard / 排行榜</h1>",
        "<p>Generated by npu-adapt from each model's summary.json (the same numbers as leaderboard.csv). "
        "Error columns show the worst case over a model's outputs. 由 npu-adapt 自动生成。</p>",
        summary_strip(rows),
        filters(rows, summaries),
        '<div class="board-layout">',
        leaderboard_table(rows, reasons, summaries),
        scatter(rows, reasons),
        "</div>",
        "<p>"
        + "; ".join(f"{status_span(status)}: {html.escape(meaning)}" for status, meaning in STATUS_MEANING.items())
        + ".</p>",
    ]
    for row in ranked(rows):
        model = row["model"]
        card_dir = results_dir / model
        blocks = card_blocks(summaries[model], str(card_dir))
        parts.append(f'<section class="model" id="model-{html.escape(model)}">')
        parts.append(render_blocks(blocks, card_dir, href_prefix=f"{model}/", heading_shift=1))
        parts.append("</section>")
    return document("npu-adapt leaderboard", "\n".join(parts), BOARD_SCRIPT, BOARD_STYLE)
