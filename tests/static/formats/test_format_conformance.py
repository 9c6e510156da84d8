"""Every format reader feeds the same adapter model: one set of LoRA factors written as PEFT,
diffusers, kohya, MLX and GGUF gives the same modules, scales and ΔW statistics."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.formats.gguf import parse_gguf
from adapterscan.static.formats.model import AdapterModel, Algorithm, Format
from adapterscan.static.formats.names import gguf_target
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.formats.to_peft import peft_equivalent, unpermute_rows
from adapterscan.static.weights.analysis import compute_statistics
from tests.cli_runner import Scan, rule_ids
from tests.static.factories_formats import (
    llama_factors,
    mlx_config,
    peft_tensors,
    rope_permute,
    write_gguf,
    write_mlx,
    write_st,
)
from tests.static.factories_weights import emitter, headers

R, ALPHA = 4, 8.0  # scale 2 in every format
FACTORS = llama_factors(layers=2, hidden=32, r=R, modules=("q_proj", "k_proj", "v_proj"))


def _kohya_name(target: str) -> str:  # model.layers.0.self_attn.q_proj -> lora_te1_..._q_proj
    return "lora_te1_text_model_encoder_" + target.removeprefix("model.").replace(".", "_")


def _written(tmp_path: Path) -> dict[Format, AdapterModel]:
    out: dict[Format, AdapterModel] = {}
    peft = write_st(tmp_path / "peft", "adapter_model.safetensors", peft_tensors(FACTORS))
    out[Format.PEFT] = read_adapters(peft, headers(peft), {}, {
        "adapter_config.json": {"peft_type": "LORA", "r": R, "lora_alpha": ALPHA}})
    diffusers: dict[str, np.ndarray] = {}
    kohya: dict[str, np.ndarray] = {}
    for target, (a, b) in FACTORS.items():
        p = f"text_encoder.text_model.encoder.{target.removeprefix('model.')}"
        diffusers |= {f"{p}.lora_linear_layer.down.weight": a,
                      f"{p}.lora_linear_layer.up.weight": b,
                      f"{p}.alpha": np.array(ALPHA, np.float32)}
        k = _kohya_name(target)
        kohya |= {f"{k}.lora_down.weight": a, f"{k}.lora_up.weight": b,
                  f"{k}.alpha": np.array(ALPHA, np.float32)}
    for fmt, name, tensors in ((Format.DIFFUSERS, "pytorch_lora_weights.safetensors", diffusers),
                               (Format.KOHYA, "lora.safetensors", kohya)):
        folder = write_st(tmp_path / fmt.value, name, tensors)
        out[fmt] = read_adapters(folder, headers(folder), {}, {})
    mlx = write_mlx(tmp_path / "mlx", FACTORS, scale=ALPHA / R)
    out[Format.MLX] = read_adapters(mlx, headers(mlx), {}, {
        "adapter_config.json": mlx_config(R, ALPHA / R)})
    path = write_gguf(tmp_path / "gguf" / "a.gguf", FACTORS, alpha=ALPHA, n_head=4, n_kv_head=4)
    with path.open("rb") as fh:
        g = parse_gguf(fh, path.stat().st_size, "a.gguf")
    out[Format.GGUF] = read_adapters(path.parent, {}, {"a.gguf": g}, {})
    return out


def test_every_reader_feeds_the_same_model(tmp_path: Path) -> None:
    models = _written(tmp_path)
    reference = None
    for fmt, model in models.items():
        assert [f.format for f in model.files] == [fmt]
        assert not model.files[0].unrecognised, (fmt, model.files[0].unrecognised)
        stats = compute_statistics(model, emitter())
        # Float32 Grams sum in storage order (MLX transposed, GGUF q/k rows permuted): the
        # statistics agree to float32 rounding, far inside docs/weights.md's bound.
        got = sorted((r.pair.out_features, r.pair.in_features, r.pair.rank, r.scale.value,
                      r.pair.spectrum.fro, r.pair.kurtosis or 0.0) for r in stats.results)
        assert len(got) == len(FACTORS)
        assert all(m.algorithm is Algorithm.LORA and m.problem is None
                   for m in model.modules)
        if reference is None:
            reference = got
        assert got == [(*ref[:4], pytest.approx(ref[4], rel=1e-6), pytest.approx(ref[5], rel=1e-6))
                       for ref in reference], fmt
    families = {fmt: model.files[0].family.value for fmt, model in models.items()}
    assert families == {Format.PEFT: "causal-lm", Format.DIFFUSERS: "diffusion",
                        Format.KOHYA: "diffusion", Format.MLX: "causal-lm",
                        Format.GGUF: "causal-lm"}


def test_gguf_and_mlx_convert_back_to_the_peft_tensors(tmp_path: Path) -> None:
    """The probe's PEFT equivalent reproduces s·B and A exactly (q/k rows un-permuted)."""
    models = _written(tmp_path)
    for fmt in (Format.MLX, Format.GGUF):
        eq = peft_equivalent(models[fmt], n_head=4, n_kv_head=4)
        assert eq.config["r"] == eq.config["lora_alpha"] == R
        for target, (a, b) in FACTORS.items():
            key = f"base_model.model.{target}"
            assert np.allclose(eq.tensors[f"{key}.lora_A.weight"], a)
            assert np.allclose(eq.tensors[f"{key}.lora_B.weight"], (ALPHA / R) * b, atol=1e-6)


def test_unpermute_inverts_llama_cpp_permute() -> None:
    w = np.arange(64 * 3, dtype=np.float32).reshape(64, 3)
    for heads in (2, 4, 8):
        assert np.array_equal(unpermute_rows(rope_permute(w, heads), heads), w)
    assert gguf_target("blk.7.ffn_down") == "model.layers.7.mlp.down_proj"
    assert gguf_target("blk.0.ssm_in") is None


def test_diffusion_lora_is_not_converted(tmp_path: Path) -> None:
    from adapterscan.static.formats.to_peft import NotConvertible

    with pytest.raises(NotConvertible, match="only MLX and GGUF"):
        peft_equivalent(_written(tmp_path)[Format.KOHYA])


def test_format_is_recognised_by_content_not_name(tmp_path: Path, cli: Scan) -> None:
    """kohya tensors in a file named like PEFT's are read as kohya; a GGUF named .bin by its
    magic (and the name/content disagreement is itself a finding)."""
    rng = np.random.default_rng(0)
    folder = write_st(tmp_path / "k", "adapter_model.safetensors", {
        "lora_unet_mid_block_attentions_0_proj_in.lora_down.weight":
            rng.normal(size=(2, 8)).astype(np.float32),
        "lora_unet_mid_block_attentions_0_proj_in.lora_up.weight":
            rng.normal(size=(8, 2)).astype(np.float32)})
    model = read_adapters(folder, headers(folder), {}, {})
    assert model.files[0].format is Format.KOHYA
    path = write_gguf(tmp_path / "g" / "weights.bin", llama_factors(layers=1))
    _, doc = cli(path.parent)
    assert [f["format"] for f in doc["results"]["adapters"]] == ["gguf"]
    assert len(doc["results"]["weights"]["modules"]) == 4
    assert any(f["rule_name"] == "content-mismatch" or "content" in f["rule_name"]
               for f in doc["findings"]), rule_ids(doc)
