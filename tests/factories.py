"""Fixture builders shared by the tests: everything is generated in tmp_path, nothing committed."""

from __future__ import annotations

import json
import shutil
import struct
import tomllib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

DTYPES = {"F32": np.float32, "F16": np.float16, "F64": np.float64, "I32": np.int32,
          "I64": np.int64, "U8": np.uint8, "I8": np.int8}


def raw_safetensors(header: bytes | Mapping[str, Any], data: bytes = b"", *,
                    header_len: int | None = None) -> bytes:
    """Bytes of a safetensors file with a hand-made header (no validation: for hostile cases)."""
    hb = header if isinstance(header, bytes) else json.dumps(header).encode()
    n = len(hb) if header_len is None else header_len
    return struct.pack("<Q", n) + hb + data


def safetensors_bytes(tensors: Mapping[str, np.ndarray],
                      metadata: Mapping[str, str] | None = None) -> bytes:
    """A well-formed safetensors file, laid out as the reference writer does (8-byte padded)."""
    names = {np.dtype(v).name: k for k, v in DTYPES.items()}
    header: dict[str, Any] = {}
    if metadata is not None:
        header["__metadata__"] = dict(metadata)
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        blob = arr.tobytes()
        header[name] = {"dtype": names[arr.dtype.name], "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(blobs)


def lora_tensors(*, layers: int = 2, hidden: int = 32, r: int = 4,
                 modules: Sequence[str] = ("q_proj", "v_proj"), seed: int = 0,
                 zero_b: bool = False, dtype: Any = np.float32) -> dict[str, np.ndarray]:
    """PEFT-named LoRA tensors for a Llama-shaped model."""
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i in range(layers):
        for m in modules:
            kind = "self_attn" if m.endswith(("q_proj", "k_proj", "v_proj", "o_proj")) else "mlp"
            prefix = f"base_model.model.model.layers.{i}.{kind}.{m}"
            a = rng.normal(0, 0.02, (r, hidden)).astype(dtype)
            b = (np.zeros((hidden, r)) if zero_b else rng.normal(0, 0.02, (hidden, r)))
            out[f"{prefix}.lora_A.weight"] = a
            out[f"{prefix}.lora_B.weight"] = b.astype(dtype)
    return out


def adapter_config(**overrides: Any) -> dict[str, Any]:
    cfg: dict[str, Any] = {
        "peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "org/base",
        "r": 4, "lora_alpha": 8, "lora_dropout": 0.0, "target_modules": ["q_proj", "v_proj"],
        "bias": "none", "fan_in_fan_out": False, "inference_mode": True,
        "init_lora_weights": True, "modules_to_save": None, "use_rslora": False,
        "rank_pattern": {}, "alpha_pattern": {}, "revision": None,
    }
    cfg.update(overrides)
    return cfg


def write_adapter(folder: Path, *, tensors: Mapping[str, np.ndarray] | None = None,
                  config: Mapping[str, Any] | None = None, **lora: Any) -> Path:
    """A complete, benign LoRA adapter folder (config + safetensors)."""
    folder.mkdir(parents=True, exist_ok=True)
    if config is None:
        # The config describes the tensors written: rank and targets agree.
        overrides: dict[str, Any] = {}
        if "r" in lora:
            overrides.update(r=lora["r"], lora_alpha=2 * lora["r"])
        if "modules" in lora:
            overrides["target_modules"] = list(lora["modules"])
        cfg = adapter_config(**overrides)
    else:
        cfg = dict(config)
    if tensors is None:
        lora.setdefault("r", cfg.get("r", 4))
        lora.setdefault("modules", cfg.get("target_modules", ("q_proj", "v_proj")))
        tensors = lora_tensors(**lora)
    (folder / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    (folder / "adapter_model.safetensors").write_bytes(safetensors_bytes(tensors))
    return folder


def rules_subset(root: Path, pattern: str, checks: frozenset[str]) -> Path:
    """A signatures folder at `root` holding the rules matching `pattern` whose check is one of
    `checks`: one analyzer's tests do not depend on the others' rule files."""
    from adapterscan.rules.loader import default_signatures_dir

    src = default_signatures_dir()
    shutil.copytree(src / "schema", root / "schema")
    (root / "rules").mkdir()
    for path in sorted((src / "rules").glob(pattern)):
        if tomllib.loads(path.read_text("utf-8"))["check"] in checks:
            shutil.copy(path, root / "rules" / path.name)
    return root
