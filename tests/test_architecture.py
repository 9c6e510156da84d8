"""The package's floors, read off its source: what may import what (docs/architecture.md).

Every import counts, module level or inside a function: a lazy import still ties two modules
together, and a circle through one is still a circle.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "adapterscan"

# Floor 0 (shared vocabulary) imports no stage; a stage imports floor 0 and the stages before it;
# the pipeline imports the stages; the ways the pipeline is used sit on top.
FLOORS: dict[str, int] = {
    "adapterscan._quiet": 0, "adapterscan._version": 0, "adapterscan.errors": 0,
    "adapterscan.findings": 0, "adapterscan.report": 0, "adapterscan.source": 0,
    "adapterscan.exit_codes": 0, "adapterscan.emit": 0, "adapterscan.hashing": 0,
    "adapterscan.mapped": 0, "adapterscan.extras": 0, "adapterscan.file_kinds": 0,
    "adapterscan.rules": 0, "adapterscan.policy": 0, "adapterscan.data": 0,
    "adapterscan.reference": 1, "adapterscan.examples": 1,
    "adapterscan.fetch": 2, "adapterscan.static": 3, "adapterscan.probe": 4,
    "adapterscan.provenance": 5,
    "adapterscan.pipeline_checks": 6, "adapterscan.pipeline": 6,
    "adapterscan.render": 7, "adapterscan.integrations": 7,
    "adapterscan.cli": 8, "adapterscan.training": 8, "adapterscan.__main__": 9,
}
# The Hub fetcher triages remote files with the static stage's bounded header parser (ranged
# reads) before it downloads them, so that nothing is fetched unchecked. (The catalog of check
# names loads every stage's checks module by name, with importlib: no import edge here.)
ALLOWED_UPWARD = {
    ("adapterscan.fetch.hub", "adapterscan.static.limits"),
    ("adapterscan.fetch.hub_triage", "adapterscan.static.limits"),
    ("adapterscan.fetch.hub_triage", "adapterscan.static.layout"),
    ("adapterscan.fetch.hub_triage", "adapterscan.static.safetensors.header"),
}


@dataclass(frozen=True)
class Import:
    source: str
    target: str
    names: tuple[str, ...]


def _module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


@cache
def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports() -> Iterator[Import]:
    modules = _modules()
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    yield Import(name, alias.name, ())
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    target = ".".join(base + ([node.module] if node.module else []))
                else:
                    target = node.module or ""
                names = tuple(a.name for a in node.names)
                yield Import(name, target, names)
                for n in names:  # `from package import module` imports the module
                    if f"{target}.{n}" in modules:
                        yield Import(name, f"{target}.{n}", ())


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    graph: dict[str, set[str]] = {m: set() for m in modules}
    for imp in _imports():
        if imp.target in modules and imp.target != imp.source:
            graph[imp.source].add(imp.target)
    return graph


def _circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    counter = 0
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    component.append(top)
                    if top == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _floor(module: str) -> int:
    if module == "adapterscan":  # the public API: re-exports from every floor, lazily
        return 9
    best = ""
    for prefix in FLOORS:
        if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > len(best):
            best = prefix
    assert best, f"{module} has no floor in tests/test_architecture.py: add it (and to the doc)"
    return FLOORS[best]


def test_every_module_has_a_floor() -> None:
    for module in _modules():
        _floor(module)


def test_no_import_circles_outside_the_training_package() -> None:
    circles = _circles(_graph())
    outside = [c for c in circles if not all(m.startswith("adapterscan.training") for m in c)]
    assert outside == []
    assert len(circles) <= 1


def test_no_module_imports_a_higher_floor() -> None:
    upward = sorted(f"{s} -> {t}" for s, targets in _graph().items() for t in targets
                    if _floor(t) > _floor(s) and (s, t) not in ALLOWED_UPWARD)
    assert upward == []


def test_nothing_on_the_scan_path_imports_the_training_package() -> None:
    importers = sorted({s for s, targets in _graph().items() for t in targets
                        if t.startswith("adapterscan.training")
                        and not s.startswith(("adapterscan.training", "adapterscan.cli"))})
    assert importers == []


def test_no_private_name_is_imported_across_files() -> None:
    private = sorted(f"{imp.source}: {imp.target}.{n}" for imp in _imports()
                     if imp.target.startswith("adapterscan") for n in imp.names
                     if n.startswith("_") and not n.startswith("__"))
    assert private == []


def test_hub_downloads_happen_only_in_the_fetch_stage() -> None:
    outside = sorted(name for name, path in _modules().items()
                     if not name.startswith("adapterscan.fetch")
                     and re.search(r"\b(snapshot_download|hf_hub_download)\b", path.read_text()))
    assert outside == []


def test_only_the_static_stage_and_renderers_read_the_weights_results() -> None:
    readers = sorted(name for name, path in _modules().items()
                     if not name.startswith(("adapterscan.static", "adapterscan.render"))
                     and re.search(r"""\[\s*["']weights["']\s*\]""", path.read_text()))
    assert readers == []


def test_the_circle_finder_finds_a_circle() -> None:
    # The tests above pass on an empty list; this one shows the finder can fail them.
    assert _circles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_check_names_appear_only_as_constants_of_their_checks_module() -> None:
    from adapterscan.rules.catalog import CHECK_MODULES, known_checks

    names = known_checks()
    literals = []
    for module, path in _modules().items():
        tree = ast.parse(path.read_text())
        docstrings = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Expr)}
        if module in CHECK_MODULES:  # one definition each: `NAME: Final = "stage.check"`
            definitions = {id(n.value) for n in tree.body if isinstance(n, ast.AnnAssign)}
            docstrings |= definitions
        literals += [f"{module}:{n.lineno} {n.value}" for n in ast.walk(tree)
                     if isinstance(n, ast.Constant) and n.value in names
                     and id(n) not in docstrings]
    assert literals == []
