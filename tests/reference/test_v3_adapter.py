"""The shipped v3 safety adapter: a plain float16 LoRA that fits SmolLM2-135M-Instruct, small,
mergeable by fetch/derived_base.py, and clean under our own static scan."""

from __future__ import annotations

import json

from safetensors import safe_open

from adapterscan.fetch.derived_base import lora_pairs
from adapterscan.pipeline import scan
from adapterscan.reference import V3_ADAPTER_DIR

# SmolLM2-135M: 30 layers, hidden 576, 3 KV heads of 64, MLP 1536 (issue #24).
OUT_IN = {"q_proj": (576, 576), "k_proj": (192, 576), "v_proj": (192, 576),
          "o_proj": (576, 576), "gate_proj": (1536, 576), "up_proj": (1536, 576),
          "down_proj": (576, 1536)}


def test_the_adapter_fits_smollm2_and_is_small() -> None:
    weights = V3_ADAPTER_DIR / "adapter_model.safetensors"
    assert weights.stat().st_size < 8 * 1024 * 1024
    config = json.loads((V3_ADAPTER_DIR / "adapter_config.json").read_text())
    r = config["r"]
    scale, pairs = lora_pairs(V3_ADAPTER_DIR)
    assert scale == config["lora_alpha"] / r
    assert len(pairs) == 30 * len(OUT_IN)
    for name, (b, a) in pairs.items():
        out_dim, in_dim = OUT_IN[name.split(".")[-2]]
        assert b.shape == (out_dim, r) and a.shape == (r, in_dim)
    with safe_open(str(weights), framework="numpy") as f:
        names = f.keys()
        assert {str(f.get_slice(k).get_dtype()) for k in names} == {"F16"}


def test_the_adapter_passes_our_own_static_scan() -> None:
    report = scan(V3_ADAPTER_DIR)
    assert report.verdict.decision.value == "pass", [
        (f.rule_id, f.message) for f in report.findings]
