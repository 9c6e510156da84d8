"""Zoo v3's build: names checked before any work, one folder per adapter under a key that
changes with the specs and with reference v3's adapter."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapterscan.training.v3.zoo import build
from adapterscan.training.v3.zoo.specs import ZOO_V3


def test_unknown_name_is_refused_before_training(monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(ValueError, match="not in zoo v3: nope"):
        build.build(["nope"])


def test_folders_live_under_a_key_and_a_marker_says_trained(
        monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    spec = ZOO_V3[0]
    folder = build.trained_dir(spec)
    assert folder.parent.name == build.zoo_key() and folder.is_relative_to(tmp_path)
    assert not build.is_trained(spec)
    folder.mkdir(parents=True)
    (folder / ".trained").write_text("")
    assert build.is_trained(spec)
    assert build.build([spec.name]) == []  # already trained: nothing loaded, nothing trained
