"""The leaderboard page (results/leaderboard.html): one row per model x target.

A summary strip (rows by status, the targets), filters by status, target and family, the key
columns (sortable; a row expands to the other columns and that target's accuracy and
performance sections), one accuracy-vs-speed scatter per target on shared axes, then every
model's card. Self-contained: inline style, script and SVG, plots embedded as base64 PNG.
"""

from __future__ import annotations

import html
from pathlib import Path

from npu_adapt.blocks import Image
from npu_adapt.card_accuracy import accuracy_blocks
from npu_adapt.card_benchmark import benchmark_blocks
from npu_adapt.cards import card_blocks, leaderboard_cells, row_reasons, targets_of
from npu_adapt.html_report import _cell, _sort_key, document, render_blocks, status_span
from npu_adapt.html_scatter import scatter, targets_in
from npu_adapt.reports import BENCHMARK_COLUMN_NOTES, LEADERBOARD_COLUMNS, STATUS_MEANING, STATUS_ORDER, format_cell
from npu_adapt.tables import ranked, row_key

# The columns a reader compares rows by, shown first so they fit a laptop screen; every
# other leaderboard column (and the reason) is in the row's details.
KEY_COLUMNS = [
    "model",
    "target",
    "status",
    "rel_l2",
    "cosine",
    "latency_p50_ms_bs1",
    "best_throughput",
    "peak_host_rss_mb",
    "peak_device_mem_mb",
]
# Every column of a row: the key ones first (a row written before several targets has no
# `target` in LEADERBOARD_COLUMNS).
ROW_COLUMNS = list(dict.fromkeys([*KEY_COLUMNS[:2], *LEADERBOARD_COLUMNS]))

# Leaderboard columns sorted as text; every other column sorts as a number (status by its
# rank). Derived from the columns, so a new numeric column needs no second list.
TEXT_COLUMNS = {"model", "target", "task", "source", "pretrained", "target_device", "target_dtype", "self_check"}
TEXT_COLUMNS |= {"stable", "reason"}
NUMERIC_COLUMNS = set(ROW_COLUMNS) - TEXT_COLUMNS

KEY_COLUMN_NOTES = {
    "target": "the target's name in config.yaml targets: (its device, dtype and precision)",
    "rel_l2": "worst (largest) relative L2 error over the target's outputs",
    "cosine": "worst (smallest) cosine similarity over the target's outputs",
}

BOARD_STYLE = """
body.board { max-width: none; margin: 1rem 1.5rem; }
.strip { display: flex; flex-wrap: wrap; gap: 0.5rem; align-items: center; margin: 0.5rem 0; }
.chip { border: 1px solid #d0d7de; border-radius: 1rem; padding: 0.15rem 0.7rem;
  background: #fff; cursor: pointer; font: inherit; }
.chip[aria-pressed="true"] { outline: 2px solid #0969da; }
.chip.empty { opacity: 0.45; }
.chip b { font-variant-numeric: tabular-nums; }
.filters { display: flex; flex-wrap: wrap; gap: 1rem; align-items: center; margin: 0.5rem 0; font-size: 0.9rem; }
.board-layout { display: flex; flex-wrap: wrap; gap: 1.5rem; align-items: flex-start; }
#leaderboard th { white-space: nowrap; }
#leaderboard .key td { white-space: nowrap; }
#leaderboard .key td .why { display: none; }
#leaderboard button.expand { all: unset; cursor: pointer; width: 1.2em; display: inline-block; color: #57606a; }
#leaderboard button.expand::before { content: "\\25B8"; }
#leaderboard button.expand[aria-expanded="true"]::before { content: "\\25BE"; }
#leaderboard tr.details > td { background: #f6f8fa; }
#leaderboard tr.details table { background: #fff; }
.detail-box { width: 0; min-width: 100%; overflow-x: auto; white-space: normal; }
dl.details { display: grid; grid-template-columns: max-content 1fr; gap: 0.15rem 1rem;
  margin: 0.25rem 0; max-width: 60rem; }
dl.details dt { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; color: #57606a; }
dl.details dd { margin: 0; }
section.model { overflow-x: auto; }
figure.scatter { margin: 0; }
.multiples { display: flex; flex-wrap: wrap; gap: 0.5rem; }
figure.scatter figcaption { font-size: 0.85rem; color: #57606a; max-width: 48rem; }
svg text { font-size: 11px; fill: #1b1f24; } svg text.panel { font-size: 13px; font-weight: 600; }
svg .axis { stroke: #57606a; } svg .grid { stroke: #eaeef2; }
"""

