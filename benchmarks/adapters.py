"""Large PEFT LoRA adapters for the benchmarks, written tensor by tensor (never whole in memory)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np

_TAGS = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16"}
# (dtype, rank) of each layer's modules; layers may differ (the 200 MiB folder mixes them).
LayerSpec = Callable[[int], tuple[type[np.floating], int]]


def write_lora(folder: Path, layers: int, shapes: Mapping[str, tuple[int, int]],
               spec: LayerSpec, *, alpha_per_rank: float = 2.0, std: float = 0.02,
               seed: int = 0) -> int:
    """A PEFT adapter (config + safetensors) of `layers` × `shapes` (module -> (out, in)),
    Gaussian factors; returns the size in bytes of its largest tensor."""
    rng = np.random.default_rng(seed)
    tensors: list[tuple[str, tuple[int, int], np.dtype[np.floating]]] = []
    for i in range(layers):
        dtype, r = spec(i)
        for module, (out, inp) in shapes.items():
            kind = "mlp" if module in ("gate_proj", "up_proj", "down_proj") else "self_attn"
            p = f"base_model.model.model.layers.{i}.{kind}.{module}"
            tensors += [(f"{p}.lora_A.weight", (r, inp), np.dtype(dtype)),
                        (f"{p}.lora_B.weight", (out, r), np.dtype(dtype))]
    tensors.sort(key=lambda t: t[0])
    header: dict[str, object] = {}
    offset = 0
    for name, shape, dt in tensors:
        size = shape[0] * shape[1] * dt.itemsize
        header[name] = {"dtype": _TAGS[dt], "shape": list(shape),
                        "data_offsets": [offset, offset + size]}
        offset += size
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    folder.mkdir(parents=True, exist_ok=True)
    largest = 0
    with (folder / "adapter_model.safetensors").open("wb") as fh:
        fh.write(len(hb).to_bytes(8, "little") + hb)
        for _, shape, dt in tensors:
            arr = (rng.standard_normal(shape, dtype=np.float32) * std).astype(dt.newbyteorder("<"))
            largest = max(largest, arr.nbytes)
            fh.write(arr.tobytes())
    r0 = spec(0)[1]
    ranks = {name.removesuffix(".lora_A.weight").removeprefix("base_model.model."): shape[0]
             for name, shape, _ in tensors if name.endswith(".lora_A.weight")}
    other = {k: r for k, r in ranks.items() if r != r0}  # PEFT matches these as suffixes
    cfg = {"peft_type": "LORA", "task_type": "CAUSAL_LM", "base_model_name_or_path": "org/base",
           "r": r0, "lora_alpha": alpha_per_rank * r0, "target_modules": list(shapes),
           "rank_pattern": other,
           "alpha_pattern": {k: alpha_per_rank * r for k, r in other.items()}}
    (folder / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    return largest
