"""The leaderboard stage: results/leaderboard.csv, .md and .html, one row per model and target,
from the models' summary.json files (and, on the HTML page, their benchmark plots). Rows:
npu_adapt.tables; Markdown: npu_adapt.cards; HTML: npu_adapt.html_board."""

from __future__ import annotations

import logging
from pathlib import Path

from npu_adapt.cards import leaderboard_markdown
from npu_adapt.html_board import leaderboard_page
from npu_adapt.io import write_csv
from npu_adapt.reports import LEADERBOARD_COLUMNS
from npu_adapt.tables import leaderboard_rows, null_reasons, row_key

log = logging.getLogger("npu_adapt")


def leaderboard(summaries: dict[str, dict]) -> tuple[list[dict], dict[str, dict]]:
    """The rows of ``summaries`` (by model), one per model and target, and, by row_key, why
    each null cell of a row is null (the Markdown and HTML print the reason in its place)."""
    rows = leaderboard_rows(list(summaries.values()))
    return rows, {row_key(row): null_reasons(row, summaries[row["model"]]) for row in rows}


def write_leaderboard(
    summaries: dict[str, dict], csv_path: Path, md_path: Path, html_path: Path
) -> tuple[list[dict], dict[str, dict]]:
    """The three leaderboards of ``summaries`` (by model); returns what :func:`leaderboard` does."""
    rows, reasons = leaderboard(summaries)
    write_csv(csv_path, rows, LEADERBOARD_COLUMNS)
    md_path.write_text(leaderboard_markdown(rows, reasons))
    html_path.write_text(leaderboard_page(rows, reasons, summaries, html_path.parent))
    for row in rows:
        log.info("%s: %s", row_key(row), row["status"])
    return rows, reasons
