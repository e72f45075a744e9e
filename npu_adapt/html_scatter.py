"""The leaderboard page's accuracy-vs-speed scatter: one inline SVG panel per target, all on
the same log axes (small multiples), one point per model coloured by status."""

from __future__ import annotations

import html
import math

from npu_adapt.cards import row_reasons
from npu_adapt.html_report import _cell, status_span
from npu_adapt.reports import STATUS_ORDER, format_cell, shown
from npu_adapt.tables import ranked, row_key

# Status colours (the scatter's points; the same as the .status-* classes of the page's style).
STATUS_COLOURS = {
    "pass": "#116329",
    "self-check": "#0550ae",
    "warn": "#9a6700",
    "fail": "#a40e26",
    "error": "#82071e",
    "blocked": "#6e7781",
}


def targets_in(rows: list[dict]) -> list[str]:
    """The targets of the rows, in the order they first appear (config order)."""
    return list(dict.fromkeys(row["target"] for row in rows))


def _decades(values: list[float], minimum_span: int) -> tuple[int, int]:
    low, high = math.floor(math.log10(min(values))), math.ceil(math.log10(max(values)))
    if high - low < minimum_span:
        low = high - minimum_span
    return low, high


SCATTER_SIZE = (400, 300, 60, 16, 24, 56)  # width, height, left, right, top, bottom margins (px)


def _panel(target: str, rows: list[dict], x_range: tuple[int, int], y_range: tuple[int, int]) -> str:
    """One target's scatter on the shared axes: worst rel_l2 over batch-1 p50 latency, log
    scales; a rel_l2 of exactly 0 sits on its own line under the axis, labelled 0."""
    width, height, left, right, top, bottom = SCATTER_SIZE
    (x_low, x_high), (y_low, y_high) = x_range, y_range
    zero_y = height - bottom + 6
    axis_y = height - bottom - 12

    def x_of(value: float) -> float:
        return left + (math.log10(value) - x_low) / (x_high - x_low) * (width - left - right)

    def y_of(value: float) -> float:
        if value <= 0:
            return zero_y
        return top + (y_high - math.log10(value)) / (y_high - y_low) * (axis_y - top)

    name = html.escape(target, quote=True)
    parts = [
        f'<svg class="scatter-panel" data-target="{name}" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" '
        f'role="img" aria-label="target {name}: worst rel_l2 against batch-1 p50 latency, log scales">',
        f'<text class="panel" x="{left}" y="14">target {html.escape(target)}</text>',
    ]
    for k in range(x_low, x_high + 1):
        x = x_of(10.0**k)
        parts.append(f'<line class="grid" x1="{x:.1f}" y1="{top}" x2="{x:.1f}" y2="{zero_y}"/>')
        parts.append(f'<text x="{x:.1f}" y="{zero_y + 16}" text-anchor="middle">{10.0**k:g}</text>')
    for k in range(y_low, y_high + 1):
        y = y_of(10.0**k)
        parts.append(f'<line class="grid" x1="{left}" y1="{y:.1f}" x2="{width - right}" y2="{y:.1f}"/>')
        parts.append(f'<text x="{left - 6}" y="{y + 4:.1f}" text-anchor="end">1e{k}</text>')
    parts.append(f'<text x="{left - 6}" y="{zero_y + 4}" text-anchor="end">0</text>')
    parts.append(f'<line class="axis" x1="{left}" y1="{axis_y}" x2="{width - right}" y2="{axis_y}"/>')
    parts.append(f'<line class="axis" x1="{left}" y1="{top}" x2="{left}" y2="{zero_y + 4}"/>')
    parts.append(
        f'<text x="{(left + width - right) / 2}" y="{height - 8}" text-anchor="middle">'
        "latency_p50_ms_bs1 (ms, log) / 延迟</text>"
    )
    parts.append(
        f'<text transform="translate(14 {(top + axis_y) / 2}) rotate(-90)" text-anchor="middle">'
        "worst rel_l2 (log) / 相对误差</text>"
    )
    for index, row in enumerate(rows):
        x, y = x_of(row["latency_p50_ms_bs1"]), y_of(row["rel_l2"])
        model, status = html.escape(row["model"]), html.escape(row["status"])
        tip = (
            f"{row_key(row)}: {row['status']}, rel_l2 {format_cell(row['rel_l2'])}, "
            f"latency_p50_ms_bs1 {format_cell(row['latency_p50_ms_bs1'])} ms"
        )
        label = ""
        if len(rows) <= 12:  # more labels than that would cover each other: the tooltip names the point
            dy = -8 if index % 2 == 0 else 16
            # Left of a point in the right half, so the name stays inside the panel.
            x_label, anchor = (x - 7, "end") if x > (left + width - right) / 2 else (x + 7, "start")
            label = f'<text x="{x_label:.1f}" y="{y + dy:.1f}" text-anchor="{anchor}">{model}</text>'
        parts.append(
            f'<g data-key="{html.escape(row_key(row), quote=True)}" data-model="{model}" data-target="{name}" '
            f'data-status="{status}"><circle cx="{x:.1f}" cy="{y:.1f}" r="5" '
            f'fill="{STATUS_COLOURS.get(row["status"], "#1b1f24")}" stroke="#fff"><title>{html.escape(tip)}</title>'
            f"</circle>{label}</g>"
        )
    if not rows:
        parts.append(f'<text x="{width / 2}" y="{height / 2}" text-anchor="middle">no row has both numbers</text>')
    parts.append("</svg>")
    return "".join(parts)


def scatter(rows: list[dict], reasons: dict[str, dict]) -> str:
    """Accuracy against speed, one panel per target on the same axes (small multiples), one
    point per model coloured by status; rows without both numbers are listed with why."""
    order = ranked(rows)
    plotted = [r for r in order if r["latency_p50_ms_bs1"] is not None and r["rel_l2"] is not None]
    left_out = [r for r in order if r not in plotted]
    x_range = _decades([r["latency_p50_ms_bs1"] for r in plotted], 1) if plotted else (0, 1)
    positive = [r["rel_l2"] for r in plotted if r["rel_l2"] > 0]
    y_range = _decades(positive, 2) if positive else (-6, 0)
    panels = "".join(
        _panel(target, [r for r in plotted if r["target"] == target], x_range, y_range) for target in targets_in(rows)
    )
    legend = " ".join(status_span(s) for s in STATUS_ORDER if any(r["status"] == s for r in plotted))
    missing = "; ".join(
        f"{html.escape(row_key(r))} ("
        + ", ".join(
            f"{column} {_cell(shown(None, row_reasons(reasons, r).get(column, 'not measured')), '')}"
            for column in ("rel_l2", "latency_p50_ms_bs1")
            if r[column] is None
        )
        + ")"
        for r in left_out
    )
    caption = (
        "Accuracy vs speed per target / 各目标的精度与速度 (same axes): "
        "lower is more accurate, further left is faster. "
        + (f"Points: {legend}. " if legend else "")
        + (f"Not plotted: {missing}." if missing else "")
    )
    return (
        f'<figure class="scatter" id="scatter"><div class="multiples">{panels}</div>'
        f"<figcaption>{caption}</figcaption></figure>"
    )
