"""The PEFT equivalent of a non-PEFT causal-LM LoRA (mlx-lm, llama.cpp GGUF), for the probe.

The probe merges adapters with peft; an MLX or GGUF LoRA of a Llama-family model is turned into
PEFT-named tensors and a LoraConfig dict with the same ΔW:
- names: MLX keeps the Hugging Face module paths; the GGUF reader maps `blk.N.attn_q` back to
  `model.layers.N.self_attn.q_proj` for LLaMA-style architectures (names.gguf_target);
- orientation: MLX stores Aᵀ and Bᵀ; GGUF stores A (r×in) and B (out×r) row-major;
- row order: llama.cpp permutes the rows of q/k projections (and so of lora_b) for its RoPE
  layout; they are permuted back with the base's head counts;
- scale: folded into B (lora_alpha = r), so each module keeps exactly the scale its format's
  loader applies.
Reads go through the validated TensorRefs of the adapter model: nothing is re-parsed here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import AdapterModel, AdapterModule, Algorithm, Format

PEFT_PREFIX = "base_model.model."
F32 = npt.NDArray[np.float32]


class NotConvertible(ValueError):
    """The adapter has no PEFT equivalent this converter can build (the reason says why)."""


@dataclass(frozen=True)
class PeftEquivalent:
    config: dict[str, JSONValue]  # LoraConfig keyword arguments
    tensors: dict[str, F32]  # PEFT state-dict names -> float32 arrays
    source: str  # the files converted


def unpermute_rows(b: F32, n_head: int) -> F32:
    """Undo llama.cpp's `permute(w, n_head)` (reshape(n_head, 2, d/n_head/2).swapaxes(1, 2))."""
    out = b.shape[0]
    if n_head <= 0 or out % (2 * n_head):
        raise NotConvertible(f"{out} rows cannot be split into {n_head} RoPE heads")
    return np.ascontiguousarray(b.reshape(n_head, out // n_head // 2, 2, *b.shape[1:])
                                .swapaxes(1, 2).reshape(b.shape))


def peft_equivalent(model: AdapterModel, *, n_head: int | None = None,
                    n_kv_head: int | None = None) -> PeftEquivalent:
    """PEFT LoRA tensors and config for the MLX / GGUF LoRA files of `model`."""
    files = [f for f in model.files if f.modules]
    if not files:
        raise NotConvertible("no adapter module to apply")
    if any(f.format not in (Format.MLX, Format.GGUF) for f in files):
        kinds = sorted({f.format.value for f in files})
        raise NotConvertible(f"only MLX and GGUF LoRAs are converted for the probe, not {kinds}")
    tensors: dict[str, F32] = {}
    ranks: dict[str, int] = {}
    for f in files:
        for m in f.modules:
            target = m.target
            if target.startswith("blk."):
                raise NotConvertible(f"{f.path}: GGUF tensor {m.target} has no Hugging Face "
                                     "module name this converter knows (architecture "
                                     f"{f.metadata.get('general.architecture')!r})")
            a, b = _factors(m)
            if m.permuted_rows:
                heads = n_head if target.endswith("q_proj") else (n_kv_head or n_head)
                if heads is None:
                    raise NotConvertible("GGUF q/k projections need the base's head counts")
                b = unpermute_rows(b, heads)
            b = np.asarray(b * np.float32(m.scale.value), dtype=np.float32)
            if m.embedding:
                tensors[f"{PEFT_PREFIX}{target}.lora_embedding_A"] = a
                tensors[f"{PEFT_PREFIX}{target}.lora_embedding_B"] = b
            else:
                tensors[f"{PEFT_PREFIX}{target}.lora_A.weight"] = a
                tensors[f"{PEFT_PREFIX}{target}.lora_B.weight"] = b
            if target in ranks:
                raise NotConvertible(f"module {target} appears twice")
            ranks[target] = int(a.shape[0])
    r = max(set(ranks.values()), key=list(ranks.values()).count)
    pattern: dict[str, JSONValue] = {t: v for t, v in ranks.items() if v != r}
    config: dict[str, JSONValue] = {
        "r": r, "lora_alpha": r, "target_modules": list[JSONValue](sorted(ranks)),
        "rank_pattern": pattern, "alpha_pattern": dict(pattern), "lora_dropout": 0.0,
        "bias": "none", "task_type": "CAUSAL_LM", "init_lora_weights": False}
    return PeftEquivalent(config, tensors, ", ".join(f.path for f in files))


def _factors(m: AdapterModule) -> tuple[F32, F32]:
    """(A r×in, B out×r) as float32, in the orientation PEFT stores them."""
    if m.algorithm is not Algorithm.LORA or m.problem is not None or "mid" in m.factors:
        raise NotConvertible(f"module {m.name}: only plain LoRA factors are converted "
                             f"({m.algorithm.value}{', ' + m.problem if m.problem else ''})")
    a = m.read_a().dense().astype(np.float32)
    b = m.read_b().dense().astype(np.float32)
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise NotConvertible(f"module {m.name}: factors hold NaN or Inf")
    return np.ascontiguousarray(a), np.ascontiguousarray(b)
