"""The HTML leaderboard renders in a real browser: headless Chromium (Debian's `chromium`)
loads leaderboard.html from disk with networking off, runs its inline script, and the dumped
DOM holds one row per model x target, sorted and filtered (status, target, family) as asked,
each row's details with its target's sections and one scatter per target; at laptop size
(1366x768) every key column is on the first screen. The page is built from two-target
summaries (tests/two_targets.py: the tiny run's float32 target and a bfloat16 one).

Skipped when no Chromium is installed (CI installs it: apt-get install -y chromium).
"""

from __future__ import annotations

import html.parser
import shutil
import struct
import subprocess
import tempfile
from pathlib import Path

import pytest
from two_targets import write_reports

from npu_adapt.html_board import KEY_COLUMNS
from npu_adapt.html_scatter import STATUS_COLOURS
from npu_adapt.reports import format_cell
from npu_adapt.tables import ranked, row_key

CHROMIUM = next((path for name in ("chromium", "chromium-browser") if (path := shutil.which(name))), None)
pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(
        CHROMIUM is None,
        reason="headless Chromium not found: install Debian's chromium "
        "(apt-get update && apt-get install -y chromium) to render the HTML leaderboard",
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
    """What the tests look at in a dumped DOM: the leaderboard table, its rows by key
    (model/target; hidden ones filtered out), their key cells and details, the scatter panels
    and their points."""

    def __init__(self, text: str):
        super().__init__()
        self.table: dict = {}
        self.headers: dict[str, dict] = {}
        self.rows: list[str] = []
        self.row_attributes: dict[str, dict] = {}
        self.hidden: set[str] = set()
        self.cells: dict[str, list[str]] = {}
        self.details: dict[str, dict[str, str]] = {}
        self.details_text: dict[str, str] = {}
        self.panels: dict[str, list[str]] = {}
        self.points: dict[str, dict] = {}
        self.labels: dict[str, str] = {}
        self.images: list[str] = []
        self.strip: dict = {}
        self._row = None
        self._in_cell = False
        self._entry_hidden = False
        self._details = None
        self._details_of = None
        self._nested = 0
        self._term = None
        self._panel = None
        self._point = None
        self._text = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if tag == "table" and attrs.get("id") == "leaderboard":
            self.table = attrs
        elif tag == "strong" and "data-rows" in attrs:
            self.strip = attrs
        elif tag == "th" and "data-column" in attrs:
            self.headers[attrs["data-column"]] = attrs
        elif tag == "tbody" and attrs.get("class") == "entry":  # a row's details end where the next row begins
            self._entry_hidden = "hidden" in attrs
            self._details_of = None
        elif tag == "table" and self._details_of is not None:
            self._nested += 1
        elif tag == "tr" and "data-key" in attrs:
            self._row = attrs["data-key"]
            self.rows.append(self._row)
            self.row_attributes[self._row] = attrs
            self.cells[self._row] = []
            if self._entry_hidden:
                self.hidden.add(self._row)
        elif tag == "tr" and "data-details-of" in attrs:
            self._details_of = attrs["data-details-of"]
            self._details = self.details.setdefault(self._details_of, {})
            self.details_text[self._details_of] = ""
        elif tag == "dt" and self._details is not None:
            self._term = ""
        elif tag == "dd" and self._details is not None:
            self._details[self._term] = ""
        elif tag == "td" and self._row:
            self._in_cell = True
            self.cells[self._row].append("")
        elif tag == "svg" and "data-target" in attrs:
            self._panel = attrs["data-target"]
            self.panels[self._panel] = []
        elif tag == "g" and "data-key" in attrs:
            self._point = attrs["data-key"]
            self.points[self._point] = attrs
        elif tag == "circle" and self._point:
            self.points[self._point].update(attrs)
        elif tag == "text" and self._panel:
            self._text = ""
        elif tag == "img":
            self.images.append(attrs.get("src", ""))

    def handle_endtag(self, tag):
        if tag == "td":
            self._in_cell = False
        elif tag == "dl":
            self._details = self._term = None
        elif tag == "tr":
            self._row = None
        elif tag == "table" and self._details_of is not None:
            if self._nested:  # a table of the details' sections
                self._nested -= 1
            else:  # the leaderboard's own
                self._details_of = None
        elif tag == "text" and self._text is not None:
            if self._point:
                self.labels[self._point] = self._text
            else:
                self.panels[self._panel].append(self._text)
            self._text = None
        elif tag == "g":
            self._point = None
        elif tag == "svg":
            self._panel = None

    def handle_data(self, data):
        if self._text is not None:
            self._text += data
        if self._in_cell and self._row:
            self.cells[self._row][-1] += data
        elif self._details is not None and self._term is not None:
            if self._term in self._details:
                self._details[self._term] += data
            else:
                self._term += data
        if self._details_of is not None:
            self.details_text[self._details_of] += data

    @property
    def shown(self) -> list[str]:
        return [row for row in self.rows if row not in self.hidden]


@pytest.fixture(scope="module")
def board(tiny_run, tmp_path_factory):
    """The two-target reports of the tiny run: (leaderboard.html, rows by key, summaries)."""
    out = tmp_path_factory.mktemp("two-targets")
    rows, _, summaries = write_reports(tiny_run, out)
    return out / "results/leaderboard.html", {row_key(row): row for row in rows}, summaries


def test_leaderboard_renders_a_row_per_model_and_target(board):
    page, rows, summaries = board
    dom = Dom(render(page)[0])
    assert dom.table.get("data-ready") == "true", "the inline script ran to its end"
    assert len(rows) == len(summaries) * 2  # models x targets
    assert dom.strip["data-rows"] == str(len(rows))
    # Ranked by status (the fp32 self-checks before the bf16 warnings), faster first within each.
    assert dom.rows == [row_key(row) for row in ranked(list(rows.values()))]
    assert [rows[key]["target"] for key in dom.rows] == ["fp32", "fp32", "bf16", "bf16"]
    for key, cells in dom.cells.items():
        row = rows[key]
        assert cells[:3] == [row["model"], row["target"], row["status"]]
        assert dom.row_attributes[key]["data-target"] == row["target"]
        assert cells[KEY_COLUMNS.index("best_throughput")] == format_cell(row["best_throughput"])
        assert cells[KEY_COLUMNS.index("rel_l2")] == format_cell(row["rel_l2"])
    # One embedded plot per model x target (each card shows all its targets' plots).
    assert len(dom.images) == len(rows) and all(src.startswith("data:image/png;base64,") for src in dom.images)
    # A row's details (hidden until expanded): every other leaderboard column, then its own target's sections.
    for key, row in rows.items():
        details = dom.details[key]
        assert set(details) >= {"task", "params_m", "target_dtype", "cv_pct", "best_batch", "param_bytes", "reason"}
        assert details["target_dtype"] == row["target_dtype"]
        assert details["cv_pct"] == format_cell(row["cv_pct"])
        assert details["peak_device_mem_mb"].startswith("n/a (")  # a missing key value says why, here
        text = dom.details_text[key]
        assert f"Accuracy / 精度对比 — target {row['target']}" in text
        assert f"Performance / 性能 — target {row['target']}" in text
        other = "bf16" if row["target"] == "fp32" else "fp32"
        assert f"target {other}" not in text
    bf16 = next(row for key, row in rows.items() if row["target"] == "bf16" and row["model"] == "tiny-convnext")
    assert "error_ratio_vs_cpu_same_dtype" in dom.details_text[row_key(bf16)]


def test_one_scatter_per_target_on_the_same_axes(board):
    page, rows, _ = board
    dom = Dom(render(page)[0])
    assert list(dom.panels) == ["fp32", "bf16"]
    ticks = [[text for text in texts if text != f"target {name}"] for name, texts in dom.panels.items()]
    assert ticks[0] == ticks[1], "the panels share their axes' scales"
    assert set(dom.points) == set(rows)
    for key, point in dom.points.items():
        row = rows[key]
        assert point["data-target"] == row["target"] and dom.labels[key] == row["model"]  # labelled by model
        assert point["fill"] == STATUS_COLOURS[row["status"]]
    for target in ("fp32", "bf16"):
        here = sorted(
            (key for key in rows if rows[key]["target"] == target), key=lambda k: rows[k]["latency_p50_ms_bs1"]
        )
        assert float(dom.points[here[0]]["cx"]) < float(dom.points[here[-1]]["cx"])  # faster is further left
    # The same x position means the same latency in every panel (shared axes).
    fast = min(rows, key=lambda k: rows[k]["latency_p50_ms_bs1"])
    slow = max(rows, key=lambda k: rows[k]["latency_p50_ms_bs1"])
    assert float(dom.points[fast]["cx"]) < float(dom.points[slow]["cx"])


def test_key_columns_fit_a_laptop_screen(board, tmp_path):
    page, _, _ = board
    dom = Dom(render(page)[0])
    assert dom.table.get("data-viewport") == str(LAPTOP[0])
    assert list(dom.headers) == KEY_COLUMNS
    assert KEY_COLUMNS[:3] == ["model", "target", "status"]
    boxes = {column: (int(header["data-right"]), int(header["data-bottom"])) for column, header in dom.headers.items()}
    assert all(0 < right <= LAPTOP[0] and 0 < bottom <= LAPTOP[1] for right, bottom in boxes.values()), boxes
    shot = tmp_path / "leaderboard-1366x768.png"
    render(page, action=f"--screenshot={shot}")
    png = shot.read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 20_000, len(png)  # a rendered page, not a blank one
    assert struct.unpack(">II", png[16:24]) == LAPTOP  # IHDR width, height


@pytest.mark.parametrize(
    ("fragment", "shown"),
    [
        ("#target=bf16", ["tiny-bert/bf16", "tiny-convnext/bf16"]),
        ("#target=fp32&family=timm_image", ["tiny-convnext/fp32"]),
        ("#family=hf_encoder", ["tiny-bert/bf16", "tiny-bert/fp32"]),
        ("#status=self-check", ["tiny-bert/fp32", "tiny-convnext/fp32"]),
        ("#status=warn&target=fp32", []),
        ("#sort=-model&status=warn&family=timm_image", ["tiny-convnext/bf16"]),
    ],
)
def test_leaderboard_filters_by_status_target_and_family(board, fragment, shown):
    page, rows, _ = board
    dom = Dom(render(page, fragment)[0])
    assert sorted(dom.shown) == shown and dom.table.get("data-shown") == str(len(shown))
    assert len(dom.rows) == len(rows)  # filtered rows stay in the page, hidden
    hidden_points = {key for key, point in dom.points.items() if point.get("opacity") != "1"}
    assert hidden_points == set(dom.rows) - set(shown)  # the scatters follow the filters


@pytest.mark.parametrize("column", ["model", "best_throughput"])
@pytest.mark.parametrize("descending", [False, True])
def test_leaderboard_sorts_in_the_browser(board, column, descending):
    page, rows, _ = board
    dom = Dom(render(page, f"#sort={'-' if descending else ''}{column}")[0])
    assert dom.table.get("data-sorted-by") == ("-" if descending else "") + column
    assert dom.headers[column].get("aria-sort") == ("descending" if descending else "ascending")
    values = [rows[key][column] for key in dom.rows]
    assert values == sorted(values, reverse=descending)


def test_model_page_renders_every_target_with_its_plot(board):
    page, _, summaries = board
    summary = summaries["tiny-convnext"]
    text = render(page.parent / "tiny-convnext/summary.html")[0]
    dom = Dom(text)
    assert len(dom.images) == 2 and all(src.startswith("data:image/png;base64,") for src in dom.images)
    for name in ("fp32", "bf16"):
        assert f"<h2>Accuracy / 精度对比 — target <code>{name}</code></h2>" in text
        assert f"<h2>Performance / 性能 — target <code>{name}</code></h2>" in text
    logits = summary["targets"]["fp32"]["accuracy"]["outputs"]["logits"]
    assert f"<tr><td>logits</td><td>[1, 1000]</td><td>{format_cell(logits['max_abs_diff'])}</td>" in text
