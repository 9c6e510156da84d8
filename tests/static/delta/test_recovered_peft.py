"""The recovered adapter is a real PEFT adapter: peft loads it onto the reference and merging it
gives back the checkpoint's weights (the oracle is PEFT's own load, not our reader)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapterscan.pipeline import ScanOptions, scan
from adapterscan.reference import reference_dir
from adapterscan.static.options import DeltaOptions, StaticOptions, WeightOptions
from tests.static.delta.factories import random_lora, reference_weights, write_checkpoint

torch = pytest.importorskip("torch")
peft = pytest.importorskip("peft")
transformers = pytest.importorskip("transformers")


@pytest.mark.slow
def test_peft_loads_and_merges_the_recovered_adapter(tmp_path: Path) -> None:
    merged = random_lora(reference_weights(), rank=4)
    ck = write_checkpoint(tmp_path / "ck", merged)
    out = tmp_path / "adapter"
    scan(ck, options=ScanOptions(static=StaticOptions(
        weights=WeightOptions(base_dir=reference_dir()), delta=DeltaOptions(recover_dir=out))))
    model = transformers.AutoModelForCausalLM.from_pretrained(
        reference_dir(), torch_dtype=torch.float32)
    loaded = peft.PeftModel.from_pretrained(model, str(out)).merge_and_unload()
    state = loaded.state_dict()
    for name in ("model.layers.0.self_attn.q_proj.weight", "model.layers.5.mlp.down_proj.weight"):
        got = state[name].detach().numpy()
        assert np.abs(got - merged[name].astype(np.float32)).max() <= 2e-3
