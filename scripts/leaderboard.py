"""leaderboard: results/leaderboard.csv, .md and .html from the summaries
(npu_adapt.leaderboard_stage)."""

from pathlib import Path

from npu_adapt.io import read_json
from npu_adapt.jobs import start_job
from npu_adapt.leaderboard_stage import write_leaderboard


def main(smk):
    start_job(smk.log[0])
    summaries = {summary["model"]: summary for summary in map(read_json, smk.input.summaries)}
    write_leaderboard(summaries, Path(smk.output.csv), Path(smk.output.md), Path(smk.output.html))


if __name__ == "__main__":
    main(snakemake)  # noqa: F821 (injected by Snakemake's script directive)
