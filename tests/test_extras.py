"""adapterscan.extras: the import names of each extra agree with pyproject.toml, and a missing
one is a MissingExtraError that names the extra, found without importing anything."""

from __future__ import annotations

import re
import sys
import tomllib
from pathlib import Path

import pytest

from adapterscan.errors import UsageError
from adapterscan.extras import EXTRAS, MissingExtraError, missing_modules, require_extra
from tests.hidden_modules import hide_here

ROOT = Path(__file__).resolve().parents[1]


def _optional() -> dict[str, list[str]]:
    data = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))
    extras: dict[str, list[str]] = data["project"]["optional-dependencies"]
    return extras


def _import_name(requirement: str) -> str:
    """'psycopg[binary]>=3.1' -> 'psycopg' (every distribution here imports as its name)."""
    name = re.match(r"[A-Za-z0-9_.-]+", requirement)
    assert name is not None, requirement
    return name.group(0).lower().replace("-", "_")


def test_extras_match_pyproject() -> None:
    optional = _optional()
    # dev and fuzz are tooling for this repository: no command asks for them.
    assert set(EXTRAS) == set(optional) - {"all", "dev", "fuzz"}
    for extra, modules in EXTRAS.items():
        own = {_import_name(r) for r in optional[extra] if not r.startswith("adapterscan")}
        assert own == set(modules), extra
    # [all] brings every extra a command may ask for.
    [everything] = optional["all"]
    assert set(re.findall(r"\w+", everything.split("[", 1)[1])) == set(EXTRAS)


def test_installed_extra_passes() -> None:
    assert missing_modules("serve") == ()
    require_extra("serve", "adapterscan serve")


def test_missing_extra_names_it_and_the_missing_modules(monkeypatch: pytest.MonkeyPatch) -> None:
    hide_here(monkeypatch, ["torch", "peft"])
    assert missing_modules("probe") == ("torch", "peft")
    with pytest.raises(MissingExtraError) as err:
        require_extra("probe", "adapterscan demo")
    assert isinstance(err.value, UsageError) and err.value.extra == "probe"
    assert err.value.message == ("adapterscan demo needs the probe extra: pip install "
                                 "'adapterscan[probe]' (not installed: torch, peft)")


def test_check_imports_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "ray" or m.startswith("ray.")]:
        monkeypatch.delitem(sys.modules, name)
    assert missing_modules("ray") == ()
    assert "ray" not in sys.modules


def test_library_entry_points_check_the_probe_extra_first(tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from adapterscan import scan
    from adapterscan.integrations.preload import load_adapter
    from adapterscan.pipeline import ScanOptions
    from tests.factories import write_adapter

    folder = write_adapter(tmp_path / "adapter")
    hide_here(monkeypatch, ["torch"])
    assert scan(folder).complete  # a static scan needs no extra
    with pytest.raises(MissingExtraError, match=r"behavioral probe .* needs the probe extra"):
        scan(folder, options=ScanOptions(base="reference"))
    with pytest.raises(MissingExtraError, match="load_adapter needs the probe extra"):
        load_adapter(object(), folder)
