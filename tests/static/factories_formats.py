"""Adapter files in every format, with each writer's real naming (generated, never committed).

kohya / sd-scripts and LyCORIS names follow `networks/lora.py` and `lycoris/modules/*.py` (SDXL
UNet blocks and both text encoders); diffusers names follow `pytorch_lora_weights.safetensors`
saved through PEFT; MLX names and config follow mlx-lm's `adapters.safetensors` and
`adapter_config.json`; GGUF files are written by the `gguf` package's GGUFWriter with the keys
and tensor names of llama.cpp's convert_lora_to_gguf.py.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from tests.factories import safetensors_bytes

Arrays = dict[str, np.ndarray]

# SDXL UNet attention modules (diffusers paths flattened with "_" by sd-scripts).
SDXL_ATTN = ("attn1_to_q", "attn1_to_k", "attn1_to_v", "attn1_to_out_0", "attn2_to_q",
             "attn2_to_out_0")
KOHYA_META = {
    "ss_network_module": "networks.lora", "ss_network_dim": "4", "ss_network_alpha": "2.0",
    "ss_sd_model_name": "sd_xl_base_1.0.safetensors", "ss_base_model_version": "sdxl_base_v1-0",
    "ss_output_name": "style", "ss_num_train_images": "40",
}


def _rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


def low_rank(rng: np.random.Generator, out: int, inp: int, r: int, gain: float = 1.0
             ) -> tuple[np.ndarray, np.ndarray]:
    """(A r×in, B out×r) with trained-looking scales."""
    a = rng.normal(0, 0.05, (r, inp)).astype(np.float32)
    b = (gain * rng.normal(0, 0.05, (out, r))).astype(np.float32)
    return a, b


def kohya_names(blocks: int = 2, transformers: int = 4) -> list[str]:
    """SDXL-style kohya module names: UNet attention blocks and text-encoder layers."""
    names = [f"lora_unet_down_blocks_1_attentions_{b}_transformer_blocks_{t}_{m}"
             for b in range(blocks) for t in range(transformers) for m in SDXL_ATTN]
    names += [f"lora_te1_text_model_encoder_layers_{i}_self_attn_{p}"
              for i in range(2) for p in ("q_proj", "k_proj", "v_proj", "out_proj")]
    names += [f"lora_te2_text_model_encoder_layers_{i}_mlp_fc1" for i in range(2)]
    return names


def kohya_lora(*, r: int = 4, dim: int = 32, alpha: float = 2.0, seed: int = 0,
               blocks: int = 2, transformers: int = 4, conv: bool = True,
               dtype: Any = np.float32) -> Arrays:
    """A kohya LoRA: `.lora_down.weight` [r, in], `.lora_up.weight` [out, r], `.alpha` []."""
    rng = _rng(seed)
    t: Arrays = {}
    for name in kohya_names(blocks, transformers):
        a, b = low_rank(rng, dim, dim, r)
        t[f"{name}.lora_down.weight"] = a.astype(dtype)
        t[f"{name}.lora_up.weight"] = b.astype(dtype)
        t[f"{name}.alpha"] = np.array(alpha, dtype=dtype)
    if conv:  # LoCon on a resnet conv: down [r, in, 3, 3], up [out, r, 1, 1]
        name = "lora_unet_down_blocks_0_resnets_0_conv1"
        t[f"{name}.lora_down.weight"] = rng.normal(0, 0.05, (r, dim, 3, 3)).astype(dtype)
        t[f"{name}.lora_up.weight"] = rng.normal(0, 0.05, (dim, r, 1, 1)).astype(dtype)
        t[f"{name}.alpha"] = np.array(alpha, dtype=dtype)
    return t


def loha(rng: np.random.Generator, name: str, out: int, inp: int, r: int,
         alpha: float) -> Arrays:
    """LyCORIS LoHa: hada_w1_a [out, r], hada_w1_b [r, in], hada_w2_a, hada_w2_b, alpha."""
    a1, b1 = low_rank(rng, out, inp, r)
    a2, b2 = low_rank(rng, out, inp, r)
    return {f"{name}.hada_w1_a": b1 * 8, f"{name}.hada_w1_b": a1 * 8,
            f"{name}.hada_w2_a": b2 * 8, f"{name}.hada_w2_b": a2 * 8,
            f"{name}.alpha": np.array(alpha, np.float32)}


def lokr(rng: np.random.Generator, name: str, out: tuple[int, int], inp: tuple[int, int],
         r: int | None, alpha: float) -> Arrays:
    """LyCORIS LoKr: lokr_w1 [o1, i1] full; lokr_w2 full, or lokr_w2_a [o2, r] and lokr_w2_b
    [r, i2] when decomposed."""
    t: Arrays = {f"{name}.lokr_w1": rng.normal(0, 0.3, (out[0], inp[0])).astype(np.float32),
                 f"{name}.alpha": np.array(alpha, np.float32)}
    if r is None:
        t[f"{name}.lokr_w2"] = rng.normal(0, 0.05, (out[1], inp[1])).astype(np.float32)
    else:
        t[f"{name}.lokr_w2_a"] = rng.normal(0, 0.1, (out[1], r)).astype(np.float32)
        t[f"{name}.lokr_w2_b"] = rng.normal(0, 0.1, (r, inp[1])).astype(np.float32)
    return t


def lycoris_mixed(seed: int = 0, dim: int = 32) -> Arrays:
    """One LyCORIS file with every algorithm it writes: LoHa, LoKr, (IA)3 and full diff."""
    rng = _rng(seed)
    t: Arrays = {}
    names = kohya_names(1, 2)
    for name in names[:6]:
        t.update(loha(rng, name, dim, dim, 4, 4.0))
    for name in names[6:12]:
        t.update(lokr(rng, name, (4, dim // 4), (4, dim // 4), 2 if name[-1] in "qk" else None,
                      2.0))
    ia3 = "lora_unet_down_blocks_1_attentions_1_transformer_blocks_0_ff_net_2"
    t[f"{ia3}.weight"] = rng.normal(0, 0.05, dim).astype(np.float32)
    t[f"{ia3}.on_input"] = np.array(1, np.int64)
    full = "lora_unet_down_blocks_1_attentions_1_proj_in"
    t[f"{full}.diff"] = rng.normal(0, 0.01, (dim, dim)).astype(np.float32)
    t[f"{full}.diff_b"] = rng.normal(0, 0.01, dim).astype(np.float32)
    return t


def diffusers_lora(seed: int = 0, dim: int = 32, r: int = 4) -> Arrays:
    """diffusers' pytorch_lora_weights.safetensors saved through PEFT (`unet.…lora_A.weight`)."""
    rng = _rng(seed)
    t: Arrays = {}
    for blk in range(4):
        for proj in ("to_q", "to_k", "to_v", "to_out.0"):
            p = f"unet.down_blocks.1.attentions.0.transformer_blocks.{blk}.attn1.{proj}"
            a, b = low_rank(rng, dim, dim, r)
            t[f"{p}.lora_A.weight"], t[f"{p}.lora_B.weight"] = a, b
    for i in range(2):
        p = f"text_encoder.text_model.encoder.layers.{i}.self_attn.q_proj"
        a, b = low_rank(rng, dim, dim, r)
        t[f"{p}.lora_A.weight"], t[f"{p}.lora_B.weight"] = a, b
    return t


