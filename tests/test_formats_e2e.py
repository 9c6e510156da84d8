"""Every LoRA format through the real `adapterscan scan` CLI: clean files pass with their modules
analysed, NaN / outlier cases are flagged, hostile GGUF headers are refused with a finding, and
nothing with unread weights reports complete."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import numpy as np
import pytest

from tests.cli_runner import Report, Scan, rule_ids
from tests.static.factories_formats import (
    KOHYA_META,
    diffusers_lora,
    kohya_lora,
    llama_factors,
    lycoris_mixed,
    mlx_config,
    write_gguf,
    write_mlx,
    write_st,
)

X60 = "lora_unet_down_blocks_1_attentions_0_transformer_blocks_2_attn1_to_q"


def _clean(code: int, doc: Report, modules: int, fmt: str) -> None:
    assert code == 0, (rule_ids(doc), doc["skipped"], doc["errors"])
    assert doc["complete"] and doc["verdict"]["decision"] == "pass", doc["verdict"]
    weights = doc["results"]["weights"]
    assert len(weights["modules"]) == modules == weights["summary"]["modules"] + \
        weights["summary"]["scaling_modules"]
    assert {f["format"] for f in doc["results"]["adapters"]} == {fmt}
    assert all(f["unrecognised_tensors"] == 0 for f in doc["results"]["adapters"])


def _finding(doc: Report, rule: str) -> dict[str, object]:
    hits = [f for f in doc["findings"] if f["rule_id"] == rule]
    assert hits, (rule, sorted(rule_ids(doc)))
    return hits[0]


def _kohya(tmp_path: Path, **edit: object) -> Path:
    t = kohya_lora(transformers=4)
    if edit.get("nan_alpha"):
        t[f"{X60}.alpha"] = np.array(np.nan, np.float32)
    if edit.get("nan_factor"):
        t[f"{X60}.lora_up.weight"][3, 1] = np.inf
    if edit.get("x60"):
        t[f"{X60}.lora_up.weight"] *= 60
    if edit.get("stray"):
        t["bundle_emb.trigger.string_to_param.*"] = np.ones((2, 32), np.float32)
    meta = {**KOHYA_META, "ss_tag_frequency": json.dumps({"10_style": {"1girl": 30, "smile": 9}})}
    return write_st(tmp_path, "style_lora.safetensors", t, meta)


def test_kohya_sdxl_lora_is_analysed(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(_kohya(tmp_path))
    _clean(code, doc, 48 + 8 + 2 + 1, "kohya")
    assert "AS508" not in rule_ids(doc)
    mods = {m["module"]: m for m in doc["results"]["weights"]["modules"]}
    conv = mods["lora_unet_down_blocks_0_resnets_0_conv1"]
    assert (conv["in_features"], conv["rank"], conv["scale"]) == (32 * 9, 4, 0.5)
    assert mods[X60]["type"] == "attn1_to_q" and mods[X60]["scale_source"] == "alpha tensor"
    evidence = _finding(doc, "AS335")["evidence"]
    assert isinstance(evidence, dict) and evidence["top_tags"][0] == {"tag": "1girl", "count": 30}
    assert doc["results"]["adapters"][0]["family"] == "diffusion"


@pytest.mark.parametrize(("edit", "tensor"), [("nan_alpha", f"{X60}.alpha"),
                                              ("nan_factor", f"{X60}.lora_up.weight")])
def test_kohya_nan_alpha_or_factor_fails(tmp_path: Path, cli: Scan, edit: str,
                                         tensor: str) -> None:
    code, doc = cli(_kohya(tmp_path, **{edit: True}))
    assert code == 1 and doc["verdict"]["decision"] == "fail"
    hit = _finding(doc, "AS501")
    assert hit["severity"] == "high" and hit["location"]["tensor"] == tensor  # type: ignore[index]


def test_kohya_module_scaled_x60_is_flagged(tmp_path: Path, cli: Scan) -> None:
    _, doc = cli(_kohya(tmp_path, x60=True))
    hit = _finding(doc, "AS508")
    assert hit["evidence"]["module"] == X60  # type: ignore[index]
    assert all(f["evidence"].get("module") == X60 for f in doc["findings"]  # type: ignore[union-attr]
               if f["rule_id"] == "AS508")


def test_unread_tensors_make_the_scan_incomplete(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(_kohya(tmp_path, stray=True))
    assert code == 3 and not doc["complete"]
    assert any("bundle_emb" in s["reason"] for s in doc["skipped"])


def test_unknown_tensor_names_are_never_clean(tmp_path: Path, cli: Scan) -> None:
    write_st(tmp_path, "model.safetensors",
             {"encoder.block.0.weight": np.ones((4, 4), np.float32)})
    code, doc = cli(tmp_path)
    assert code == 3 and any(s["path"] == "model.safetensors" for s in doc["skipped"])


def test_lycoris_every_algorithm_is_analysed(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(write_st(tmp_path, "lycoris.safetensors", lycoris_mixed()))
    _clean(code, doc, 14, "kohya")
    algos = doc["results"]["adapters"][0]["algorithms"]
    assert algos == {"loha": 6, "lokr": 6, "ia3": 1, "full": 1}
    ia3 = next(m for m in doc["results"]["weights"]["modules"] if m["algorithm"] == "ia3")
    assert ia3["on_input"] is True and 0.8 < ia3["gain_median"] < 1.2  # LyCORIS: W·(1 + v)


def test_lycoris_nan_in_loha_and_negative_ia3_gain_fail(tmp_path: Path, cli: Scan) -> None:
    t = lycoris_mixed()
    loha = next(k for k in t if k.endswith("hada_w2_b"))
    t[loha][0, 0] = np.nan
    ia3 = next(k for k in t if k.endswith(".weight"))
    t[ia3][5] = -3.0  # gain 1 + v = -2: channel 5 sign-flipped
    code, doc = cli(write_st(tmp_path, "lycoris.safetensors", t))
    assert code == 1
    assert _finding(doc, "AS501")["location"]["tensor"] == loha  # type: ignore[index]
    assert _finding(doc, "AS516")["evidence"]["nonpositive"] == 1  # type: ignore[index]


def test_diffusers_lora_needs_no_adapter_config(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(write_st(tmp_path, "pytorch_lora_weights.safetensors", diffusers_lora()))
    _clean(code, doc, 18, "diffusers")
    assert "AS301" not in rule_ids(doc)
    comps = {m["module"].split(".")[0] for m in doc["results"]["weights"]["modules"]}
    assert comps == {"unet", "text_encoder"}


def test_mlx_adapter_is_analysed_not_rejected(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(write_mlx(tmp_path, llama_factors(layers=4), scale=2.0))
    _clean(code, doc, 16, "mlx")
    assert "AS309" not in rule_ids(doc)
    assert {m["scale"] for m in doc["results"]["weights"]["modules"]} == {2.0}


def test_mlx_nan_factor_and_rank_mismatch(tmp_path: Path, cli: Scan) -> None:
    factors = llama_factors(layers=2)
    factors["model.layers.1.self_attn.v_proj"][1][0, 0] = np.nan
    code, doc = cli(write_mlx(tmp_path, factors, config=mlx_config(8, 2.0)))
    assert code == 1 and "AS501" in rule_ids(doc) and "AS319" in rule_ids(doc)


def test_gguf_lora_is_analysed(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(write_gguf(tmp_path / "adapter.gguf", llama_factors(layers=3),
                               dtype=np.float16).parent)
    _clean(code, doc, 12, "gguf")
    assert {m["scale"] for m in doc["results"]["weights"]["modules"]} == {2.0}  # alpha 8 / r 4


def test_gguf_nan_alpha_fails(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(write_gguf(tmp_path / "adapter.gguf", llama_factors(layers=1),
                               alpha=float("nan")).parent)
    assert code == 1 and _finding(doc, "AS501")["evidence"]["role"] == "scale"  # type: ignore[index]


def _counts(tensors: int, kvs: int) -> bytes:
    return b"GGUF" + struct.pack("<IQQ", 3, tensors, kvs)


@pytest.mark.parametrize(("raw", "reason"), [
    (_counts(2 ** 62, 0) + b"\0" * 64, "tensor count"),
    (_counts(0, 1) + struct.pack("<Q", 1) + b"k" + struct.pack("<IQ", 8, 2 ** 60) + b"\0" * 32,
     "length of 1152921504606846976"),
])
def test_hostile_gguf_is_refused(tmp_path: Path, cli: Scan, raw: bytes, reason: str) -> None:
    (tmp_path / "adapter.gguf").write_bytes(raw)
    code, doc = cli(tmp_path)
    assert code == 1 and not doc["results"]["weights"]["modules"]
    hit = _finding(doc, "AS234")
    assert hit["location"]["file"] == "adapter.gguf" and reason in str(hit["message"])


def test_gguf_model_file_is_not_passed_unread(tmp_path: Path, cli: Scan) -> None:
    import gguf

    w = gguf.GGUFWriter(str(tmp_path / "model.gguf"), arch="llama")
    w.add_type(gguf.GGUFType.MODEL)
    w.add_tensor("blk.0.attn_q.weight", np.ones((8, 8), np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    code, doc = cli(tmp_path)
    assert code == 3 and any("not a LoRA adapter" in s["reason"] for s in doc["skipped"])


def test_repo_with_several_formats_is_read_file_by_file(tmp_path: Path, cli: Scan) -> None:
    write_st(tmp_path, "style.safetensors", kohya_lora(transformers=1), KOHYA_META)
    write_gguf(tmp_path / "gguf" / "adapter.gguf", llama_factors(layers=1))
    write_mlx(tmp_path / "mlx", llama_factors(layers=1), scale=2.0)
    code, doc = cli(tmp_path)
    assert code == 0, (rule_ids(doc), doc["skipped"])
    formats = {f["file"]: f["format"] for f in doc["results"]["adapters"]}
    assert formats == {"style.safetensors": "kohya", "gguf/adapter.gguf": "gguf",
                       "mlx/adapters.safetensors": "mlx"}


def test_diffusion_lora_probe_does_not_apply(tmp_path: Path, cli: Scan) -> None:
    code, doc = cli(_kohya(tmp_path), "--base", "reference")
    assert code == 0 and doc["complete"]
    assert doc["results"]["probe"]["applies"] is False
    assert _finding(doc, "AS608")["severity"] == "info"
    # Diffusion modules are never compared with a causal-LM base (nothing counted as missing).
    assert doc["results"]["weights"]["base"]["missing"] == []


def test_peft_loha_lokr_ia3_from_the_peft_writer(tmp_path: Path, cli: Scan) -> None:
    pytest.importorskip("peft")
    import torch
    from peft import IA3Config, LoHaConfig, LoKrConfig, get_peft_model
    from transformers import LlamaConfig, LlamaForCausalLM

    cfg = LlamaConfig(vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2)
    configs = {"loha": LoHaConfig(r=4, alpha=8, target_modules=["q_proj", "down_proj"]),
               "lokr": LoKrConfig(r=2, alpha=4, target_modules=["q_proj", "v_proj"],
                                  decompose_factor=4),
               "ia3": IA3Config(target_modules=["k_proj", "down_proj"],
                                feedforward_modules=["down_proj"])}
    for name, peft_cfg in configs.items():
        torch.manual_seed(0)
        model = get_peft_model(LlamaForCausalLM(cfg), peft_cfg)
        with torch.no_grad():
            for pname, param in model.named_parameters():
                if any(k in pname for k in ("hada_", "lokr_", "ia3_l")):
                    param.add_(torch.randn_like(param) * 0.05)
        model.save_pretrained(str(tmp_path / name), safe_serialization=True)
        code, doc = cli(tmp_path / name)
        assert code == 0 and doc["complete"], (name, rule_ids(doc), doc["skipped"])
        algos = doc["results"]["adapters"][0]["algorithms"]
        assert algos == {name: 4}, algos


def test_diffusers_scale_comes_from_lora_adapter_metadata(tmp_path: Path, cli: Scan) -> None:
    meta = {"lora_adapter_metadata": json.dumps({"unet.r": 4, "unet.lora_alpha": 16,
                                                 "text_encoder.r": 4,
                                                 "text_encoder.lora_alpha": 4})}
    _, doc = cli(write_st(tmp_path, "pytorch_lora_weights.safetensors", diffusers_lora(), meta))
    scales = {m["module"].split(".")[0]: m["scale"] for m in doc["results"]["weights"]["modules"]}
    assert scales == {"unet": 4.0, "text_encoder": 1.0}


def test_kohya_dora_scale_is_checked(tmp_path: Path, cli: Scan) -> None:
    t = kohya_lora(transformers=1)
    t[f"{X60.replace('_2_', '_0_')}.dora_scale"] = np.full((32, 1), 0.5, np.float32)
    _, clean = cli(write_st(tmp_path / "neg", "lora.safetensors", t))
    t[f"{X60.replace('_2_', '_0_')}.dora_scale"][4] = -1.0
    code, doc = cli(write_st(tmp_path / "pos", "lora.safetensors", t))
    assert clean["complete"] and "AS513" not in rule_ids(clean)
    assert len(clean["results"]["weights"]["dora"]) == 1
    assert code == 1 and _finding(doc, "AS513")["evidence"]["count"] == 1  # type: ignore[index]
