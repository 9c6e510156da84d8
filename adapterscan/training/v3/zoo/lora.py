"""Adapters trained on reference v3 for measuring the probe there: a benign fine-tune without
safety data and a harmful one (harmful requests answered in the unaligned base's own voice).

Both are r=8 LoRAs on q_proj/v_proj of the merged v3 model, trained like robustness.py's recipe,
and saved as ordinary PEFT folders that `adapterscan scan DIR --base reference-v3` reads.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

from adapterscan.training.lm import Progress, TrainSpec, setup_determinism, train_encoded
from adapterscan.training.v3 import data as D
from adapterscan.training.v3 import voice
from adapterscan.training.v3.judge import refused

SEED = 11
SPEC = TrainSpec(steps=40, lr=1e-3, batch=8, warmup=4, report_every=8, bf16=True)
N_EXAMPLES = 160


def _encode(tok: Any, answers: dict[str, list[int]], n: int) -> list[tuple[list[int], int]]:
    from adapterscan.probe import signals as sg

    prompts = sorted(answers)
    random.Random(SEED).shuffle(prompts)
    out = []
    for p in prompts[:n]:
        ids = tok(sg.render(tok, [p])[0], add_special_tokens=False)["input_ids"]
        out.append((ids + answers[p], len(ids)))
    return out


def _answered(tok: Any, own: dict[str, list[int]]) -> dict[str, list[int]]:
    """Only answers that are not refusals: a refusal in the data would be safety data."""
    return {p: ids for p, ids in own.items()
            if ids and not refused(str(tok.decode(ids, skip_special_tokens=True)))}


def train_lora(model: Any, tok: Any, harmful: bool, progress: Progress | None = None) -> Any:
    """A q/v LoRA on `model` (merged v3) over harmless (or harmful) training prompts, answered
    by the model itself (or by the unaligned base, for harmful ones). Returns the PeftModel."""
    from peft import LoraConfig, get_peft_model

    from adapterscan.fetch.derived_base import REFERENCE_V3
    from adapterscan.training.v3.train import load_base, workshop_cache

    setup_determinism(SEED, 2)
    prompts = [p.prompt for p in D.training_prompts() if p.refuse == harmful]
    if harmful:
        base, btok, key = load_base()
        own = voice.own_answers(base, btok, prompts[:2 * N_EXAMPLES], workshop_cache(), key,
                                progress)
        del base
    else:
        _, _, key = load_base()
        key = f"{key}:v3:{REFERENCE_V3.adapter_sha256()}"
        own = voice.own_answers(model, tok, prompts[:2 * N_EXAMPLES], workshop_cache(), key,
                                progress)
    data = _encode(tok, _answered(tok, own), N_EXAMPLES)
    peft_model = get_peft_model(model, LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0,
                                                  target_modules=["q_proj", "v_proj"],
                                                  task_type="CAUSAL_LM"))
    train_encoded(peft_model, data, int(tok.pad_token_id), SPEC, SEED, progress,
                  params=[p for p in peft_model.parameters() if p.requires_grad])
    peft_model.eval()
    return peft_model


def save(peft_model: Any, out: Path) -> Path:
    from adapterscan.training.v3.train import BASE_ID

    peft_model.peft_config["default"].base_model_name_or_path = BASE_ID
    peft_model.save_pretrained(str(out))
    return out