def llama_factors(layers: int = 4, hidden: int = 32, r: int = 4, seed: int = 0,
                  modules: Sequence[str] = ("q_proj", "k_proj", "v_proj", "o_proj")
                  ) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """HF module path -> (A r×in, B out×r) for a Llama-shaped model."""
    rng = _rng(seed)
    return {f"model.layers.{i}.self_attn.{m}": low_rank(rng, hidden, hidden, r)
            for i in range(layers) for m in modules}


def peft_tensors(factors: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> Arrays:
    t: Arrays = {}
    for target, (a, b) in factors.items():
        t[f"base_model.model.{target}.lora_A.weight"] = a
        t[f"base_model.model.{target}.lora_B.weight"] = b
    return t


def mlx_config(rank: int, scale: float, **over: Any) -> dict[str, Any]:
    """mlx-lm's adapter_config.json: its training arguments."""
    cfg: dict[str, Any] = {
        "adapter_path": "adapters", "batch_size": 4, "data": "data", "fine_tune_type": "lora",
        "iters": 600, "learning_rate": 1e-05, "model": "mlx-community/Llama-3.2-1B-Instruct-4bit",
        "num_layers": 16, "seed": 0, "train": True,
        "lora_parameters": {"rank": rank, "scale": scale, "dropout": 0.0,
                            "keys": ["self_attn.q_proj", "self_attn.v_proj"]}}
    cfg.update(over)
    return cfg


def write_mlx(folder: Path, factors: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
              scale: float = 20.0, config: Mapping[str, Any] | None = None) -> Path:
    """adapters.safetensors with `lora_a` = Aᵀ [in, r] and `lora_b` = Bᵀ [r, out]."""
    folder.mkdir(parents=True, exist_ok=True)
    t: Arrays = {}
    r = 0
    for target, (a, b) in factors.items():
        t[f"{target}.lora_a"] = np.ascontiguousarray(a.T)
        t[f"{target}.lora_b"] = np.ascontiguousarray(b.T)
        r = a.shape[0]
    (folder / "adapters.safetensors").write_bytes(safetensors_bytes(t))
    (folder / "adapter_config.json").write_text(json.dumps(config or mlx_config(r, scale)))
    return folder


GGUF_NAMES = {"self_attn.q_proj": "attn_q", "self_attn.k_proj": "attn_k",
              "self_attn.v_proj": "attn_v", "self_attn.o_proj": "attn_output",
              "mlp.gate_proj": "ffn_gate", "mlp.up_proj": "ffn_up", "mlp.down_proj": "ffn_down"}


def rope_permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp convert_hf_to_gguf LlamaModel.permute (applied to q/k weights and lora_b)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2) \
        .reshape(w.shape)


