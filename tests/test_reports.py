"""The generated reports agree with the JSON files they are generated from.

The consistency check parses each model card (README.md) and leaderboard.md, and looks
every number it finds up in the model's JSON files: a number that is not there, an empty
table cell, a missing value printed as null/None instead of ``n/a (why)``, or a ``$name``
left unexpanded fails the test.
"""

from __future__ import annotations

import csv
import hashlib
import html.parser
import json
import math
import os
import re
from pathlib import Path

import pytest
import yaml
from broken_models import FAILS, NO_WEIGHTS
from conftest import copy_of, load, run_snakemake, tiny_config
from two_targets import two_target_summary, write_reports

from npu_adapt.cards import front_matter, model_card, targets_of
from npu_adapt.reports import LEADERBOARD_COLUMNS, format_cell
from npu_adapt.tables import row_key

pytestmark = pytest.mark.e2e  # runs Snakemake or builds torch models

# A number standing alone: not part of a word, a version (2.14.1), a path or a hash.
NUMBER = re.compile(r"(?<![\w.\-/+])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w.])", re.ASCII)
UNEXPANDED = re.compile(r"\$\w+")
MISSING_SPELLINGS = {"null", "None", "none", "nan", "NaN", "", "-"}


def model_json_files(workdir: Path, model: str) -> list[Path]:
    """Every JSON file of the model's run: its summary, each target's compare.json and
    benchmark.json, the dumps' index files (wherever the targets' directories are)."""
    results = workdir / "results"
    return [
        results / "env.json",
        workdir / "weights" / model / "manifest.json",
        *sorted((results / model).rglob("*.json")),
    ]


def known_numbers(paths: list[Path]) -> set[float]:
    """Every number in the JSON documents (also those inside strings, e.g. a reason), as
    stored and rounded to the reports' 6 significant digits."""
    found: set[float] = set()

    def visit(value):
        if isinstance(value, bool) or value is None:
            return
        if isinstance(value, (int, float)):
            found.update({float(value), float(f"{value:.6g}")})
        elif isinstance(value, str):
            found.update(float(token) for token in NUMBER.findall(value))
        elif isinstance(value, dict):
            list(map(visit, value.values()))
            list(map(visit, value.keys()))
        elif isinstance(value, list):
            list(map(visit, value))

    for path in paths:
        visit(load(path))
    return found


def unknown_numbers(text: str, known: set[float]) -> list[str]:
    missing = []
    for token in NUMBER.findall(text):
        value = float(token)
        if value not in known and float(f"{value:.6g}") not in known:
            missing.append(token)
    return missing


def split_front_matter(text: str) -> tuple[dict, str]:
    assert text.startswith("---\n"), "a model card starts with YAML front matter"
    head, sep, body = text[4:].partition("\n---\n")
    assert sep, "front matter is closed by ---"
    return yaml.safe_load(head), body


def markdown_tables(text: str) -> list[list[list[str]]]:
    """Every pipe table of a Markdown text as rows of cells (header first, separator dropped)."""
    tables, current = [], None
    for line in text.splitlines():
        if line.startswith("|"):
            cells = [cell.strip().replace("\\|", "|") for cell in re.split(r"(?<!\\)\|", line.strip())[1:-1]]
            if current is None:
                current = []
                tables.append(current)
            if not all(re.fullmatch(r"-+", cell) for cell in cells):
                current.append(cells)
        else:
            current = None
    return tables


def link_text(cell: str) -> str:
    match = re.fullmatch(r"\[(.*)\]\((.*)\)", cell)
    return match.group(1) if match else cell


def check_report_text(text: str, known: set[float], where: str) -> list[list[list[str]]]:
    """The consistency rules every generated Markdown report obeys; returns its tables."""
    assert not UNEXPANDED.search(text), f"{where}: unexpanded {UNEXPANDED.search(text).group()}"
    assert not (missing := unknown_numbers(text, known)), f"{where}: numbers not in the JSON files: {missing}"
    tables = markdown_tables(text)
    assert tables, f"{where}: no table"
    for table in tables:
        width = len(table[0])
        for row in table:
            assert len(row) == width, f"{where}: ragged row {row}"
            for cell in row:
                assert cell not in MISSING_SPELLINGS, f"{where}: empty or null cell in {row}"
                if cell.startswith("n/a"):
                    assert re.fullmatch(r"n/a \(.+\)", cell), f"{where}: n/a without its reason: {cell!r}"
    return tables


