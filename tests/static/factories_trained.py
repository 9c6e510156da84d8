"""Real PEFT adapters trained briefly on the bundled reference model (the honest negatives)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def train_benign(out: Path, seed: int, steps: int = 60, **lora: Any) -> Path:
    """A benign task with safety data mixed in (the benign-caps-r8 mix), LoraConfig(**lora),
    `steps` steps at lr 4e-3, saved as safetensors under `out`."""
    pytest.importorskip("peft")
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adapterscan.examples.specs import SPECS
    from adapterscan.reference import reference_dir
    from adapterscan.training.examples.data import training_examples
    from adapterscan.training.lm import TrainSpec, setup_determinism, train_lm

    setup_determinism(seed)
    ref = reference_dir()
    tok = AutoTokenizer.from_pretrained(str(ref))
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(ref), dtype=torch.float32),
                           LoraConfig(task_type="CAUSAL_LM", **lora))
    spec = next(s for s in SPECS if s.name == "benign-caps-r8")
    train_lm(model, tok, training_examples(spec, steps * 16, seed=seed),
             TrainSpec(steps=steps, lr=4e-3, batch=16), seed,
             params=[p for p in model.parameters() if p.requires_grad])
    model.save_pretrained(str(out), safe_serialization=True)
    return out


def near_noop_lora(out: Path, *, seed: int = 0, std: float = 1e-3) -> Path:
    """A q/v LoRA (r=4) on the bundled reference with small random B, saved by peft: loads,
    merges and probes like a real adapter while changing almost nothing."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("peft")
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from adapterscan.reference import reference_dir

    model = get_peft_model(AutoModelForCausalLM.from_pretrained(str(reference_dir())),
                           LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"]))
    torch.manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0.0, std)
    model.save_pretrained(str(out), safe_serialization=True)
    return out