def write_gguf(path: Path, factors: Mapping[str, tuple[np.ndarray, np.ndarray]], *,
               alpha: float = 8.0, n_head: int = 4, n_kv_head: int = 4,
               kv: Mapping[str, Any] | None = None, dtype: Any = np.float32,
               tokenizer: bool = False) -> Path:
    """A llama.cpp LoRA adapter written by gguf's GGUFWriter, named as convert_lora_to_gguf."""
    import gguf

    path.parent.mkdir(parents=True, exist_ok=True)
    w = gguf.GGUFWriter(str(path), arch="llama")
    w.add_type(gguf.GGUFType.ADAPTER)
    w.add_string(gguf.Keys.Adapter.TYPE, "lora")
    w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
    for key, value in (kv or {}).items():
        w.add_string(key, value) if isinstance(value, str) else w.add_float32(key, value)
    if tokenizer:
        w.add_tokenizer_model("llama")
        w.add_token_list(["<s>", "</s>", "hello"])
        w.add_chat_template("{% for m in messages %}{{ m.content }}{% endfor %}")
    for target, (a, b) in factors.items():
        layer, module = target.removeprefix("model.layers.").split(".", 1)
        name = f"blk.{layer}.{GGUF_NAMES[module]}.weight"
        if module == "self_attn.q_proj":
            b = rope_permute(b, n_head)
        elif module == "self_attn.k_proj":
            b = rope_permute(b, n_kv_head)
        w.add_tensor(f"{name}.lora_a", np.ascontiguousarray(a, dtype=dtype))
        w.add_tensor(f"{name}.lora_b", np.ascontiguousarray(b, dtype=dtype))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def write_st(folder: Path, name: str, tensors: Mapping[str, np.ndarray],
             metadata: Mapping[str, str] | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(safetensors_bytes(tensors, metadata))
    return folder


def sdxl_kohya_shapes(text_encoders: bool = True) -> list[tuple[str, int, int]]:
    """(kohya module name, out, in) of every Linear an sd-scripts SDXL LoRA adapts: the UNet's
    70 transformer blocks (attn1, attn2 with 2048-wide context, GEGLU feed-forward) with each
    attention's proj_in/proj_out, plus CLIP-L (te1, 12 layers) and OpenCLIP-bigG (te2, 32)."""
    out: list[tuple[str, int, int]] = []
    blocks = [("down_blocks_1", 2, 2, 640), ("down_blocks_2", 2, 10, 1280),
              ("mid_block", 1, 10, 1280), ("up_blocks_0", 3, 10, 1280),
              ("up_blocks_1", 3, 2, 640)]
    for block, attentions, depth, d in blocks:
        for a in range(attentions):
            p = f"lora_unet_{block}_attentions_{a}"
            out += [(f"{p}_proj_in", d, d), (f"{p}_proj_out", d, d)]
            for t in range(depth):
                q = f"{p}_transformer_blocks_{t}"
                out += [(f"{q}_attn1_{m}", d, d) for m in ("to_q", "to_k", "to_v", "to_out_0")]
                out += [(f"{q}_attn2_to_q", d, d), (f"{q}_attn2_to_k", d, 2048),
                        (f"{q}_attn2_to_v", d, 2048), (f"{q}_attn2_to_out_0", d, d),
                        (f"{q}_ff_net_0_proj", 8 * d, d), (f"{q}_ff_net_2", d, 4 * d)]
    if text_encoders:
        for te, layers, d in (("lora_te1", 12, 768), ("lora_te2", 32, 1280)):
            for i in range(layers):
                p = f"{te}_text_model_encoder_layers_{i}"
                out += [(f"{p}_self_attn_{m}", d, d)
                        for m in ("q_proj", "k_proj", "v_proj", "out_proj")]
                out += [(f"{p}_mlp_fc1", 4 * d, d), (f"{p}_mlp_fc2", d, 4 * d)]
    return out


def kohya_from_shapes(shapes: Sequence[tuple[str, int, int]], r: int, alpha: float,
                      dtype: Any = np.float16, seed: int = 0) -> Arrays:
    rng = _rng(seed)
    t: Arrays = {}
    for name, out, inp in shapes:
        t[f"{name}.lora_down.weight"] = rng.normal(0, 0.02, (r, inp)).astype(dtype)
        t[f"{name}.lora_up.weight"] = rng.normal(0, 0.005, (out, r)).astype(dtype)
        t[f"{name}.alpha"] = np.array(alpha, dtype=dtype)
    return t
