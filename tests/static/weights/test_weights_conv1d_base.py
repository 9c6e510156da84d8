"""GPT-2-family bases store their Conv1D weights as [in, out]; PEFT marks such adapters
`fan_in_fan_out` and merges ΔWᵀ. The base comparison reads them in ΔW's orientation instead of
calling every module unmatched (which left every GPT-2 scan with a base incomplete)."""

from __future__ import annotations

from pathlib import Path

import pytest

from adapterscan.static.weights.analysis import WeightOptions
from tests.static.factories_weights import scan

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


def _gpt2(tmp_path: Path) -> tuple[Path, Path, object]:
    torch.manual_seed(0)
    base = transformers.GPT2LMHeadModel(transformers.GPT2Config(
        n_embd=32, n_layer=2, n_head=4, vocab_size=64, n_positions=32))
    base.save_pretrained(tmp_path / "base")
    model = peft.get_peft_model(base, peft.LoraConfig(r=4, lora_alpha=8, target_modules=[
        "c_attn", "c_proj"], fan_in_fan_out=True, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(std=0.02)
    model.save_pretrained(tmp_path / "lora")
    return tmp_path / "base", tmp_path / "lora", model


@pytest.mark.slow
def test_conv1d_base_weights_are_compared_transposed(tmp_path: Path) -> None:
    base, lora, model = _gpt2(tmp_path)
    emit, res = scan(lora, WeightOptions(base_dir=base, use_default_baseline=False))
    assert not emit.skipped, emit.skipped
    assert res["base"]["missing"] == []
    # ‖ΔW‖/‖W‖ of c_attn (in 32, out 96: stored [32, 96]) against the weight PEFT merges into.
    layer = model.base_model.model.transformer.h[0].attn.c_attn  # type: ignore[attr-defined]
    delta = layer.get_delta_weight("default")
    want = float(delta.norm() / layer.base_layer.weight.norm())
    rec = next(m for m in res["modules"] if m["module"].endswith("h.0.attn.c_attn"))
    assert rec["relative_update"] == pytest.approx(want, rel=1e-4)


@pytest.mark.slow
def test_without_fan_in_fan_out_a_transposed_base_does_not_match(tmp_path: Path) -> None:
    """Square c_proj would fit either way; only the config's flag says which. Without it the
    non-square c_attn matches nothing, and the scan says so (incomplete), never silently."""
    import json

    base, lora, _ = _gpt2(tmp_path)
    cfg = json.loads((lora / "adapter_config.json").read_text())
    cfg["fan_in_fan_out"] = False
    emit, _ = scan(lora, WeightOptions(base_dir=base, use_default_baseline=False), cfg)
    assert any("no matching base weight" in s.reason for s in emit.skipped)
