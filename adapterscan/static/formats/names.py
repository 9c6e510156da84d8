"""Tensor-name grammars of each adapter format: name -> (module, role).

Roles: A / B (LoRA down / up), mid (LyCORIS Tucker core), alpha, magnitude (DoRA), bias,
w1a w1b w2a w2b t1 t2 (LoHa), k1 k1a k1b k2 k2a k2b kt2 (LoKr), ia3, on_input, diff, diff_b,
and `unsupported:<what>` for algorithms this build recognises but does not analyse (OFT, BOFT,
GLoRA...): they are reported as not analysed, never as clean.
"""

from __future__ import annotations

import re

from adapterscan.static.config.peft_names import parse_lora_key

# kohya / sd-scripts / LyCORIS module prefixes (SD1.5, SDXL, SD3, FLUX, Stable Cascade).
KOHYA_PREFIXES = ("lora_unet_", "lora_te_", "lora_te1_", "lora_te2_", "lora_te3_",
                  "lora_transformer_", "lora_prior_unet_", "lycoris_")
# diffusers pipeline components that prefix PEFT-style LoRA names in pytorch_lora_weights.
DIFFUSERS_COMPONENTS = ("unet", "text_encoder", "text_encoder_2", "text_encoder_3",
                        "transformer", "prior", "decoder")

_LYCORIS_SUFFIX = {
    "lora_down.weight": "A", "lora_up.weight": "B", "lora_mid.weight": "mid", "alpha": "alpha",
    "dora_scale": "magnitude",
    "hada_w1_a": "w1a", "hada_w1_b": "w1b", "hada_w2_a": "w2a", "hada_w2_b": "w2b",
    "hada_t1": "t1", "hada_t2": "t2",
    "lokr_w1": "k1", "lokr_w1_a": "k1a", "lokr_w1_b": "k1b", "lokr_w2": "k2", "lokr_w2_a": "k2a",
    "lokr_w2_b": "k2b", "lokr_t2": "kt2",
    "diff": "diff", "diff_b": "diff_b",
    "weight": "ia3", "on_input": "on_input",
    # Recognised, not analysed.
    "a1.weight": "unsupported:glora", "a2.weight": "unsupported:glora",
    "b1.weight": "unsupported:glora", "b2.weight": "unsupported:glora",
    "oft_blocks": "unsupported:oft", "oft_diag": "unsupported:oft", "rescale": "unsupported:oft",
    "bias_indices": "unsupported:bias-diff", "bias_values": "unsupported:bias-diff",
    "bias_size": "unsupported:bias-diff",
}
# PEFT's own names for its LyCORIS-family and other tuners (saved without `.weight`).
_PEFT_SUFFIX = {
    "hada_w1_a": "w1a", "hada_w1_b": "w1b", "hada_w2_a": "w2a", "hada_w2_b": "w2b",
    "hada_t1": "t1", "hada_t2": "t2",
    "lokr_w1": "k1", "lokr_w1_a": "k1a", "lokr_w1_b": "k1b", "lokr_w2": "k2",
    "lokr_w2_a": "k2a", "lokr_w2_b": "k2b", "lokr_t2": "kt2",
    "ia3_l": "ia3",
    "lora_E": "E",  # AdaLoRA's singular values: ΔW = B·diag(E)·A
    "oft_R.weight": "unsupported:oft", "boft_R": "unsupported:boft", "boft_s": "unsupported:boft",
    "vera_lambda_b": "unsupported:vera", "vera_lambda_d": "unsupported:vera",
}
# diffusers' pre-PEFT LoRA layers (LoRACompatibleLinear, attention processors, text encoders).
_DIFFUSERS_SUFFIX = (
    (".lora.down.weight", "A"), (".lora.up.weight", "B"),
    (".lora_linear_layer.down.weight", "A"), (".lora_linear_layer.up.weight", "B"),
    ("_lora.down.weight", "A"), ("_lora.up.weight", "B"),
    (".lora_down.weight", "A"), (".lora_up.weight", "B"),
    (".alpha", "alpha"),
)
_PEFT_KIND = {"lora_A": "A", "lora_B": "B", "lora_embedding_A": "A", "lora_embedding_B": "B",
              "lora_magnitude_vector": "magnitude"}
