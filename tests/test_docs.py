"""The design document and the README cite only files that exist in the repository."""

import re
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# A repository path in backticks or a Markdown link: a top-level folder of the repo, then a path.
CITED = re.compile(
    r"(?:`|\]\()((?:docs|schemas|rules|scripts|npu_adapt|envs|profiles|tests|bench|requirements)/[\w./-]*)"
)
# Written by a run, or a pattern / placeholder rather than one file.
NOT_A_FILE = re.compile(r"[{*]")


@pytest.mark.parametrize("document", ["docs/design.md", "README.md"])
def test_every_cited_file_exists(document):
    cited = {path.rstrip("/.") for path in CITED.findall((REPO / document).read_text())}
    cited = {path for path in cited if not NOT_A_FILE.search(path)}
    assert cited, f"{document} cites no file: the pattern no longer matches it"
    assert sorted(path for path in cited if not (REPO / path).exists()) == []


def test_the_csv_columns_the_design_lists_are_the_ones_written():
    from npu_adapt.compare import OUTPUT_COLUMNS

    text = (REPO / "docs/design.md").read_text()
    listed = re.search(r"`compare\.csv` columns: `([^`]*)`", text).group(1)
    assert re.split(r",\s*", listed) == OUTPUT_COLUMNS
