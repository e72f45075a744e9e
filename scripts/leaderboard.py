"""leaderboard: one row per model (CSV and Markdown), from the summaries."""

import csv
from pathlib import Path

from npu_adapt.io import read_json
from npu_adapt.jobs import setup_logging
from npu_adapt.reports import LEADERBOARD_COLUMNS, format_cell, leaderboard_markdown, leaderboard_row


def main(smk):
    log = setup_logging(smk.log[0])
    rows = [leaderboard_row(read_json(path)) for path in smk.input.summaries]
    with open(smk.output.csv, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(LEADERBOARD_COLUMNS)
        for row in rows:
            writer.writerow([format_cell(row[column]) for column in LEADERBOARD_COLUMNS])
    Path(smk.output.md).write_text(leaderboard_markdown(rows))
    for row in rows:
        log.info("%s: %s", row["model"], row["status"])


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