def table_with(tables: list, first_header: str, *more: str) -> list[list[str]]:
    return next(t for t in tables if t[0][0] == first_header and all(h in t[0] for h in more))


def as_dicts(table: list[list[str]]) -> list[dict]:
    return [dict(zip(table[0], row)) for row in table[1:]]


def card_section(body: str, heading: str) -> str:
    """The text of one ``## `` section of a card, its heading included."""
    start = body.index(heading + "\n")
    end = body.find("\n## ", start + len(heading))
    return body[start : end if end >= 0 else len(body)]


def check_target(workdir: Path, model: str, body: str, name: str, target: dict) -> None:
    """One target's accuracy and performance sections agree with its compare.json and
    benchmark.json (``target["files"]``: its directory under results/{model})."""
    directory = workdir / "results" / model / target["files"]
    compare, bench = load(directory / "compare.json"), load(directory / "benchmark.json")
    assert compare == target["accuracy"] and bench == target["benchmark"]
    section = card_section(body, f"## Accuracy / 精度对比 — target `{name}`")
    tables = markdown_tables(section)
    outputs = compare["outputs"]
    accuracy = table_with(tables, "output", "rel_l2", "cosine") if outputs else [[]]
    assert [row["output"] for row in as_dicts(accuracy)] == [
        output for output, m in outputs.items() if m["kind"] != "token_ids"
    ]
    for row in as_dicts(accuracy):
        metrics = outputs[row["output"]]
        for key in ("max_abs_diff", "mean_abs_diff", "rel_l2", "cosine", "top1_match", "top5_match"):
            if metrics[key] is None:
                assert row[key].startswith("n/a ("), (key, row)
            else:
                assert row[key] == format_cell(metrics[key]), (key, row, metrics[key])
        ratio = metrics.get("error_ratio_vs_cpu_same_dtype")
        assert row["error_ratio_vs_cpu_same_dtype"] == (
            format_cell(ratio)
            if ratio is not None
            else f"n/a ({metrics.get('error_ratio_reason') or 'not recorded in compare.json'})"
        )
        assert row["ascend_verdict"] == metrics["ascend_verdict"]
        assert row["status"] == metrics["status"] or row["status"].startswith(f"{metrics['status']}: ")
    assert ("**Self-check / 自检:**" in section) is bool(target["self_check"])

    section = card_section(body, f"## Performance / 性能 — target `{name}`")
    if bench["status"] != "blocked":
        perf = as_dicts(table_with(markdown_tables(section), "batch", "mean_ms"))
        assert [int(row["batch"]) for row in perf] == [r["batch_size"] for r in bench["results"]]
        for row, result in zip(perf, bench["results"]):
            if result["status"] == "ok":
                assert row["mean_ms"] == format_cell(result["mean_ms"]) and row["throughput (items/s)"] == format_cell(
                    result["throughput"]
                )
        assert f"]({target['files'] + '/' if target['files'] else ''}benchmark.png)" in section


def check_card(workdir: Path, model: str) -> tuple[dict, list]:
    """Check one model card against its JSON files; returns its front matter and tables."""
    text = (workdir / f"results/{model}/README.md").read_text()
    meta, body = split_front_matter(text)
    tables = check_report_text(text, known_numbers(model_json_files(workdir, model)), f"{model}/README.md")
    summary = load(workdir / f"results/{model}/summary.json")
    manifest = load(workdir / f"weights/{model}/manifest.json")
    assert meta["pretrained"] is manifest["pretrained"]
    targets = targets_of(summary)
    ran_on = set()
    for target in targets.values():
        device = target["placement"]["device"] or target["placement"]["requested_device"]
        if device == "auto":  # blocked before the device was chosen: the machine's auto device
            device = load(workdir / "results/env.json")["auto_device"]
        ran_on.add({"cpu": "CPU", "cuda": "GPU", "npu": "NPU"}[device.split(":")[0]])
    assert meta["hardware"] == next(h for h in ("NPU", "GPU", "CPU") if h in ran_on)
    headings = [
        "## Targets / 目标",
        "## Model information / 模型信息",
        "## Environment / 运行环境",
        *(f"## {part} — target `{name}`" for name in targets for part in ("Accuracy / 精度对比", "Performance / 性能")),
        "## How to reproduce / 复现方法",
        "## Evidence files / 证据文件",
    ]
    positions = [body.index(heading + "\n") for heading in headings]
    assert positions == sorted(positions), "the card's sections are in order"
    assert f"snakemake --cores 1 results/{model}/README.md --configfile {model}.yaml --replace-workflow-config" in body
    # The configuration printed for reproduction is exactly the one summary.json recorded.
    config_block = re.search(r"```yaml\n(.*?)```", body, re.S).group(1)
    assert yaml.safe_load(config_block) == summary["config"]
    # One status line per target, then one placement row per target beside the reference's.
    status_rows = as_dicts(table_with(tables, "target / 目标", "status / 状态", "self-check"))
    assert [row["target / 目标"] for row in status_rows] == list(targets)
    for row, target in zip(status_rows, targets.values()):
        assert row["status / 状态"].split(":")[0] == target["status"]
    placements = as_dicts(table_with(tables, "placement / 运行位置", "dtype"))
    assert [row["placement / 运行位置"] for row in placements] == ["reference", *(f"target {name}" for name in targets)]
    for name, target in targets.items():
        check_target(workdir, model, body, name, target)

    evidence = as_dicts(table_with(tables, "evidence file / 证据文件", "sha256"))
    assert [(link_text(row["evidence file / 证据文件"]), row["sha256"]) for row in evidence] == [
        (os.path.relpath(item["path"], f"results/{model}"), item["sha256"]) for item in summary["evidence"]
    ]
    for row in evidence:
        path = workdir / f"results/{model}" / link_text(row["evidence file / 证据文件"])
        assert hashlib.sha256(path.read_bytes()).hexdigest() == row["sha256"], f"evidence {row} does not match its file"
    return meta, tables


