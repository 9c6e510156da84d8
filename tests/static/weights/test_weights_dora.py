"""DoRA magnitudes: non-positive entries (AS513) and channel gains against the base (AS514)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.weights.analysis import WeightOptions
from adapterscan.static.weights.dora import magnitude_target
from tests.static.factories_weights import key, lora, rule_ids, scan, write, write_base

HIDDEN = 32


def _mag_key(layer: int) -> str:
    return f"base_model.model.model.layers.{layer}.self_attn.q_proj.lora_magnitude_vector"


def _base(tmp_path: Path) -> tuple[Path, dict[int, np.ndarray]]:
    rng = np.random.default_rng(5)
    w = {i: rng.normal(size=(HIDDEN, HIDDEN)) for i in range(2)}
    return write_base(tmp_path / "base", 2, w, rng.normal(size=(16, HIDDEN))), w


def _dora(w: dict[int, np.ndarray], gains: dict[int, np.ndarray] | None = None,
          zero_b: bool = False) -> dict[str, np.ndarray]:
    """A DoRA adapter as PEFT initialises it (m = row norms of W), trained a little (±3%)."""
    rng = np.random.default_rng(6)
    t = lora(layers=2, hidden=HIDDEN)
    for i in range(2):
        m = np.linalg.norm(w[i], axis=1) * rng.uniform(0.97, 1.03, HIDDEN)
        t[_mag_key(i)] = (m * (gains or {}).get(i, 1.0)).astype(np.float32)
        if zero_b:
            t[key(i, "q_proj", "B")] = np.zeros_like(t[key(i, "q_proj", "B")])
    return t


@pytest.mark.parametrize(("name", "target"), [
    ("base_model.model.model.layers.0.self_attn.q_proj.lora_magnitude_vector",
     "model.layers.0.self_attn.q_proj"),
    ("base_model.model.model.layers.3.mlp.down_proj.lora_magnitude_vector.weight",
     "model.layers.3.mlp.down_proj"),
    ("base_model.model.model.layers.1.self_attn.v_proj.lora_magnitude_vector.default",
     "model.layers.1.self_attn.v_proj"),
    ("base_model.model.model.layers.0.self_attn.q_proj.lora_A.weight", None),
])
def test_magnitude_tensor_names(name: str, target: str | None) -> None:
    assert magnitude_target(name) == target


def test_as513_nonpositive_magnitude_without_a_base(tmp_path: Path) -> None:
    _, w = _base(tmp_path)
    emit, res = scan(write(tmp_path / "ok", _dora(w)))
    assert "AS513" not in rule_ids(emit)
    assert [d["nonpositive"] for d in res["dora"]] == [0, 0]
    gains = np.ones(HIDDEN)
    gains[[3, 7]] = [0.0, -1.0]  # one channel silenced, one flipped
    emit, res = scan(write(tmp_path / "bad", _dora(w, {1: gains})))
    hits = [f for f in emit.findings if f.rule_id == "AS513"]
    assert len(hits) == 1 and hits[0].evidence["count"] == 2
    assert {c["channel"] for c in hits[0].evidence["channels"]} == {3, 7}  # type: ignore[union-attr, index]


def test_as514_channel_gain_against_the_base(tmp_path: Path) -> None:
    base, w = _base(tmp_path)
    opts = WeightOptions(base_dir=base, use_default_baseline=False)
    emit, res = scan(write(tmp_path / "ok", _dora(w)), opts)
    assert "AS514" not in rule_ids(emit)
    assert all(d["gain_min"] > 0.9 and d["gain_max"] < 1.1 for d in res["dora"])
    gains = np.ones(HIDDEN)
    gains[[2, 9, 20]] = [6.0, 0.1, 3.0]
    # The LoRA factors are all zero: the whole edit lives in the magnitude vector.
    emit, res = scan(write(tmp_path / "loud", _dora(w, {0: gains}, zero_b=True)), opts)
    hits = [f for f in emit.findings if f.rule_id == "AS514"]
    assert len(hits) == 1 and hits[0].evidence["count"] == 3
    assert [c["channel"] for c in hits[0].evidence["channels"]][:2] == [9, 2]  # type: ignore[union-attr, index]
    assert res["dora"][0]["channels_out_of_range"] == 3


def test_magnitudes_of_the_wrong_length_or_dtype_are_skips_not_passes(tmp_path: Path) -> None:
    base, w = _base(tmp_path)
    t = _dora(w)
    t[_mag_key(0)] = np.ones(HIDDEN + 3, np.float32)
    t[_mag_key(1)] = np.ones(HIDDEN, np.int32)
    t[_mag_key(2)] = np.ones((2, 2, HIDDEN), np.float32)
    emit, _ = scan(write(tmp_path / "odd", t), WeightOptions(base_dir=base,
                                                             use_default_baseline=False))
    reasons = " ".join(s.reason for s in emit.skipped)
    assert "35 magnitudes for 32 output channels" in reasons
    assert "not a float tensor" in reasons
    assert "is not a vector" in reasons


def test_nonfinite_magnitude_is_as501(tmp_path: Path) -> None:
    _, w = _base(tmp_path)
    t = _dora(w)
    t[_mag_key(0)][4] = np.nan
    emit, _ = scan(write(tmp_path / "nan", t))
    assert any(f.rule_id == "AS501" and "magnitude" in f.message for f in emit.findings)


@pytest.mark.slow
def test_a_trained_dora_adapter_stays_within_the_gain_bounds(tmp_path: Path) -> None:
    """The real negative: PEFT DoRA trained 60 steps on the bundled reference model (benign task
    with safety data) draws neither AS513 nor AS514, and its gains stay near 1."""
    from adapterscan.reference import reference_dir
    from tests.static.factories_trained import train_benign
    from tests.static.factories_weights import headers

    ref = reference_dir()
    train_benign(tmp_path / "dora", seed=11, r=8, lora_alpha=16, use_dora=True,
                 target_modules=["q_proj", "v_proj", "down_proj"])
    saved = headers(tmp_path / "dora")["adapter_model.safetensors"].tensors
    assert any("lora_magnitude_vector" in t.name for t in saved)
    emit, res = scan(tmp_path / "dora", WeightOptions(base_dir=ref, use_default_baseline=False))
    assert not {"AS513", "AS514"} & rule_ids(emit)
    layers = json.loads((ref / "config.json").read_text())["num_hidden_layers"]
    assert len(res["dora"]) == 3 * layers
    assert all(d["gain_min"] > 0.7 and d["gain_max"] < 1.4 for d in res["dora"]), res["dora"]
