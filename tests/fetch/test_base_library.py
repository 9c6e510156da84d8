"""A library caller naming a base: a Hub id goes through resolve_base (pinned, hashed) or is
refused; no code outside fetch/ downloads from the Hub."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from adapterscan.fetch.base_model import BaseNotFound, ResolvedBase, local_base
from adapterscan.fetch.hub_options import HubOptions
from tests import factories
from tests.fetch.test_base_model import BASE, base_repo_files
from tests.hubserver import HubServer

PACKAGE = Path(__file__).resolve().parents[2] / "adapterscan"


def test_hub_downloads_happen_only_in_fetch() -> None:
    """One resolver: a second one would load a Hub base unpinned and unhashed."""
    calls = re.compile(r"\b(snapshot_download|hf_hub_download)\b")
    outside = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*.py")
                     if calls.search(p.read_text("utf-8"))
                     and p.relative_to(PACKAGE).parts[0] != "fetch")
    assert outside == []


def test_local_base_refuses_a_hub_id_naming_resolve_base() -> None:
    with pytest.raises(BaseNotFound, match="neither 'reference' nor a folder") as info:
        local_base("acme/tiny-base")
    assert "resolve_base" in (info.value.hint or "")


def test_local_base_hashes_the_bundled_reference() -> None:
    base = local_base("reference")
    assert base.bundled and base.label == "reference"
    assert {f.checked_against for f in base.files} == {"bundled-manifest"}


def test_scan_with_a_hub_id_hands_the_probe_the_pinned_base(
        tmp_path: Path, hub: HubServer, opts: HubOptions,
        monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("torch")
    from adapterscan.pipeline import ScanOptions, scan
    from adapterscan.probe import interface

    sha = hub.add_repo(BASE, base_repo_files())
    seen: list[ResolvedBase] = []

    def fake_probe(src: Any, static: Any, base: ResolvedBase, *rest: Any) -> None:
        seen.append(base)

    monkeypatch.setattr(interface, "run_probe", fake_probe)
    folder = factories.write_adapter(tmp_path / "adapter")
    report = scan(folder, options=ScanOptions(base=BASE, hub=opts))
    assert len(seen) == 1 and isinstance(seen[0], ResolvedBase)
    assert (seen[0].source, seen[0].sha, seen[0].repo) == ("hub", sha, BASE)
    assert {f.checked_against for f in seen[0].files} == {"hub-listing"}
    assert report.base is not None and report.base["sha"] == sha
    weights = report.results["weights"]
    assert isinstance(weights, dict) and isinstance(weights.get("base"), dict)
    assert weights["base"]["base_dir"] == str(seen[0].folder)  # type: ignore[index]


def test_unaligned_without_a_base_is_a_usage_error(tmp_path: Path) -> None:
    """Refused before any work, by the library as by the CLI (exit 2)."""
    from typer.testing import CliRunner

    from adapterscan.cli.app import app
    from adapterscan.errors import UsageError
    from adapterscan.pipeline import ScanOptions, scan
    from adapterscan.static.options import StaticOptions, WeightOptions

    folder = factories.write_adapter(tmp_path / "adapter")
    weights = WeightOptions(unaligned_dir=tmp_path)
    with pytest.raises(UsageError, match="--unaligned needs --base"):
        scan(folder, options=ScanOptions(static=StaticOptions(weights=weights)))
    res = CliRunner().invoke(app, ["scan", str(folder), "--unaligned", str(tmp_path)])
    assert res.exit_code == 2 and "--unaligned needs --base" in res.output