# Sorting (click a header, again to reverse; `#sort=COLUMN` or `#sort=-COLUMN` sorts on load;
# n/a always last), filters by status, target and family (`#status=warn&target=bf16` on load),
# row details on expand. Each key header's right and bottom edges go to data-right and
# data-bottom so a test can check that the key columns fit the window. Sets data-ready="true" when done.
BOARD_SCRIPT = """
"use strict";
(function () {
  const table = document.getElementById("leaderboard");
  const headers = Array.from(table.tHead.rows[0].cells).filter((th) => th.dataset.column);
  const entries = Array.from(table.tBodies);
  const points = Array.from(document.querySelectorAll(".scatter [data-key]"));
  const filters = { status: "filter-status", target: "filter-target", family: "filter-family" };
  const selects = Object.fromEntries(Object.entries(filters).map(([key, id]) => [key, document.getElementById(id)]));
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
    const shown = new Set();
    entries.forEach(function (entry) {
      const row = entry.rows[0];
      const visible = Object.entries(selects).every(
        ([key, select]) => !select.value || row.dataset[key] === select.value);
      entry.hidden = !visible;
      if (visible) shown.add(row.dataset.key);
    });
    points.forEach((point) => point.setAttribute("opacity", shown.has(point.dataset.key) ? "1" : "0.12"));
    chips.forEach((chip) => chip.setAttribute("aria-pressed", String(chip.dataset.status === selects.status.value)));
    table.dataset.shown = String(shown.size);
  }
  function fragment() {
    const parts = [];
    if (table.dataset.sortedBy) parts.push("sort=" + table.dataset.sortedBy);
    for (const [key, select] of Object.entries(selects))
      if (select.value) parts.push(key + "=" + encodeURIComponent(select.value));
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
  Object.values(selects).forEach((select) => select.addEventListener("change", function () { filter(); fragment(); }));
  chips.forEach(function (chip) {
    chip.addEventListener("click", function () {
      selects.status.value = selects.status.value === chip.dataset.status ? "" : chip.dataset.status;
      filter(); fragment();
    });
  });
  const wanted = new URLSearchParams(window.location.hash.slice(1));
  const sort = /^(-?)(\\w+)$/.exec(wanted.get("sort") || "");
  if (sort) sortBy(sort[2], sort[1] === "-");
  for (const [key, select] of Object.entries(selects)) {
    if (Array.from(select.options).some((option) => option.value === wanted.get(key))) select.value = wanted.get(key);
  }
  filter();
  function measure() {
    headers.forEach(function (th) {
      const box = th.getBoundingClientRect();
      th.dataset.right = String(Math.round(box.right));
      th.dataset.bottom = String(Math.round(box.bottom));
    });
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
    """Rows (models x targets) by status, each a button filtering the table, and the targets."""
    counts = {status: sum(row["status"] == status for row in rows) for status in STATUS_ORDER}
    models = len({row["model"] for row in rows})
    targets = targets_in(rows)
    chips = "".join(
        f'<button type="button" class="chip{"" if count else " empty"}" data-status="{status}" aria-pressed="false" '
        f'title="{html.escape(STATUS_MEANING[status], quote=True)}">{status_span(status)} <b>{count}</b></button>'
        for status, count in counts.items()
    )
    placements = []
    for target in targets:
        kinds = sorted(
            {
                f"{format_cell(r['target_device'])} {format_cell(r['target_dtype'])}"
                for r in rows
                if r["target"] == target
            }
        )
        placements.append(f"<code>{html.escape(target)}</code> ({html.escape(', '.join(kinds))})")
    return (
        f'<div class="strip" id="summary"><strong data-rows="{len(rows)}">{len(rows)} rows = {models} '
        f"model{'s' if models != 1 else ''} × {len(targets)} target{'s' if len(targets) != 1 else ''} "
        "/ 模型 × 目标</strong>"
        f"{chips}<span>targets / 目标: {'; '.join(placements)}</span></div>"
    )


def _select(key: str, label: str, options: list[tuple[str, str]]) -> str:
    items = "".join(f'<option value="{html.escape(value)}">{html.escape(text)}</option>' for value, text in options)
    return f'<label>{label} <select id="filter-{key}"><option value="">all</option>{items}</select></label>'


def filters(rows: list[dict], summaries: dict[str, dict]) -> str:
    statuses = [(status, f"{status} ({sum(row['status'] == status for row in rows)})") for status in STATUS_ORDER]
    targets = [(target, f"{target} ({sum(row['target'] == target for row in rows)})") for target in targets_in(rows)]
    families = sorted({_family(summaries[row["model"]]) for row in rows})
    return (
        '<div class="filters">'
        + _select("status", "status / 状态", statuses)
        + _select("target", "target / 目标", targets)
        + _select("family", "family / 模型族", [(f, f) for f in families])
        + "<span>Click a column to sort, ▸ for a row's other columns and its target's sections. "
        "点击列名排序，点击 ▸ 查看详情。</span></div>"
    )


def _key_cell(row: dict, column: str, text: str) -> str:
    sort = html.escape(_sort_key(column, row[column]), quote=True)
    if column == "model":
        label = html.escape(f"details of {row_key(row)}", quote=True)
        content = (
            f'<button type="button" class="expand" aria-expanded="false" aria-label="{label}"></button>'
            f'<a href="#model-{html.escape(row["model"])}">{html.escape(text)}</a>'
        )
    elif column == "status":
        content = status_span(text)
    else:
        content = _cell(text, "")
    css = ' class="num"' if column in NUMERIC_COLUMNS and row[column] is not None and column != "status" else ""
    title = f' title="{html.escape(text, quote=True)}"' if row[column] is None else ""
    return f'<td data-sort="{sort}"{css}{title}>{content}</td>'


def _details(row: dict, cells: dict, summary: dict, results_dir: Path) -> str:
    """A row's details: the other columns, then its target's accuracy and performance
    sections (the plot stays in the card further down)."""
    model = row["model"]
    columns = [c for c in ROW_COLUMNS if c not in KEY_COLUMNS or row[c] is None]
    items = "".join(f"<dt>{column}</dt><dd>{_cell(cells[column], '')}</dd>" for column in columns)
    items += f'<dt>card</dt><dd><a href="#model-{html.escape(model)}">{html.escape(model)} model card</a></dd>'
    target = targets_of(summary).get(row["target"])
    sections = ""
    if target is not None:
        blocks = accuracy_blocks(summary, row["target"], target) + benchmark_blocks(summary, row["target"], target)
        blocks = [block for block in blocks if not isinstance(block, Image)]
        sections = render_blocks(blocks, results_dir / model, href_prefix=f"{model}/", heading_shift=1)
    return f'<div class="detail-box"><dl class="details">{items}</dl>{sections}</div>'


def leaderboard_table(
    rows: list[dict], reasons: dict[str, dict], summaries: dict[str, dict], results_dir: Path = Path(".")
) -> str:
    """The key columns, one <tbody> per model x target: its key row, then its details row
    (every other leaderboard column, why a missing key value is missing, the target's
    accuracy and performance sections), hidden until expanded."""
    head = "".join(_header(column, "number" if column in NUMERIC_COLUMNS else "text") for column in KEY_COLUMNS)
    entries = []
    for row in ranked(rows):
        model, key = row["model"], row_key(row)
        cells = dict(zip(ROW_COLUMNS, leaderboard_cells(row, row_reasons(reasons, row), ROW_COLUMNS)))
        tds = "".join(_key_cell(row, column, cells[column]) for column in KEY_COLUMNS)
        data = {
            "key": key,
            "model": model,
            "target": row["target"],
            "status": row["status"],
            "family": _family(summaries[model]),
        }
        attributes = " ".join(f'data-{name}="{html.escape(value, quote=True)}"' for name, value in data.items())
        entries.append(
            f'<tbody class="entry"><tr class="key" {attributes}>{tds}</tr>'
            f'<tr class="details" data-details-of="{html.escape(key, quote=True)}" hidden>'
            f'<td colspan="{len(KEY_COLUMNS)}">'
            f"{_details(row, cells, summaries[model], results_dir)}</td></tr></tbody>"
        )
    return f'<table id="leaderboard"><thead><tr>{head}</tr></thead>\n' + "\n".join(entries) + "\n</table>"


def leaderboard_page(rows: list[dict], reasons: dict[str, dict], summaries: dict[str, dict], results_dir: Path) -> str:
    """The leaderboard: a summary strip, filters, the key columns (sortable; a row expands to
    the others and its target's sections), the scatters, then every model's card with its
    benchmark plots. ``reasons``: per row (model/target), why each missing cell is missing;
    ``summaries``: by model; ``results_dir``: the directory of the page (cards below it)."""
    parts = [
        "<h1>npu-adapt leaderboard / 排行榜</h1>",
        "<p>Generated by npu-adapt from each model's summary.json (the same numbers as leaderboard.csv): one row "
        "per model and target; error columns show the worst case over the target's outputs. "
        "由 npu-adapt 自动生成。</p>",
        summary_strip(rows),
        filters(rows, summaries),
        '<div class="board-layout">',
        leaderboard_table(rows, reasons, summaries, results_dir),
        scatter(rows, reasons),
        "</div>",
        "<p>"
        + "; ".join(f"{status_span(status)}: {html.escape(meaning)}" for status, meaning in STATUS_MEANING.items())
        + ".</p>",
    ]
    for model in dict.fromkeys(row["model"] for row in ranked(rows)):
        card_dir = results_dir / model
        blocks = card_blocks(summaries[model], str(card_dir))
        parts.append(f'<section class="model" id="model-{html.escape(model)}">')
        parts.append(render_blocks(blocks, card_dir, href_prefix=f"{model}/", heading_shift=1))
        parts.append("</section>")
    return document("npu-adapt leaderboard", "\n".join(parts), BOARD_SCRIPT, BOARD_STYLE)
