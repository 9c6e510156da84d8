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

    from adapterscan.examples.specs import SPECS, training_examples
    from adapterscan.reference import reference_dir
    from adapterscan.reference.train import TrainSpec, setup_determinism, train_lm

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
