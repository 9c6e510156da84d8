"""Fixtures for the Hub fetcher tests: a local Hub server and an isolated HF_HOME per test."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from adapterscan.fetch.hub_options import HubOptions
from tests import factories
from tests.hubserver import HubServer


@pytest.fixture(autouse=True)
def isolated_hf(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    home = tmp_path / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.delenv("HF_HUB_CACHE", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    monkeypatch.setenv("HF_HUB_DISABLE_XET", "1")
    return home


@pytest.fixture
def hub() -> Iterator[HubServer]:
    with HubServer() as server:
        yield server


@pytest.fixture
def opts(hub: HubServer, tmp_path: Path) -> HubOptions:
    return HubOptions(endpoint=hub.url, cache_dir=tmp_path / "cache", timeout_s=10, retries=0)


def adapter_files(*, card_base: str | None = "org/base", **cfg: object) -> dict[str, bytes]:
    """A benign LoRA adapter repo: config, weights and a model card."""
    files = {
        "adapter_config.json": json.dumps(factories.adapter_config(**cfg)).encode(),
        "adapter_model.safetensors": factories.safetensors_bytes(factories.lora_tensors()),
    }
    if card_base is not None:
        card = f"---\nbase_model: {card_base}\nlibrary_name: peft\n---\n# LoRA\n"
        files["README.md"] = card.encode()
    return files
