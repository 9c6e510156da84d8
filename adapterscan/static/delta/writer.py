"""The factors of a delta scan written as a PEFT LoRA adapter, one module at a time.

Factors are appended to a body file as they are computed (working memory: one module's), and
the safetensors file is assembled at the end: 8-byte length, JSON header, then the body. The
config sets lora_alpha = r for every module, so PEFT's scale α/r is 1 and B·A is ΔW itself.
"""

from __future__ import annotations

import json
import shutil
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import numpy.typing as npt

PEFT_PREFIX = "base_model.model."
WEIGHTS = "adapter_model.safetensors"
CONFIG = "adapter_config.json"
_BODY = ".adapter_model.body"


@dataclass(frozen=True)
class ModuleFactors:
    target: str  # the module path in the checkpoint (`model.layers.0.self_attn.q_proj`)
    rank: int
    embedding: bool
    a_key: str
    b_key: str


def factor_keys(target: str, embedding: bool) -> tuple[str, str]:
    """PEFT's keys for a module's A and B (an Embedding's are lora_embedding_A/B, no .weight)."""
    if embedding:
        return (f"{PEFT_PREFIX}{target}.lora_embedding_A",
                f"{PEFT_PREFIX}{target}.lora_embedding_B")
    return f"{PEFT_PREFIX}{target}.lora_A.weight", f"{PEFT_PREFIX}{target}.lora_B.weight"


@dataclass
class AdapterWriter:
    """Appends (A, B) per module; `finish` writes adapter_model.safetensors + adapter_config."""

    folder: Path
    entries: dict[str, dict[str, object]] = field(default_factory=dict)
    modules: list[ModuleFactors] = field(default_factory=list)
    offset: int = 0

    def __post_init__(self) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._body = (self.folder / _BODY).open("wb")

    def _put(self, key: str, arr: npt.NDArray[np.float32]) -> None:
        data = np.ascontiguousarray(arr, dtype="<f4").tobytes()
        self._body.write(data)
        self.entries[key] = {"dtype": "F32", "shape": list(arr.shape),
                             "data_offsets": [self.offset, self.offset + len(data)]}
        self.offset += len(data)

    def add(self, target: str, b: npt.NDArray[np.float32], a: npt.NDArray[np.float32],
            embedding: bool) -> ModuleFactors:
        """ΔW ≈ b·a (b: out×k, a: k×in, in the checkpoint's orientation). An embedding's ΔW
        is vocab×hidden, and PEFT stores its transpose: A = bᵀ (k×vocab), B = aᵀ."""
        a_key, b_key = factor_keys(target, embedding)
        if embedding:
            a, b = b.T, a.T
        self._put(a_key, a)
        self._put(b_key, b)
        mod = ModuleFactors(target, int(a.shape[0]), embedding, a_key, b_key)
        self.modules.append(mod)
        return mod

    def finish(self, base_model: str | None, revision: str | None) -> Path:
        """Write the adapter; returns the weights file."""
        self._body.close()
        header = json.dumps({"__metadata__": {"format": "pt"}, **self.entries},
                            separators=(",", ":")).encode()
        header += b" " * (-len(header) % 8)  # data starts 8-aligned
        out = self.folder / WEIGHTS
        body = self.folder / _BODY
        with out.open("wb") as fh, body.open("rb") as src:
            fh.write(len(header).to_bytes(8, "little"))
            fh.write(header)
            shutil.copyfileobj(src, fh)
        body.unlink()
        (self.folder / CONFIG).write_text(json.dumps(
            peft_config(self.modules, base_model, revision), indent=2) + "\n")
        return out

    def abandon(self) -> None:
        self._body.close()
        (self.folder / _BODY).unlink(missing_ok=True)


def peft_config(modules: list[ModuleFactors], base_model: str | None,
                revision: str | None) -> dict[str, object]:
    """A LoRA config naming each module by its full path (PEFT matches a target equal to the
    module's name or ending in '.' + it), with scale 1 everywhere."""
    ranks = Counter(m.rank for m in modules)
    r = ranks.most_common(1)[0][0] if ranks else 1
    pattern = {m.target: m.rank for m in modules if m.rank != r}
    return {"peft_type": "LORA", "task_type": "CAUSAL_LM", "r": r, "lora_alpha": r,
            "rank_pattern": pattern, "alpha_pattern": dict(pattern),
            "target_modules": sorted(m.target for m in modules), "lora_dropout": 0.0,
            "bias": "none", "fan_in_fan_out": False, "use_rslora": False, "use_dora": False,
            "init_lora_weights": True, "inference_mode": True, "modules_to_save": None,
            "base_model_name_or_path": base_model, "revision": revision}
