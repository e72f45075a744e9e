"""Self-contained HTML pages: one page per model (results/{model}/summary.html, the model
card for Snakemake's report) and the shared rendering of card blocks; the leaderboard
(results/leaderboard.html) is built in :mod:`npu_adapt.html_board`.

A page needs no network to be viewed: styles and scripts are inline, the leaderboard's
scatter is inline SVG and the benchmark plots are embedded as base64 PNG. The content is the
same blocks the Markdown card is rendered from (:func:`npu_adapt.cards.card_blocks`).
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

from npu_adapt.blocks import Code, Heading, Image, Link, Table, Text
from npu_adapt.cards import card_blocks
from npu_adapt.reports import STATUS_MEANING, STATUS_ORDER

STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", "Noto Sans CJK SC", "Source Han Sans SC", "PingFang SC",
  "Microsoft YaHei", "WenQuanYi Micro Hei", sans-serif;
  margin: 1.5rem auto; max-width: 80rem; padding: 0 1rem; color: #1b1f24; }
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
.status-error { color: #fff; background: #82071e; font-weight: 600; padding: 0 0.25rem; }
.status-blocked { color: #6e7781; font-weight: 600; }
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


# The header of a card table whose cells are statuses with their reasons (the targets table).
STATUS_HEADER = "status / 状态"


def _status_cell(cell: str) -> str:
    """``status: why`` with the status in its colour."""
    status, colon, why = cell.partition(":")
    return status_span(status) + html.escape(colon + why) if status in STATUS_ORDER else _cell(cell, "")


def status_span(status: str) -> str:
    """A status in its colour (pass green, self-check blue, warn amber, fail red, error white
    on dark red, blocked grey), its meaning as the tooltip."""
    meaning = STATUS_MEANING.get(status, "")
    return (
        f'<span class="status-{html.escape(status)}" title="{html.escape(meaning, quote=True)}">'
        f"{html.escape(status)}</span>"
    )


def data_uri(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def render_blocks(blocks: list, card_dir: Path, href_prefix: str = "", heading_shift: int = 0) -> str:
    """HTML of card blocks. Images are read from ``card_dir`` and embedded; links (relative
    to the card) get ``href_prefix`` when the page lives elsewhere."""
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            level = min(block.level + heading_shift, 6)
            parts.append(f"<h{level}>{_inline(block.text)}</h{level}>")
        elif isinstance(block, Text):
            label = f"<strong>{html.escape(block.label)}</strong> " if block.label else ""
            status = re.match(r"[a-z-]+(?=[:;]|$)", block.text)
            if block.label and status and status[0] in STATUS_ORDER:  # a card's status and verdict lines, coloured
                parts.append(f"<p>{label}{status_span(status[0])}{_inline(block.text[status.end() :])}</p>")
            else:
                parts.append(f"<p>{label}{_inline(block.text)}</p>")
        elif isinstance(block, Table):
            head = "".join(f"<th>{html.escape(name)}</th>" for name in block.header)
            status_column = block.header.index(STATUS_HEADER) if STATUS_HEADER in block.header else None
            rows = "".join(
                "<tr>"
                + "".join(
                    f"<td>{_status_cell(cell) if index == status_column else _cell(cell, href_prefix)}</td>"
                    for index, cell in enumerate(row)
                )
                + "</tr>"
                for row in block.rows
            )
            parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif isinstance(block, Code):
            parts.append(
                f'<pre><code class="language-{html.escape(block.language)}">'
                f"{html.escape(block.text.rstrip())}</code></pre>"
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
