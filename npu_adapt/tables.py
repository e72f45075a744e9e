"""Tables built with pandas from the workflow's JSON files.

Every CSV is written by :func:`npu_adapt.io.write_csv` under one convention (``null``,
``true``/``false``, floats in full; see there) and reads back with :func:`npu_adapt.io.read_csv`.
The leaderboard's numbers are the summaries' numbers, unrounded: a cell read back with
pandas equals the value in summary.json.
"""

from __future__ import annotations

from pathlib import Path

from npu_adapt.io import write_csv
from npu_adapt.reports import LEADERBOARD_COLUMNS, leaderboard_rows


def leaderboard_frame(summaries: list[dict]):
    """One row per model and target (reports.leaderboard_rows), in LEADERBOARD_COLUMNS order; object
    dtype, so every cell keeps the exact value (and type) its summary.json holds."""
    import pandas as pd

    return pd.DataFrame(leaderboard_rows(summaries), columns=LEADERBOARD_COLUMNS, dtype=object)


def write_leaderboard_csv(path: str | Path, summaries: list[dict]) -> list[dict]:
    """results/leaderboard.csv from the summaries; returns its rows (as dicts)."""
    rows = leaderboard_frame(summaries).to_dict("records")
    write_csv(path, rows, LEADERBOARD_COLUMNS)
    return rows
