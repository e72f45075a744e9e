"""The leaderboard stage: results/leaderboard.csv, .md and .html, one row per model and target,
from the models' summary.json files only (rows: npu_adapt.tables; Markdown: npu_adapt.cards;
HTML: npu_adapt.html_report)."""

from __future__ import annotations

import logging
from pathlib import Path

from npu_adapt.cards import leaderboard_markdown
from npu_adapt.html_report import leaderboard_page
from npu_adapt.tables import null_reasons, row_key, write_leaderboard_csv

log = logging.getLogger("npu_adapt")


def write_leaderboard(
    summaries: dict[str, dict], csv_path: Path, md_path: Path, html_path: Path
) -> tuple[list[dict], dict[str, dict]]:
    """The three leaderboards of ``summaries`` (by model). Returns their rows and, by row_key,
    why each null cell of a row is null (the Markdown and HTML print the reason in its place)."""
    rows = write_leaderboard_csv(csv_path, list(summaries.values()))
    reasons = {row_key(row): null_reasons(row, summaries[row["model"]]) for row in rows}
    md_path.write_text(leaderboard_markdown(rows, reasons))
    html_path.write_text(leaderboard_page(rows, reasons, summaries, html_path.parent))
    for row in rows:
        log.info("%s: %s", row_key(row), row["status"])
    return rows, reasons
