"""Make optional packages look not installed, in this process or in a child process.

A module set to None in sys.modules is what both `import` (ModuleNotFoundError) and
importlib.util.find_spec (None) treat as absent, so this reproduces an environment without an
extra on a machine that has every extra installed.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def hide_here(monkeypatch: pytest.MonkeyPatch, modules: Iterable[str]) -> None:
    """For this test: `import m` and find_spec(m) fail for every listed module."""
    for m in modules:
        monkeypatch.setitem(sys.modules, m, None)


def env_without(tmp_path: Path, modules: Iterable[str]) -> dict[str, str]:
    """An environment for a child Python (and every process it spawns, which inherit it) in
    which the listed modules are not installed: a sitecustomize on PYTHONPATH hides them."""
    folder = tmp_path / "hide-modules"
    folder.mkdir(exist_ok=True)
    (folder / "sitecustomize.py").write_text(
        "import sys\n"
        f"for _m in {sorted(modules)!r}:\n"
        "    sys.modules[_m] = None\n")
    return dict(os.environ, PYTHONPATH=os.pathsep.join([str(folder), str(ROOT)]))
