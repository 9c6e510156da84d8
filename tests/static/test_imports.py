"""The static stage's import graph: no circles (imports inside functions and under
TYPE_CHECKING count) and no private name imported from another file."""

from __future__ import annotations

import ast
from pathlib import Path

import adapterscan

PACKAGE = Path(adapterscan.__file__).parent
STATIC = "adapterscan.static"


def _graph() -> tuple[dict[str, set[str]], list[str]]:
    files = {".".join(p.relative_to(PACKAGE.parent).with_suffix("").parts)
             .removesuffix(".__init__"): p for p in (PACKAGE / "static").rglob("*.py")}
    edges: dict[str, set[str]] = {m: set() for m in files}
    private: list[str] = []
    for mod, path in files.items():
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
                private += [f"{mod}: {node.module}.{a.name}" for a in node.names
                            if node.module.startswith("adapterscan") and a.name.startswith("_")]
            elif isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            else:
                continue
            edges[mod] |= {n for n in names if n in files and n != mod}
    return edges, private


def _reaches(edges: dict[str, set[str]], start: str) -> set[str]:
    seen: set[str] = set()
    todo = list(edges[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += edges[m]
    return seen


def test_no_import_circle() -> None:
    edges, _ = _graph()
    assert not [m for m in edges if m in _reaches(edges, m)]


def test_no_private_name_crosses_files() -> None:
    assert _graph()[1] == []


def test_layout_is_the_floor() -> None:
    assert _graph()[0][f"{STATIC}.layout"] == set()
