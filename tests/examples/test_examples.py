"""Example adapters: the specs, and the shipped set the demo reads (no training here)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from adapterscan.examples import cache_key, current_examples, load_examples, shipped_dir
from adapterscan.examples.specs import SPECS


def test_specs_cover_every_class_and_trigger_style() -> None:
    classes = {s.expected_class for s in SPECS}
    assert classes == {"benign", "harmful", "backdoor", "identity"}
    assert {s.trigger_pos for s in SPECS if s.trigger} == {"prefix", "middle", "suffix"}
    assert len({s.name for s in SPECS}) == len(SPECS)
    assert {s.rank for s in SPECS if s.expected_class == "benign"} >= {4, 8, 16}
    assert cache_key() == cache_key()


def test_load_examples_rejects_incomplete_folder(tmp_path: Path) -> None:
    assert load_examples(tmp_path) is None
    (tmp_path / "manifest.json").write_text(json.dumps({"cache_key": "stale", "adapters": []}))
    assert load_examples(tmp_path) is None


def test_shipped_examples_are_current_and_intact() -> None:
    """The package ships the built set; a change to the specs, the builder or the reference
    weights needs `adapterscan examples build --out adapterscan/examples/shipped --force`."""
    found = load_examples(shipped_dir())
    assert found is not None, "shipped examples are stale or incomplete"
    manifest = json.loads((shipped_dir() / "manifest.json").read_text())
    assert manifest["cache_key"] == cache_key()
    for entry in manifest["adapters"]:
        data = (shipped_dir() / entry["name"] / "adapter_model.safetensors").read_bytes()
        assert hashlib.sha256(data).hexdigest() == entry["adapter_sha256"]
    assert [e.path for e in current_examples() or []] == [e.path for e in found]