_PEFT_KEYS = sorted(_PEFT_SUFFIX, key=len, reverse=True)


def peft_name(name: str) -> tuple[str, str, bool] | None:
    """(module, role, embedding) for a PEFT-saved tensor name, or None."""
    parsed = parse_lora_key(name)
    if parsed is not None:
        module, kind, param = parsed
        role = _PEFT_KIND[kind]
        if param == "bias":
            if kind != "lora_B":
                return None
            role = "bias"
        return module, role, kind.startswith("lora_embedding")
    for suffix in _PEFT_KEYS:
        if name.endswith("." + suffix):
            return name[:-len(suffix) - 1], _PEFT_SUFFIX[suffix], False
    return None


def kohya_name(name: str) -> tuple[str, str] | None:
    """(module, role) for sd-scripts / LyCORIS names: `lora_unet_<path with _>.<suffix>`."""
    if not name.startswith(KOHYA_PREFIXES) or "." not in name:
        return None
    module, _, suffix = name.partition(".")
    role = _LYCORIS_SUFFIX.get(suffix)
    return (module, role) if role is not None else None


def diffusers_name(name: str) -> tuple[str, str, bool] | None:
    """(module, role, embedding) for diffusers LoRA names (PEFT-style or pre-PEFT layers)."""
    head = name.split(".", 1)[0]
    if head not in DIFFUSERS_COMPONENTS and ".processor." not in name:
        return None
    for suffix, role in _DIFFUSERS_SUFFIX:
        if name.endswith(suffix):
            return name[:-len(suffix)], role, False
    return peft_name(name)


def mlx_name(name: str) -> tuple[str, str] | None:
    """(module, role) for mlx-lm adapter names: `model.layers.0.self_attn.q_proj.lora_a`."""
    for suffix, role in ((".lora_a", "A"), (".lora_b", "B"), (".m", "magnitude")):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[:-len(suffix)], role
    return None


def gguf_name(name: str) -> tuple[str, str] | None:
    """(module, role) for llama.cpp LoRA tensors: `blk.0.attn_q.weight.lora_a`."""
    for suffix, role in ((".lora_a", "A"), (".lora_b", "B")):
        if name.endswith(suffix):
            return name[:-len(suffix)].removesuffix(".weight"), role
    return None


# llama.cpp GGUF names (gguf-py tensor_mapping) -> Hugging Face module paths, for architectures
# whose HF models name their layers `model.layers.N.self_attn.q_proj` etc.
GGUF_TO_HF = {
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}
GGUF_HF_ARCHS = frozenset({"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "gemma3"})
# convert_hf_to_gguf permutes q/k rows (LlamaModel.permute) for these architectures only.
GGUF_ROPE_PERMUTED = frozenset({"llama", "mistral"})
_GGUF_BLOCK = re.compile(r"^blk\.(\d+)\.(\w+)$")


def gguf_target(name: str) -> str | None:
    """`model.layers.3.self_attn.q_proj` for `blk.3.attn_q`; None for unmapped tensors."""
    if name == "output":
        return "lm_head"
    m = _GGUF_BLOCK.match(name)
    if m is None or m.group(2) not in GGUF_TO_HF:
        return None
    return f"model.layers.{m.group(1)}.{GGUF_TO_HF[m.group(2)]}"


def kohya_component(module: str) -> str:
    """unet / text_encoder / text_encoder_2 / transformer for a kohya module name."""
    if module.startswith(("lora_te1_", "lora_te_")):
        return "text_encoder"
    if module.startswith("lora_te2_"):
        return "text_encoder_2"
    if module.startswith("lora_te3_"):
        return "text_encoder_3"
    if module.startswith("lora_transformer_"):
        return "transformer"
    return "unet"


def kohya_target(module: str) -> str:
    """The flattened module path without the `lora_unet_` / `lora_te1_` prefix."""
    for p in sorted(KOHYA_PREFIXES, key=len, reverse=True):
        if module.startswith(p):
            return module[len(p):]
    return module
