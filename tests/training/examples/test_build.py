"""The example builder: deterministic, valid PEFT folders that PeftModel loads."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import pytest

from adapterscan.examples import ExampleAdapter
from adapterscan.examples.specs import SPECS

torch = pytest.importorskip("torch")
pytest.importorskip("peft")


@pytest.mark.slow
def test_built_adapters_are_deterministic_valid_peft(tmp_path: Path) -> None:
    """Two short builds of the same specs give identical metadata and loadable adapters."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from adapterscan.reference import reference_dir
    from adapterscan.training.examples.build import build_all

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