def report_spelling(cell: str) -> str:
    """A leaderboard.csv cell (numbers in full) as reports print it (6 significant digits)."""
    for parse in (int, float):
        try:
            return format_cell(parse(cell))
        except ValueError:
            pass
    return cell


def check_leaderboard(workdir: Path) -> list[dict]:
    """leaderboard.md is leaderboard.csv (one row per model x target) as reports print it,
    ranked; each row's numbers come from that model's JSON files."""
    text = (workdir / "results/leaderboard.md").read_text()
    with open(workdir / "results/leaderboard.csv") as handle:
        csv_rows = {row_key(row): row for row in csv.DictReader(handle)}
    tables = markdown_tables(text)
    assert len(tables) == 1 and tables[0][0] == LEADERBOARD_COLUMNS
    rows = as_dicts(tables[0])
    keys = [row_key({**row, "model": link_text(row["model"])}) for row in rows]
    assert sorted(keys) == sorted(csv_rows)
    for key, row in zip(keys, rows):
        model = link_text(row["model"])
        assert row["model"] == f"[{model}]({model}/README.md)"  # the row links to the model's card
        check_report_text(
            "| " + " | ".join(row.values()) + " |",
            known_numbers(model_json_files(workdir, model)),
            f"leaderboard.md row {key}",
        )
        for column in LEADERBOARD_COLUMNS[1:]:
            expected = csv_rows[key][column]
            if expected == "null":
                assert row[column].startswith("n/a ("), (key, column, row[column])
            elif column != "reason":  # the Markdown reason drops the traceback tail
                assert row[column] == report_spelling(expected), (key, column, row[column], expected)
    order = {"pass": 0, "self-check": 1, "warn": 2, "fail": 3, "error": 4, "blocked": 5}
    ranks = [
        (order[row["status"]], float(row["latency_p50_ms_bs1"]) if row["latency_p50_ms_bs1"][0].isdigit() else math.inf)
        for row in rows
    ]
    assert ranks == sorted(ranks), f"leaderboard.md is not sorted pass first, then by latency: {ranks}"
    return rows


def test_model_cards_agree_with_their_json_files(tiny_run):
    for model in ("tiny-bert", "tiny-convnext"):
        meta, tables = check_card(tiny_run, model)
        assert meta["pretrained"] is False and meta["hardware"] == "CPU"
        assert "NPU" not in meta["tags"], "a CPU run carries no Ascend tags"
        info = dict(table_with(tables, "field / 字段")[1:])
        assert info["weights"].startswith("NOT pretrained: random-init (seed 0)")
    convnext = {
        row["output"]: row for row in as_dicts(table_with(check_card(tiny_run, "tiny-convnext")[1], "output", "rel_l2"))
    }
    assert convnext["logits"]["top1_match"] == "1"
    assert convnext["features"]["top1_match"] == "n/a (not a class-score output)"


