"""The one CSV convention (null, true/false, floats in full) of every table the workflow writes,
checked by reading the CSVs back with pandas: dtypes, and numbers identical to the JSON."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from conftest import load

from npu_adapt.cards import leaderboard_markdown
from npu_adapt.io import read_csv, write_csv
from npu_adapt.reports import LEADERBOARD_COLUMNS
from npu_adapt.tables import leaderboard_row, null_reasons

MODELS = ("tiny-bert", "tiny-convnext")


def test_convention_round_trips_through_pandas(tmp_path):
    third = 1 / 3
    rows = [
        {
            "name": "a",
            "flag": True,
            "maybe": np.bool_(False),
            "count": 3,
            "sparse": None,
            "value": third,
            "tiny": 1e-300,
            "shape": [1, 3, 224],
            "reason": "NA",
        },
        {
            "name": "b",
            "flag": False,
            "maybe": None,
            "count": 0,
            "sparse": 7,
            "value": math.nan,
            "tiny": math.inf,
            "shape": [2],
            "reason": None,
            "ignored": "x",
        },
    ]
    columns = ["name", "flag", "maybe", "count", "sparse", "value", "tiny", "shape", "reason"]
    path = tmp_path / "t.csv"
    write_csv(path, rows, columns)
    text = path.read_text().splitlines()
    assert text[0] == ",".join(columns)
    assert text[1] == f"a,true,false,3,null,{third!r},1e-300,1x3x224,NA"
    assert text[2] == "b,false,null,0,7,null,null,2,null"  # NaN/Inf are null, as in the JSON
    table = read_csv(path)
    assert table["flag"].dtype == np.bool_ and table["flag"].tolist() == [True, False]
    assert table["count"].dtype == np.int64 and table["value"].dtype == np.float64
    assert table["value"][0] == third  # every digit kept
    assert table["sparse"].isna().tolist() == [True, False] and table["sparse"][1] == 7
    assert table["maybe"].tolist()[0] is False and pd.isna(table["maybe"][1])
    assert table["reason"].tolist()[0] == "NA" and pd.isna(table["reason"][1])  # only "null" is missing
    assert table["shape"].tolist() == ["1x3x224", "2"]
    write_csv(tmp_path / "empty.csv", [], columns)
    assert read_csv(tmp_path / "empty.csv").columns.tolist() == columns


@pytest.mark.e2e
def test_every_csv_reads_back_with_pandas_and_equals_its_json(tiny_run):
    results = tiny_run / "results"
    board = read_csv(results / "leaderboard.csv")
    assert board.columns.tolist() == LEADERBOARD_COLUMNS
    assert board["pretrained"].dtype == np.bool_ and board["best_batch"].dtype == np.int64
    for column in (
        "params_m",
        "rel_l2",
        "cosine",
        "latency_p50_ms_bs1",
        "cv_pct",
        "best_throughput",
        "peak_host_rss_mb",
    ):
        assert board[column].dtype == np.float64, column
    assert board["ttft_ms"].isna().all() and board["decode_tokens_per_s"].isna().all()  # no causal LM here
    summaries = {model: load(results / f"{model}/summary.json") for model in MODELS}
    for record in board.to_dict("records"):
        expected = leaderboard_row(summaries[record["model"]], record["target"])
        for column in LEADERBOARD_COLUMNS:
            value = expected[column]
            if value is None:
                assert pd.isna(record[column]), (record["model"], column)
            else:
                assert record[column] == value, (
                    record["model"],
                    column,
                    record[column],
                    value,
                )  # identical, not rounded

    for model in MODELS:
        compare = load(results / f"{model}/fp32/compare.json")
        table = read_csv(results / f"{model}/fp32/compare.csv").set_index("output")
        assert table["nan_target"].dtype == np.int64 and table["rel_l2"].dtype == np.float64
        for name, metrics in compare["outputs"].items():
            for key in ("status", "rel_l2", "cosine", "max_abs_diff", "nan_target"):
                assert table.loc[name, key] == metrics[key], (model, name, key)
            assert table.loc[name, "shape_target"] == "x".join(map(str, metrics["shape_target"]))
        bench = load(results / f"{model}/fp32/benchmark.json")
        table = read_csv(results / f"{model}/fp32/benchmark.csv")
        assert table["batch_size"].dtype == np.int64 and table["budget_exhausted"].dtype == np.bool_
        assert "ttft_ms" not in table.columns  # LLM columns only for causal LMs
        for row, result in zip(table.to_dict("records"), bench["results"]):
            for key in ("batch_size", "runs", "mean_ms", "p50_ms", "throughput", "peak_mem_mb", "budget_exhausted"):
                assert row[key] == result[key], (model, key)


@pytest.mark.e2e
def test_llm_columns_say_why_they_are_empty(tiny_run):
    summary = load(tiny_run / "results/tiny-bert/summary.json")
    row = leaderboard_row(summary, "fp32")
    reasons = null_reasons(row, summary)
    assert reasons["ttft_ms"] == reasons["decode_tokens_per_s"] == "not a causal LM: family hf_encoder"
    assert "n/a (not a causal LM: family hf_encoder)" in leaderboard_markdown([row], {"tiny-bert/fp32": reasons})
