"""AdaLoRA's update is B·(A ⊙ E)·α/r: the statistics are those of the matrix PEFT merges (PEFT
itself is the oracle), not of B·A with the learned singular values E left out."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pytest

from adapterscan.pipeline import scan

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


@pytest.mark.slow
def test_adalora_statistics_are_those_of_the_merged_update(tmp_path: Path) -> None:
    torch.manual_seed(0)
    base = transformers.LlamaForCausalLM(transformers.LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=4))
    model = peft.get_peft_model(copy.deepcopy(base), peft.AdaLoraConfig(
        init_r=6, lora_alpha=12, total_step=10, target_modules=["q_proj", "v_proj"],
        task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "lora_E" in name:  # E starts at zero: give each rank its own singular value
                p.copy_(torch.linspace(3.0, 0.1, p.shape[0]).reshape(p.shape))
    model.peft_config["default"].base_model_name_or_path = "org/base"
    model.save_pretrained(tmp_path)
    merged = peft.PeftModel.from_pretrained(copy.deepcopy(base), tmp_path).merge_and_unload()
    before, after = base.state_dict(), merged.state_dict()

    report = scan(tmp_path)
    assert report.complete, report.skipped
    weights = report.results["weights"]
    assert isinstance(weights, dict) and isinstance(weights["modules"], list)
    assert len(weights["modules"]) == 4
    for rec in weights["modules"]:
        assert isinstance(rec, dict)
        key = str(rec["module"]).removeprefix("base_model.model.") + ".weight"
        delta = (after[key] - before[key]).double().numpy()
        sv = np.linalg.svd(delta, compute_uv=False)
        assert rec["fro"] == pytest.approx(float(np.linalg.norm(delta)), rel=1e-4)
        assert rec["top_singular_values"] == pytest.approx(sv[:len(rec["top_singular_values"])],
                                                           rel=1e-3, abs=1e-6)