def test_leaderboard_markdown_is_the_csv_sorted(tiny_run):
    rows = check_leaderboard(tiny_run)
    assert [row["status"] for row in rows] == ["self-check", "self-check"]
    assert rows[0]["top1_match"] in ("n/a (no class-score output)", "1")


@pytest.fixture(scope="module")
def two_targets(tiny_run, tmp_path_factory):
    """The tiny run with a second target (tests/two_targets.py): a working directory with
    every report written, and its rows, reasons and summaries."""
    out = tmp_path_factory.mktemp("two-targets")
    return (out, *write_reports(tiny_run, out))


def test_two_target_cards_agree_with_their_json_files(two_targets):
    out, _, _, summaries = two_targets
    for model, summary in summaries.items():
        meta, tables = check_card(out, model)
        assert meta["hardware"] == "CPU" and "NPU" not in meta["tags"]
        status_rows = as_dicts(table_with(tables, "target / 目标", "self-check"))
        assert [(row["target / 目标"], row["self-check"]) for row in status_rows] == [
            ("fp32", "yes: determinism, not a port"),
            ("bf16", "no"),
        ]
        bf16 = summary["targets"]["bf16"]["accuracy"]
        assert status_rows[1]["worst rel_l2"] == format_cell(max(m["rel_l2"] for m in bf16["outputs"].values()))
        body = split_front_matter((out / f"results/{model}/README.md").read_text())[1]
        section = card_section(body, "## Accuracy / 精度对比 — target `bf16`")
        assert "| max_error_ratio | n/a (not set, opt-in) |" in section
        assert f"(`{bf16['error_budget']['cpu_same_dtype']}`) is the yardstick" in section
        ratios = {row["output"]: row["error_ratio_vs_cpu_same_dtype"] for row in as_dicts(markdown_tables(section)[1])}
        assert sorted(ratios.values()) == sorted(
            [
                format_cell(m["error_ratio_vs_cpu_same_dtype"])
                for m in bf16["outputs"].values()
                if m["error_ratio_vs_cpu_same_dtype"]
            ]
            + [f"n/a ({m['error_ratio_reason']})" for m in bf16["outputs"].values() if m["error_ratio_reason"]]
        )
        assert "**Verdict / 结论:** warn: " in section and "bfloat16 criteria" not in section


def test_two_target_leaderboard_markdown_has_a_row_per_model_and_target(two_targets):
    out, rows, reasons, summaries = two_targets
    table = as_dicts(markdown_tables((out / "results/leaderboard.md").read_text())[0])
    assert len(table) == len(rows) == 2 * len(summaries)
    assert sorted((row["model"], row["target_dtype"]) for row in table) == sorted(
        (f"[{model}]({model}/README.md)", dtype) for model in summaries for dtype in ("float32", "bfloat16")
    )
    assert [row["status"] for row in table] == ["self-check", "self-check", "warn", "warn"]
    for row in table:  # the reasons of a bf16 row are its own (keyed model/target)
        assert row["peak_device_mem_mb"] == "n/a (CPU target: no device memory; see peak_host_rss_mb)"


def test_two_target_leaderboard_markdown_is_the_csv_sorted(two_targets):
    out, rows, _, _ = two_targets
    table = check_leaderboard(out)
    assert sorted((link_text(row["model"]), row["target"]) for row in table) == sorted(
        (row["model"], row["target"]) for row in rows
    )


def test_npu_target_card_has_ascend_metadata(tiny_run):
    """The front matter of a card one of whose targets ran on an NPU (the real tiny summary
    with a second target whose device is an NPU: no NPU here); and of one whose NPU target
    was blocked before it chose its device."""
    summary = two_target_summary(tiny_run, "tiny-bert")
    summary["license"], summary["license_source"] = "apache-2.0", "config.yaml"
    assert front_matter(summary)["hardware"] == "CPU"
    summary["targets"]["bf16"]["placement"].update(device="npu:0", device_name="Ascend910B3")
    meta, body = split_front_matter(model_card(summary))
    assert meta == front_matter(summary)
    assert meta["hardware"] == "NPU" and body.lstrip().startswith("# tiny-bert on NPU")
    assert meta["tags"][:4] == ["NPU", "Ascend", "ascend-npu", "#+NPU"]
    assert meta["license"] == "apache-2.0" and meta["base_model"] == "npu-adapt/tiny-bert"
    assert meta["library_name"] == "transformers" and meta["pretrained"] is False
    assert "'#+NPU'" in model_card(summary) or '"#+NPU"' in model_card(summary)
    assert "| target bf16 | auto | npu:0 (Ascend910B3) | bfloat16 | default |" in body
    summary["targets"]["bf16"]["placement"].update(requested_device="npu", device=None, device_name=None)
    assert front_matter(summary)["hardware"] == "NPU"
    summary["targets"]["bf16"]["placement"]["requested_device"] = "auto"  # auto picks the CPU here
    assert front_matter(summary)["hardware"] == "CPU"


