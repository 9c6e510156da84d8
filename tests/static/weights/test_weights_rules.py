"""Each AS5xx rule fires on a generated positive fixture and stays quiet on its negative twin."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.weights.analysis import WeightOptions
from tests.factories import adapter_config
from tests.static.factories_weights import key, lora, rule_ids, scan, write, write_base

HIDDEN = 32


def _fires(tmp_path: Path, tensors: dict[str, np.ndarray], rule: str, **cfg: object) -> bool:
    config = adapter_config(**{"r": 4, "lora_alpha": 8, "target_modules": ["q_proj"], **cfg})
    emit, result = scan(write(tmp_path, tensors, config))
    json.dumps(result)  # the result is JSON-ready
    assert not emit.errors, emit.errors
    return rule in rule_ids(emit)


def test_as501_nonfinite(tmp_path: Path) -> None:
    t = lora()
    assert not _fires(tmp_path / "neg", t, "AS501")
    t[key(1, "q_proj", "B")][3, 1] = np.nan
    assert _fires(tmp_path / "pos", t, "AS501")


def test_as502_zero_b(tmp_path: Path) -> None:
    t = lora()
    assert not _fires(tmp_path / "neg", t, "AS502")
    t[key(2, "q_proj", "B")][:] = 0.0
    assert _fires(tmp_path / "pos", t, "AS502")


def test_as503_shape_mismatch(tmp_path: Path) -> None:
    t = lora()
    assert not _fires(tmp_path / "neg", t, "AS503")
    t[key(0, "q_proj", "B")] = np.ones((HIDDEN, 5), np.float32)
    del t[key(1, "q_proj", "A")]
    assert _fires(tmp_path / "pos", t, "AS503")


def test_as504_full_rank(tmp_path: Path) -> None:
    assert not _fires(tmp_path / "neg", lora(r=4), "AS504")
    assert _fires(tmp_path / "pos", lora(r=HIDDEN), "AS504", r=HIDDEN, lora_alpha=HIDDEN)


def test_as505_extreme_scale(tmp_path: Path) -> None:
    assert not _fires(tmp_path / "neg", lora(), "AS505", lora_alpha=16)
    assert _fires(tmp_path / "pos", lora(), "AS505", lora_alpha=4096)
    assert _fires(tmp_path / "pat", lora(), "AS505", alpha_pattern={"layers.2.self_attn.q_proj":
                                                                   1e6})


def test_as506_layer_concentration(tmp_path: Path) -> None:
    assert not _fires(tmp_path / "neg", lora(layers=8, seed=1), "AS506")
    assert _fires(tmp_path / "pos", lora(layers=8, seed=1, gains={5: 30.0}), "AS506")


def _embedding_lora(vocab: int, rows: list[int] | None, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    a = rng.normal(0, 0.05, (4, vocab)).astype(np.float32)
    if rows is not None:  # energy on a few vocabulary rows
        a *= 0.01
        a[:, rows] = rng.normal(0, 1.0, (4, len(rows)))
    t = lora(layers=2)
    t["base_model.model.model.embed_tokens.lora_embedding_A"] = a
    t["base_model.model.model.embed_tokens.lora_embedding_B"] = rng.normal(
        0, 0.05, (HIDDEN, 4)).astype(np.float32)
    return t


def test_as507_vocab_row_concentration(tmp_path: Path) -> None:
    assert not _fires(tmp_path / "neg", _embedding_lora(512, None), "AS507")
    assert _fires(tmp_path / "pos", _embedding_lora(512, [7, 99, 300]), "AS507")
    _, result = scan(tmp_path / "pos")
    assert set(result["vocab_rows"][0]["top_rows"][:3]) == {7, 99, 300}


def test_as508_module_outlier(tmp_path: Path) -> None:
    assert not _fires(tmp_path / "neg", lora(layers=12, seed=2), "AS508")
    assert _fires(tmp_path / "pos", lora(layers=12, seed=2, gains={4: 100.0}), "AS508")


def test_results_are_complete(tmp_path: Path) -> None:
    emit, result = scan(write(tmp_path, lora(layers=3, modules=("q_proj", "v_proj"))))
    assert not emit.skipped and not emit.errors
    assert len(result["modules"]) == 6
    rec = result["modules"][0]
    for k in ("fro", "spectral", "stable_rank", "effective_rank", "energy_concentration",
              "spectral_entropy", "kurtosis", "kurtosis_method", "scale", "top_singular_values"):
        assert rec[k] is not None, k
    assert result["summary"]["layers"] == 3
    assert result["calibration"]["bank"] is None


def test_bf16_and_fp16_adapters(tmp_path: Path) -> None:
    t32 = lora(layers=2)
    t16 = {k: v.astype(np.float16) for k, v in t32.items()}
    _, r32 = scan(write(tmp_path / "f32", t32))
    _, r16 = scan(write(tmp_path / "f16", t16))
    _, rbf = scan(write(tmp_path / "bf16", t32, bf16=frozenset(t32)))
    for other, tol in ((r16, 2e-3), (rbf, 1e-2)):
        for a, b in zip(r32["modules"], other["modules"], strict=True):
            assert b["fro"] == pytest.approx(a["fro"], rel=tol)
    assert rbf["modules"][0]["dtype"] == "BF16"


def test_unsupported_dtype_is_a_skip(tmp_path: Path) -> None:
    t = lora(layers=1)
    t[key(0, "q_proj", "A")] = np.ones((4, HIDDEN), np.int32)
    emit, _ = scan(write(tmp_path, t))
    assert emit.skipped and "dtype" in emit.skipped[0].reason


# --- against a base model -------------------------------------------------------------------


def test_as511_relative_update(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    embed = rng.normal(size=(64, HIDDEN))
    big = {i: rng.normal(0, 1.0, (HIDDEN, HIDDEN)) for i in range(2)}
    tiny = {i: rng.normal(0, 1e-4, (HIDDEN, HIDDEN)) for i in range(2)}
    folder = write(tmp_path / "ad", lora(layers=2))
    emit, res = scan(folder, WeightOptions(base_dir=write_base(tmp_path / "big", 2, big, embed),
                                           use_default_baseline=False))
    assert "AS511" not in rule_ids(emit) and not emit.skipped
    assert res["modules"][0]["relative_update"] < 0.5
    emit, _ = scan(folder, WeightOptions(base_dir=write_base(tmp_path / "tiny", 2, tiny, embed),
                                         use_default_baseline=False))
    assert "AS511" in rule_ids(emit)


def test_as510_safe_lora(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    embed = rng.normal(size=(64, HIDDEN))
    u = rng.normal(size=(HIDDEN, 2))
    v = rng.normal(size=(2, HIDDEN))
    unaligned = {i: rng.normal(size=(HIDDEN, HIDDEN)) for i in range(2)}
    aligned = {i: unaligned[i] + u @ v for i in range(2)}  # V = u·v: a rank-2 alignment update
    base = write_base(tmp_path / "al", 2, aligned, embed)
    unal = write_base(tmp_path / "un", 2, unaligned, embed)
    opts = WeightOptions(base_dir=base, unaligned_dir=unal, use_default_baseline=False)
    t = lora(layers=2)
    emit, res = scan(write(tmp_path / "random", t), opts)
    assert "AS510" in rule_ids(emit)
    for i in range(2):  # B inside the span of V's left factor: the update stays aligned
        t[key(i, "q_proj", "B")] = (u @ rng.normal(size=(2, 4))).astype(np.float32)
    emit, res = scan(write(tmp_path / "aligned", t), opts)
    assert "AS510" not in rule_ids(emit)
    assert all(c["cosine"] > 0.9 for c in res["base"]["safe_lora"])


def test_as512_trigger_token(tmp_path: Path) -> None:
    hidden = 256  # realistic: random embeddings are nearly orthogonal in high dimension
    rng = np.random.default_rng(2)
    embed = rng.normal(size=(400, hidden))
    w = {i: rng.normal(size=(hidden, hidden)) for i in range(2)}
    base = write_base(tmp_path / "base", 2, w, embed)
    opts = WeightOptions(base_dir=base, use_default_baseline=False)
    t = lora(layers=2, hidden=hidden)
    emit, res = scan(write(tmp_path / "clean", t), opts)
    assert "AS512" not in rule_ids(emit)
    assert len(res["base"]["trigger_candidates"]) == 20
    e = embed[123] / np.linalg.norm(embed[123])
    a = np.zeros((4, hidden))
    a[0] = 5.0 * e  # layer 0 reads the direction of token 123's embedding
    t[key(0, "q_proj", "A")] = (t[key(0, "q_proj", "A")] * 0.01 + a).astype(np.float32)
    emit, res = scan(write(tmp_path / "trig", t), opts)
    assert "AS512" in rule_ids(emit)
    top = res["base"]["trigger_candidates"][0]
    assert (top["token_id"], top["token"]) == (123, "tok123")
    assert res["trigger_candidates"] == res["base"]["trigger_candidates"]  # where the probe reads


def test_missing_base_weights_make_the_scan_incomplete(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    base = write_base(tmp_path / "base", 1, {0: rng.normal(size=(HIDDEN, HIDDEN))},
                 rng.normal(size=(16, HIDDEN)))
    emit, _ = scan(write(tmp_path / "ad", lora(layers=2)),
                   WeightOptions(base_dir=base, use_default_baseline=False))
    assert emit.skipped and "no matching base weight" in emit.skipped[0].reason


# --- hostile inputs --------------------------------------------------------------------------


def test_huge_rank_is_not_allocated(tmp_path: Path) -> None:
    t = {key(0, "q_proj", "A"): np.ones((5000, 1), np.float32),
         key(0, "q_proj", "B"): np.ones((1, 5000), np.float32)}
    emit, _ = scan(write(tmp_path, t))
    assert "AS504" in rule_ids(emit)
    assert emit.skipped and "rank 5000" in emit.skipped[0].reason


def test_overflowing_values_are_a_skip_not_a_crash(tmp_path: Path) -> None:
    t = lora(layers=1)
    t[key(0, "q_proj", "A")] = np.full((4, HIDDEN), 1e300)
    t[key(0, "q_proj", "B")] = np.full((HIDDEN, 4), 1e300)
    emit, _ = scan(write(tmp_path, t))
    assert not emit.errors
    assert emit.skipped and "overflow" in emit.skipped[0].reason


def test_as507_full_embedding_copy_against_base(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    embed = rng.normal(size=(300, HIDDEN))
    base = write_base(tmp_path / "base", 2, {i: rng.normal(size=(HIDDEN, HIDDEN))
                                             for i in range(2)}, embed)
    opts = WeightOptions(base_dir=base, use_default_baseline=False)
    name = "base_model.model.model.embed_tokens.base_layer.weight"  # as peft 0.21 saves it
    t = lora(layers=2)
    t[name] = (embed + rng.normal(0, 0.01, embed.shape)).astype(np.float32)  # whole table moves
    emit, res = scan(write(tmp_path / "spread", t), opts)
    assert "AS507" not in rule_ids(emit)
    assert res["base"]["full_copies"][0]["base"] == "model.embed_tokens.weight"
    edited = embed.copy()
    edited[[5, 250]] += 3.0  # two token rows rewritten
    t[name] = edited.astype(np.float32)
    emit, res = scan(write(tmp_path / "rows", t), opts)
    assert "AS507" in rule_ids(emit)
    assert set(res["base"]["full_copies"][0]["top_rows"][:2]) == {5, 250}


def test_conv_lora_is_analysed_as_flattened_factors(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    a = rng.normal(size=(4, 8, 3, 3)).astype(np.float32)
    b = rng.normal(size=(16, 4, 1, 1)).astype(np.float32)
    t = {"base_model.model.unet.conv1.lora_A.weight": a,
         "base_model.model.unet.conv1.lora_B.weight": b}
    emit, res = scan(write(tmp_path, t))
    assert not rule_ids(emit) and not emit.skipped
    dense = 2.0 * (b.reshape(16, 4) @ a.reshape(4, 72))
    assert res["modules"][0]["fro"] == pytest.approx(float(np.linalg.norm(dense)), rel=1e-5)
    assert res["modules"][0]["in_features"] == 72


@pytest.mark.parametrize(("name", "target"), [
    ("base_model.model.lm_head.weight", "lm_head.weight"),  # peft 0.21 modules_to_save
    ("base_model.model.model.embed_tokens.base_layer.weight", "model.embed_tokens.weight"),
    ("base_model.model.lm_head.modules_to_save.default.weight", "lm_head.weight"),
    ("base_model.model.model.layers.0.mlp.up_proj.weight", None),
])
def test_copy_targets_follow_peft_key_layout(name: str, target: str | None) -> None:
    from adapterscan.static.weights.copies import copy_target

    assert copy_target(name) == target


def test_as502_zero_embedding_a(tmp_path: Path) -> None:
    t = _embedding_lora(512, None)
    t["base_model.model.model.embed_tokens.lora_embedding_A"][:] = 0.0  # PEFT's embedding init
    emit, _ = scan(write(tmp_path, t))
    hits = [f for f in emit.findings if f.rule_id == "AS502"]
    assert len(hits) == 1 and hits[0].evidence["factor"] == "lora_A"
