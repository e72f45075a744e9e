"""leaderboard: one row per model and target as CSV, Markdown and a self-contained HTML page,
from the summaries."""

from pathlib import Path

from npu_adapt.cards import leaderboard_markdown
from npu_adapt.html_report import leaderboard_page
from npu_adapt.io import read_json
from npu_adapt.jobs import setup_logging
from npu_adapt.tables import null_reasons, row_key, write_leaderboard_csv


def main(smk):
    log = setup_logging(smk.log[0])
    summaries = {summary["model"]: summary for summary in map(read_json, smk.input.summaries)}
    rows = write_leaderboard_csv(smk.output.csv, list(summaries.values()))
    reasons = {row_key(row): null_reasons(row, summaries[row["model"]]) for row in rows}
    Path(smk.output.md).write_text(leaderboard_markdown(rows, reasons))
    Path(smk.output.html).write_text(leaderboard_page(rows, reasons, summaries, Path(smk.output.html).parent))
    for row in rows:
        log.info("%s: %s", row_key(row), row["status"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
