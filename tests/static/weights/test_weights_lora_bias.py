"""lora_B.bias (PEFT lora_bias): paired with its module, measured, AS515 when it dominates."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.weights.analysis import WeightOptions
from tests.static.factories_weights import key, lora, rule_ids, scan, write

HIDDEN = 32


def _bias_key(layer: int) -> str:
    return key(layer, "q_proj", "B").removesuffix(".weight") + ".bias"


def _with_bias(norm: float, zero_b: bool = False) -> dict[str, np.ndarray]:
    t = lora(layers=2, hidden=HIDDEN)
    rng = np.random.default_rng(8)
    for i in range(2):
        b = rng.normal(size=HIDDEN)
        t[_bias_key(i)] = (b / np.linalg.norm(b) * norm / 2.0).astype(np.float32)  # s = 2
        if zero_b:
            t[key(i, "q_proj", "B")] = np.zeros_like(t[key(i, "q_proj", "B")])
    return t


def _cfg() -> dict[str, object]:
    return {"peft_type": "LORA", "r": 4, "lora_alpha": 8, "target_modules": ["q_proj"],
            "lora_bias": True}


def test_bias_is_paired_with_its_module_not_taken_for_lora_b(tmp_path: Path) -> None:
    emit, res = scan(write(tmp_path / "a", _with_bias(0.05), _cfg()))
    assert "AS503" not in rule_ids(emit) and "AS515" not in rule_ids(emit)
    assert [m["type"] for m in res["modules"]] == ["q_proj", "q_proj"]
    assert res["modules"][0]["bias_norm"] == pytest.approx(0.05, rel=1e-5)
    assert 0 < res["modules"][0]["bias_ratio"] < 1
    assert res["other_tensors"] == []


def test_as515_dominant_bias(tmp_path: Path) -> None:
    emit, _ = scan(write(tmp_path / "loud", _with_bias(50.0), _cfg()))
    hits = [f for f in emit.findings if f.rule_id == "AS515"]
    assert len(hits) == 2 and float(hits[0].evidence["ratio"]) > 3  # type: ignore[arg-type]
    emit, _ = scan(write(tmp_path / "zero_b", _with_bias(0.05, zero_b=True), _cfg()))
    assert "AS515" in rule_ids(emit)  # a no-op B with a live bias: the bias is the update
    assert any("only its lora_B.bias" in f.message for f in emit.findings
               if f.rule_id == "AS502")


def test_bias_of_the_wrong_shape_is_a_skip_and_nan_is_as501(tmp_path: Path) -> None:
    t = _with_bias(0.05)
    t[_bias_key(0)] = np.ones(HIDDEN + 1, np.float32)
    t[_bias_key(1)][3] = np.inf
    emit, _ = scan(write(tmp_path / "odd", t, _cfg()))
    assert any("does not fit lora_B" in s.reason for s in emit.skipped)
    assert any(f.rule_id == "AS501" and "bias" in f.message for f in emit.findings)


def test_bias_of_lora_a_stays_visible_as_another_tensor(tmp_path: Path) -> None:
    t = _with_bias(0.05)
    t[key(0, "q_proj", "A").removesuffix(".weight") + ".bias"] = np.ones(4, np.float32)
    _, res = scan(write(tmp_path / "abias", t, _cfg()))
    assert any(n.endswith("lora_A.bias") for n in res["other_tensors"])
    assert len(res["modules"]) == 2


@pytest.mark.slow
def test_a_trained_lora_bias_adapter_is_not_flagged(tmp_path: Path) -> None:
    """The real negative: PEFT LoRA with lora_bias=True trained 60 steps on the bundled
    reference (benign task with safety data mixed in) stays under AS515's bound."""
    from adapterscan.examples.specs import ALL_LINEAR
    from adapterscan.reference import reference_dir
    from tests.static.factories_trained import train_benign

    ref = reference_dir()
    train_benign(tmp_path / "lb", seed=12, r=8, lora_alpha=16, lora_bias=True,
                 target_modules=list(ALL_LINEAR))
    emit, res = scan(tmp_path / "lb", WeightOptions(base_dir=ref, use_default_baseline=False))
    ratios = [m["bias_ratio"] for m in res["modules"]]
    layers = json.loads((ref / "config.json").read_text())["num_hidden_layers"]
    assert len(ratios) == len(ALL_LINEAR) * layers and all(r is not None for r in ratios)
    assert "AS515" not in rule_ids(emit), max(ratios)