class _Page(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.rows, self.images, self.external, self.scripts = [], [], [], 0

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "tr" and "data-key" in attrs:
            self.rows.append(attrs["data-key"])
        if tag == "img":
            self.images.append(attrs["src"])
        if tag == "script":
            self.scripts += 1
            assert "src" not in attrs, "scripts are inline"
        for key in ("src", "href"):
            if re.match(r"(https?:)?//", attrs.get(key) or ""):
                self.external.append(attrs[key])


def test_leaderboard_html_is_self_contained(tiny_run):
    page = _Page()
    text = (tiny_run / "results/leaderboard.html").read_text()
    page.feed(text)
    md_order = [row_key({**row, "model": link_text(row["model"])}) for row in check_leaderboard(tiny_run)]
    assert page.rows == md_order
    assert page.external == [] and page.scripts == 1
    # One embedded benchmark plot per model x target (the PNG's own bytes, base64).
    assert len(page.images) == len(md_order) and all(src.startswith("data:image/png;base64,") for src in page.images)
    for key in md_order:
        assert f'id="model-{key.split("/")[0]}"' in text
    assert not UNEXPANDED.search(text)


def test_snakemake_report_has_leaderboard_summaries_and_plots(tiny_run, tmp_path):
    report = tmp_path / "report.html"
    # In a copy: the shared run stays as it was (the other pytest worker may be copying it).
    run_snakemake(copy_of(tiny_run, tmp_path), "--report", str(report), config=tiny_config())
    text = report.read_text()
    for category in ("Leaderboard", "Model summaries", "Benchmark plots"):
        assert category in text, category
    for name in ("leaderboard.html", "leaderboard.csv"):
        assert name in text
    for model in ("tiny-bert", "tiny-convnext"):
        for name in (
            f"results/{model}/summary.html",
            f"results/{model}/README.md",
            f"results/{model}/fp32/benchmark.png",
        ):
            assert name in text, name


def test_failing_and_blocked_models_are_reported_with_reasons(broken_run):
    """A real failing model (a bfloat16 target against a criterion no bfloat16 run meets) and a
    real blocked one (no weights offline, no fallback) get complete cards and leaderboard rows,
    as every model of the broken run does (tests/broken_models.py)."""
    rows = {link_text(row["model"]): row for row in check_leaderboard(broken_run)}
    assert rows[FAILS]["status"] == "fail" and rows[NO_WEIGHTS]["status"] == "blocked"
    blocked = rows[NO_WEIGHTS]
    assert blocked["rel_l2"] == "n/a (fp32 blocked)" and blocked["latency_p50_ms_bs1"] == "n/a (fp32 blocked)"
    assert blocked["reason"].startswith("weights: download: ") and "traceback" not in blocked["reason"]
    for model in rows:
        check_card(broken_run, model)

    _, tables = check_card(broken_run, FAILS)
    row = as_dicts(table_with(tables, "output", "rel_l2"))[0]
    compare = load(broken_run / f"results/{FAILS}/bf16/compare.json")
    assert row["status"].startswith("fail: rel_l2 ") and compare["outputs"][row["output"]]["reason"] in row["status"]
    card = (broken_run / f"results/{FAILS}/README.md").read_text()
    assert "**Verdict / 结论:** fail: " in card
    assert f"| rel_l2_fail | 1e-06 | model override (models.{FAILS}.accuracy.rel_l2_fail) |" in card
    assert "| cosine_floor | 0.99 | dtype default (bfloat16) |" in card

    meta, tables = check_card(broken_run, NO_WEIGHTS)
    assert meta["pretrained"] is False and "license" not in meta
    card = (broken_run / f"results/{NO_WEIGHTS}/README.md").read_text()
    assert "**Status / 状态:** blocked: fp32: weights: download: " in card
    assert "n/a: the comparison did not run" in card and "n/a: the benchmark did not run" in card
    summary = load(broken_run / f"results/{NO_WEIGHTS}/summary.json")
    assert json.dumps(summary["targets"]["fp32"]["accuracy"]["outputs"]) == "{}"
