"""The HTML leaderboard renders in a real browser: headless Chromium (Debian's `chromium`)
loads results/leaderboard.html from disk with networking off, runs its inline script, and
the dumped DOM holds the table rows, sorted and filtered as asked, each row's details and the
scatter; at laptop size (1366x768) every key column is on the first screen.

Skipped when no Chromium is installed (CI installs it: apt-get install -y chromium).
"""

from __future__ import annotations

import csv
import html.parser
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
from conftest import load

from npu_adapt.html_report import KEY_COLUMNS, STATUS_COLOURS
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


LAPTOP = (1366, 768)


def render(page: Path, fragment: str = "", action: str = "--dump-dom") -> tuple[str, str]:
    """The DOM after Chromium loaded ``page`` in a laptop-sized window and ran its scripts
    (``action`` --screenshot=PATH instead: the first screen as PNG), and Chromium's log."""
    with tempfile.TemporaryDirectory(prefix="npu-adapt-chromium-") as profile:
        window = f"--window-size={LAPTOP[0]},{LAPTOP[1]}"
        done = subprocess.run(
            [CHROMIUM, *FLAGS, f"--user-data-dir={profile}", window, action, page.resolve().as_uri() + fragment],
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
    """What the tests look at in a dumped DOM: the leaderboard table, its rows (hidden ones
    filtered out), their key cells and details, the scatter's points."""

    def __init__(self, text: str):
        super().__init__()
        self.table: dict = {}
        self.headers: dict[str, dict] = {}
        self.rows: list[str] = []
        self.hidden: set[str] = set()
        self.cells: dict[str, list[str]] = {}
        self.details: dict[str, dict[str, str]] = {}
        self.points: dict[str, dict] = {}
        self.images: list[str] = []
        self._row = None
        self._in_cell = False
        self._entry_hidden = False
        self._details = None
        self._term = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "leaderboard":
            self.table = attrs
        elif tag == "th" and "data-column" in attrs:
            self.headers[attrs["data-column"]] = attrs
        elif tag == "tbody":
            self._entry_hidden = "hidden" in attrs
        elif tag == "tr" and "data-model" in attrs:
            self._row = attrs["data-model"]
            self.rows.append(self._row)
            self.cells[self._row] = []
            if self._entry_hidden:
                self.hidden.add(self._row)
        elif tag == "tr" and "data-details-of" in attrs:
            self._details = self.details.setdefault(attrs["data-details-of"], {})
        elif tag == "dt" and self._details is not None:
            self._term = ""
        elif tag == "dd" and self._details is not None:
            self._details[self._term] = ""
        elif tag == "td" and self._row:
            self._in_cell = True
            self.cells[self._row].append("")
        elif tag == "g" and "data-model" in attrs:
            self.points[attrs["data-model"]] = attrs
        elif tag == "circle" and self.points:
            self.points[list(self.points)[-1]].update(attrs)
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False
        elif tag == "tr":
            self._row = self._details = None

    def handle_data(self, data):
        if self._in_cell and self._row:
            self.cells[self._row][-1] += data
        elif self._details is not None and self._term is not None:
            if self._term in self._details:
                self._details[self._term] += data
            else:
                self._term += data

    @property
    def shown(self) -> list[str]:
        return [row for row in self.rows if row not in self.hidden]


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
    # A row's details (hidden until expanded): every other leaderboard column, the CSV's numbers as reports print
    # them, and the reason.
    for model, row in rows.items():
        details = dom.details[model]
        assert set(details) >= {"task", "params_m", "target_dtype", "cv_pct", "best_batch", "param_bytes", "reason"}
        assert details["params_m"] == format_cell(float(row["params_m"]))
        assert details["cv_pct"] == format_cell(float(row["cv_pct"])) and details["reason"] == row["reason"]
        assert details["peak_device_mem_mb"].startswith("n/a (")  # a missing key value says why, here
    # The scatter: one point per model (rel_l2 0 on its own line under the log axis), coloured by status.
    assert set(dom.points) == set(rows)
    assert {point["data-status"] for point in dom.points.values()} == {"self-check"}
    assert {point["fill"] for point in dom.points.values()} == {STATUS_COLOURS["self-check"]}
    by_speed = sorted(rows, key=lambda model: float(rows[model]["latency_p50_ms_bs1"]))
    assert float(dom.points[by_speed[0]]["cx"]) < float(dom.points[by_speed[-1]]["cx"])  # faster is further left


def test_key_columns_fit_a_laptop_screen(tiny_run, tmp_path):
    dom = Dom(render(tiny_run / "results/leaderboard.html")[0])
    assert dom.table.get("data-viewport") == str(LAPTOP[0])
    assert list(dom.headers) == KEY_COLUMNS
    rights = {column: int(header["data-right"]) for column, header in dom.headers.items()}
    assert all(0 < right <= LAPTOP[0] for right in rights.values()), rights
    shot = tmp_path / "leaderboard-1366x768.png"
    render(tiny_run / "results/leaderboard.html", action=f"--screenshot={shot}")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, len(png)  # a rendered page, not a blank one
    assert struct.unpack(">II", png[16:24]) == LAPTOP  # IHDR width, height


@pytest.mark.parametrize(
    ("fragment", "shown"),
    [
        ("#family=hf_encoder", ["tiny-bert"]),
        ("#family=timm_image", ["tiny-convnext"]),
        ("#status=self-check", ["tiny-bert", "tiny-convnext"]),
        ("#status=warn", []),
        ("#sort=-model&status=self-check&family=timm_image", ["tiny-convnext"]),
    ],
)
def test_leaderboard_filters_by_status_and_family(tiny_run, fragment, shown):
    dom = Dom(render(tiny_run / "results/leaderboard.html", fragment)[0])
    assert sorted(dom.shown) == shown and dom.table.get("data-shown") == str(len(shown))
    assert len(dom.rows) == 2  # filtered rows stay in the page, hidden
    hidden_points = {model for model, point in dom.points.items() if point.get("opacity") != "1"}
    assert hidden_points == set(dom.rows) - set(shown)  # the scatter follows the filters


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
