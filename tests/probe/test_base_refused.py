"""The probe loads only a base that fetch/ resolved: a name is refused, never downloaded."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapterscan.emit import Emitter
from adapterscan.errors import ProbeError
from adapterscan.rules.loader import load_ruleset
from adapterscan.source import FetchedSource
from adapterscan.static.model import Inventory, StaticResult

pytest.importorskip("torch")


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub

    def refuse(*_: object, **__: object) -> None:
        raise AssertionError("the probe must not download anything")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", refuse)
    monkeypatch.setattr(huggingface_hub, "hf_hub_download", refuse)


def test_run_probe_refuses_a_base_named_by_a_string(tmp_path: Path) -> None:
    from adapterscan.probe.interface import run_probe

    src = FetchedSource(source=str(tmp_path), kind="local", root=tmp_path, entries=())
    with pytest.raises(ProbeError, match="resolved base model") as info:
        run_probe(src, StaticResult(inventory=Inventory(items=())), "acme/tiny-base",  # type: ignore[arg-type]
                  Emitter(load_ruleset()), None, None)
    assert "resolve_base" in (info.value.hint or "")


def test_load_base_refuses_a_base_named_by_a_string() -> None:
    from adapterscan.probe.model_loading import load_base

    with pytest.raises(ProbeError, match="resolved base model"):
        load_base("reference", device="cpu")  # type: ignore[arg-type]
