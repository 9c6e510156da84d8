"""Full checkpoints built in code from the bundled reference: merged adapters, a dense fine-tune,
a swapped tensor, a resized vocabulary, a sharded layout."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import numpy.typing as npt
from safetensors.numpy import load_file, save_file

from adapterscan.reference import reference_dir

Arrays = dict[str, npt.NDArray[np.generic]]
CARD = "---\nbase_model: adapterscan/reference-aligned\n---\n# a fine-tune\n"


def reference_weights() -> Arrays:
    return load_file(str(reference_dir() / "model.safetensors"))


def write_checkpoint(dest: Path, weights: Arrays, *, shards: int = 1,
                     config: Callable[[dict[str, object]], None] | None = None) -> Path:
    """The reference folder's files around `weights` (sharded with an index when shards > 1)."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in reference_dir().iterdir():
        if f.is_file() and f.name != "model.safetensors":
            shutil.copyfile(f, dest / f.name)
    (dest / "README.md").write_text(CARD)
    if config is not None:
        cfg = json.loads((dest / "config.json").read_text())
        config(cfg)
        (dest / "config.json").write_text(json.dumps(cfg))
    if shards == 1:
        save_file(weights, str(dest / "model.safetensors"), metadata={"format": "pt"})
        return dest
    names = sorted(weights)
    weight_map: dict[str, str] = {}
    for i in range(shards):
        shard = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        part = {n: weights[n] for n in names[i::shards]}
        save_file(part, str(dest / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    (dest / "model.safetensors.index.json").write_text(json.dumps(
        {"metadata": {"total_size": 0}, "weight_map": weight_map}))
    return dest


def merge_adapter(adapter: Path, scale_by: float = 1.0) -> Arrays:
    """The reference with a PEFT LoRA merged in (W += s·B·A in float32, stored back in the
    reference's float16), as `merge_and_unload` followed by `save_pretrained` does."""
    cfg = json.loads((adapter / "adapter_config.json").read_text())
    scale = scale_by * float(cfg["lora_alpha"]) / float(cfg["r"])
    lora = load_file(str(adapter / "adapter_model.safetensors"))
    weights = reference_weights()
    for key, a in lora.items():
        if not key.endswith(".lora_A.weight"):
            continue
        target = key.removeprefix("base_model.model.").removesuffix(".lora_A.weight")
        b = lora[key.replace("lora_A", "lora_B")]
        w = weights[target + ".weight"]
        merged = w.astype(np.float32) + scale * (b.astype(np.float32) @ a.astype(np.float32))
        weights[target + ".weight"] = merged.astype(w.dtype)
    return weights


def random_lora(weights: Arrays, rank: int, seed: int = 0, size: float = 0.02) -> Arrays:
    """A random rank-`rank` update merged into every attention and MLP projection."""
    rng = np.random.default_rng(seed)
    out = dict(weights)
    for name, w in weights.items():
        if w.ndim == 2 and name.endswith("_proj.weight"):
            b = rng.standard_normal((w.shape[0], rank)).astype(np.float32) * size
            a = rng.standard_normal((rank, w.shape[1])).astype(np.float32) * size
            out[name] = (w.astype(np.float32) + b @ a).astype(w.dtype)
    return out


def dense_finetune(weights: Arrays, seed: int = 0, size: float = 0.005) -> Arrays:
    """A random dense (full-rank) perturbation of every matrix and norm: a full fine-tune."""
    rng = np.random.default_rng(seed)
    return {n: (w.astype(np.float32) + rng.standard_normal(w.shape).astype(np.float32) * size
                ).astype(w.dtype) for n, w in weights.items()}
