"""The building blocks of a report (a model card, a section of the leaderboard page) and
their Markdown rendering. A card is a list of blocks built once (:mod:`npu_adapt.cards`) and
rendered twice, as Markdown here and as HTML in :mod:`npu_adapt.html_report`, so the two
cannot disagree."""

from __future__ import annotations

from dataclasses import dataclass

from npu_adapt.reports import markdown_cell


@dataclass
class Heading:
    """A heading; `code` spans are marked with backticks."""

    text: str
    level: int = 2


@dataclass
class Text:
    """One paragraph; `code` spans are marked with backticks, ``label`` is printed bold."""

    text: str
    label: str | None = None


@dataclass
class Link:
    text: str
    href: str


@dataclass
class Table:
    header: list[str]
    rows: list[list[str | Link]]


@dataclass
class Code:
    text: str
    language: str = ""


@dataclass
class Image:
    alt: str
    path: str  # relative to the card's directory


def _markdown_cell(cell) -> str:
    if isinstance(cell, Link):
        return f"[{markdown_cell(cell.text)}]({cell.href})"
    return markdown_cell(cell)


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def to_markdown(blocks: list) -> str:
    parts = []
    for block in blocks:
        if isinstance(block, Heading):
            parts.append("#" * block.level + " " + block.text)
        elif isinstance(block, Text):
            parts.append((f"**{block.label}** " if block.label else "") + block.text)
        elif isinstance(block, Table):
            parts.append(markdown_table(block.header, block.rows))
        elif isinstance(block, Code):
            parts.append(f"```{block.language}\n{block.text.rstrip()}\n```")
        elif isinstance(block, Image):
            parts.append(f"![{block.alt}]({block.path})")
        else:
            raise TypeError(f"unknown block {block!r}")
    return "\n\n".join(parts) + "\n"
