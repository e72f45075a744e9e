"""The HTML leaderboard renders in a real browser: headless Chromium (Debian's `chromium`)
loads results/leaderboard.html from disk with networking off, runs its inline script, and
the dumped DOM holds the table rows, sorted as asked.

Skipped when no Chromium is installed (CI installs it: apt-get install -y chromium).
"""

from __future__ import annotations

import csv
import html.parser
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import load

from npu_adapt.reports import format_cell

CHROMIUM = next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium not found: install Debian's chromium (apt-get update && apt-get install -y chromium) to render the HTML leaderboard",
    ),
]

FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--enable-logging=stderr",
    "--v=0",
]


def render(page: Path, fragment: str = "") -> tuple[str, str]:
    """The DOM after Chromium loaded ``page`` and ran its scripts, and Chromium's log."""
    with tempfile.TemporaryDirectory(prefix="npu-adapt-chromium-") as profile:
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", "--dump-dom", page.resolve().as_uri() + fragment],
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert done.returncode == 0, done.stderr[-3000:]
    console_errors = [
        line for line in done.stderr.splitlines() if "CONSOLE" in line and ("Uncaught" in line or "Error" in line)
    ]
    assert not console_errors, console_errors
    return done.stdout, done.stderr


class Dom(html.parser.HTMLParser):
    """What the tests look at in a dumped DOM: the leaderboard table, its rows and cells."""

    def __init__(self, text: str):
        super().__init__()
        self.table: dict = {}
        self.headers: dict[str, dict] = {}
        self.rows: list[str] = []
        self.cells: dict[str, list[str]] = {}
        self.images: list[str] = []
        self._row = None
        self._in_cell = False
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "leaderboard":
            self.table = attrs
        elif tag == "th" and "data-column" in attrs:
            self.headers[attrs["data-column"]] = attrs
        elif tag == "tr" and "data-model" in attrs:
            self._row = attrs["data-model"]
            self.rows.append(self._row)
            self.cells[self._row] = []
        elif tag == "td" and self._row:
            self._in_cell = True
            self.cells[self._row].append("")
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False
        elif tag == "tr":
            self._row = None

    def handle_data(self, data):
        if self._in_cell and self._row:
            self.cells[self._row][-1] += data


def csv_rows(workdir: Path) -> dict[str, dict]:
    with open(workdir / "results/leaderboard.csv") as handle:
        return {row["model"]: row for row in csv.DictReader(handle)}


def test_leaderboard_renders_its_rows_in_headless_chromium(tiny_run):
    dom = Dom(render(tiny_run / "results/leaderboard.html")[0])
    assert dom.table.get("data-ready") == "true", "the inline script ran to its end"
    rows = csv_rows(tiny_run)
    # Both models are self-checks: the page lists them fastest first (batch-1 latency).
    assert dom.rows == sorted(rows, key=lambda model: float(rows[model]["latency_p50_ms_bs1"]))
    for model, cells in dom.cells.items():
        assert cells[0] == model and "self-check" in cells  # CPU float32 on both sides
        assert format_cell(float(rows[model]["best_throughput"])) in cells  # the CSV's number, as reports print it
    assert len(dom.images) == len(rows) and all(src.startswith("data:image/png;base64,") for src in dom.images)


@pytest.mark.parametrize("column", ["model", "best_throughput"])
@pytest.mark.parametrize("descending", [False, True])
def test_leaderboard_sorts_in_the_browser(tiny_run, column, descending):
    dom = Dom(render(tiny_run / "results/leaderboard.html", f"#sort={'-' if descending else ''}{column}")[0])
    assert dom.table.get("data-sorted-by") == ("-" if descending else "") + column
    assert dom.headers[column].get("aria-sort") == ("descending" if descending else "ascending")
    rows = csv_rows(tiny_run)
    key = (lambda model: model) if column == "model" else (lambda model: float(rows[model][column]))
    assert dom.rows == sorted(rows, key=key, reverse=descending)


def test_model_page_renders_with_its_plot(tiny_run):
    summary = load(tiny_run / "results/tiny-convnext/summary.json")
    text = render(tiny_run / "results/tiny-convnext/summary.html")[0]
    dom = Dom(text)
    assert len(dom.images) == 1 and dom.images[0].startswith("data:image/png;base64,")
    assert "<h2>Accuracy / 精度对比</h2>" in text
    logits = summary["accuracy"]["outputs"]["logits"]
    assert f"<tr><td>logits</td><td>[1, 1000]</td><td>{format_cell(logits['max_abs_diff'])}</td>" in text
