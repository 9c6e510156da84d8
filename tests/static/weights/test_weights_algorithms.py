"""LoHa, LoKr, Tucker and full-diff statistics agree with the dense ΔW they describe."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.formats.model import AdapterModule, Algorithm
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.formats.tensor_reader import RawTensor
from adapterscan.static.weights.algorithms import PAIRS, lora_factors
from adapterscan.static.weights.kron import dense_side, kron_moments, kron_spectrum, lowrank_side
from adapterscan.static.weights.lowrank import FaceSplit, TensorVectors, summarize_vectors
from tests.static.factories_formats import write_st
from tests.static.factories_weights import headers


def _raw(x: np.ndarray) -> RawTensor:
    x = np.asarray(x, dtype=np.float64)
    return RawTensor("t", "F64", x.shape, x.reshape(x.shape[0], -1))


def _dense_stats(d: np.ndarray) -> dict[str, float]:
    sv = np.linalg.svd(d, compute_uv=False)
    x = d.ravel() - d.mean()
    return {"fro": float(np.linalg.norm(d)), "spectral": float(sv[0]),
            "stable_rank": float((sv ** 2).sum() / sv[0] ** 2),
            "kurtosis": float((x ** 4).mean() / (x ** 2).mean() ** 2)}


def _check(pair_or_spectrum: object, d: np.ndarray, kurtosis: float | None,
           rel: float = 1e-6) -> None:
    spectrum = getattr(pair_or_spectrum, "spectrum", pair_or_spectrum)
    want = _dense_stats(d)
    assert spectrum.fro == pytest.approx(want["fro"], rel=rel)  # type: ignore[attr-defined]
    assert spectrum.spectral == pytest.approx(want["spectral"], rel=rel)  # type: ignore[attr-defined]
    assert spectrum.stable_rank == pytest.approx(want["stable_rank"], rel=rel)  # type: ignore[attr-defined]
    if kurtosis is not None:
        assert kurtosis == pytest.approx(want["kurtosis"], rel=1e-5)


def _module(tmp_path: Path, tensors: dict[str, np.ndarray]) -> AdapterModule:
    folder = write_st(tmp_path, "lora.safetensors", tensors)
    model = read_adapters(folder, headers(folder), {}, {})
    assert len(model.modules) == 1, model.files
    return model.modules[0]


def test_face_split_gram_is_the_hadamard_structure() -> None:
    """Σ_ij ((B1A1)∘(B2A2))²_ij = tr(G_B̃ G_Ã), checked against the dense product."""
    rng = np.random.default_rng(1)
    b1, b2 = rng.normal(size=(30, 3)), rng.normal(size=(30, 2))
    a1, a2 = rng.normal(size=(3, 20)), rng.normal(size=(2, 20))
    from adapterscan.static.weights.lowrank import plan_kurtosis

    plan = plan_kurtosis(30, 20, 6)
    sb = summarize_vectors(FaceSplit(TensorVectors(_raw(b1), True), TensorVectors(_raw(b2), True)),
                           plan)
    sa = summarize_vectors(FaceSplit(TensorVectors(_raw(a1), False),
                                     TensorVectors(_raw(a2), False)), plan)
    dense = (b1 @ a1) * (b2 @ a2)
    assert float(np.sum(sb.gram * sa.gram)) == pytest.approx(float((dense ** 2).sum()), rel=1e-10)


@pytest.mark.parametrize(("out", "inp", "r"), [(24, 40, 3), (300, 200, 4), (700, 600, 5)])
def test_loha_matches_dense(tmp_path: Path, out: int, inp: int, r: int) -> None:
    rng = np.random.default_rng(out)
    w = {k: rng.normal(0, 0.3, s).astype(np.float32) for k, s in (
        ("hada_w1_a", (out, r)), ("hada_w1_b", (r, inp)), ("hada_w2_a", (out, r)),
        ("hada_w2_b", (r, inp)))}
    name = "lora_unet_mid_block_attentions_0_proj_in"
    m = _module(tmp_path, {f"{name}.{k}": v for k, v in w.items()}
                | {f"{name}.alpha": np.array(2.0 * r, np.float32)})
    assert m.algorithm is Algorithm.LOHA and m.scale.value == pytest.approx(2.0)
    pair, zero = PAIRS[Algorithm.LOHA](m, m.scale.value)
    f = {k: v.astype(np.float64) for k, v in w.items()}
    dense = 2.0 * (f["hada_w1_a"] @ f["hada_w1_b"]) * (f["hada_w2_a"] @ f["hada_w2_b"])
    exact = not pair.kurtosis_method.startswith("sampled")
    _check(pair, dense, pair.kurtosis if exact else None)
    assert pair.rank == r * r and zero is None
    if not exact:  # rows drawn by energy (fixed seed) estimate the kurtosis
        assert pair.kurtosis == pytest.approx(_dense_stats(dense)["kurtosis"], rel=0.25)


def test_loha_tucker_conv_matches_dense(tmp_path: Path) -> None:
    """LyCORIS conv LoHa with Tucker cores: w = einsum('ijkl,jr,ip->prkl', t, w_b, w_a)."""
    rng = np.random.default_rng(3)
    r, out, inp, k = 3, 16, 8, 3
    t = {n: rng.normal(0, 0.5, s).astype(np.float32) for n, s in (
        ("hada_t1", (r, r, k, k)), ("hada_w1_a", (r, out)), ("hada_w1_b", (r, inp)),
        ("hada_t2", (r, r, k, k)), ("hada_w2_a", (r, out)), ("hada_w2_b", (r, inp)))}
    name = "lora_unet_down_blocks_0_resnets_0_conv1"
    m = _module(tmp_path, {f"{name}.{n}": v for n, v in t.items()})
    pair, _ = PAIRS[Algorithm.LOHA](m, m.scale.value)
    f = {n: v.astype(np.float64) for n, v in t.items()}
    w1 = np.einsum("ijkl,jr,ip->prkl", f["hada_t1"], f["hada_w1_b"], f["hada_w1_a"])
    w2 = np.einsum("ijkl,jr,ip->prkl", f["hada_t2"], f["hada_w2_b"], f["hada_w2_a"])
    assert m.scale.value == 1.0  # no alpha tensor: scale 1
    _check(pair, (w1 * w2).reshape(out, -1), pair.kurtosis)


@pytest.mark.parametrize("w2_rank", [None, 3])
def test_lokr_matches_dense(tmp_path: Path, w2_rank: int | None) -> None:
    rng = np.random.default_rng(7)
    w1 = rng.normal(0, 0.4, (4, 5)).astype(np.float32)
    t = {"lokr_w1": w1, "alpha": np.array(6.0, np.float32)}
    if w2_rank is None:
        w2 = rng.normal(0, 0.1, (6, 8, 3, 3)).astype(np.float32)  # conv: kron(w1, w2) per tap
        t["lokr_w2"] = w2
    else:
        t["lokr_w2_a"] = rng.normal(0, 0.2, (6, w2_rank)).astype(np.float32)
        t["lokr_w2_b"] = rng.normal(0, 0.2, (w2_rank, 8)).astype(np.float32)
        w2 = t["lokr_w2_a"].astype(np.float64) @ t["lokr_w2_b"]
    name = "lora_unet_up_blocks_0_attentions_0_proj_out"
    m = _module(tmp_path, {f"{name}.{k}": v for k, v in t.items()})
    pair, _ = PAIRS[Algorithm.LOKR](m, m.scale.value)
    # Decomposed w2: alpha / rank; both sides full: scale 1 (ComfyUI / sd-webui semantics).
    scale = 1.0 if w2_rank is None else 6.0 / w2_rank
    assert m.scale.value == pytest.approx(scale)
    w1_4d = w1.astype(np.float64)[:, :, None, None] if w2.ndim == 4 else w1.astype(np.float64)
    dense = scale * np.kron(w1_4d, w2.astype(np.float64))
    _check(pair, dense.reshape(dense.shape[0], -1), pair.kurtosis)
    assert (pair.out_features, pair.in_features) == (24, dense.reshape(24, -1).shape[1])


def test_kron_helpers_match_dense() -> None:
    rng = np.random.default_rng(9)
    x, y = rng.normal(size=(7, 5)), rng.normal(size=(3, 4))
    b, a = rng.normal(size=(3, 2)), rng.normal(size=(2, 4))
    s_dense = kron_spectrum(dense_side(_raw(x)), dense_side(_raw(y)), 1.5)
    _check(s_dense, 1.5 * np.kron(x, y), kron_moments(dense_side(_raw(x)),
                                                       dense_side(_raw(y))).kurtosis)
    low = lowrank_side(_raw(b), _raw(a))
    _check(kron_spectrum(dense_side(_raw(x)), low, 1.0), np.kron(x, b @ a),
           kron_moments(dense_side(_raw(x)), low).kurtosis)
    assert math.isclose(s_dense.fro, 1.5 * np.linalg.norm(x) * np.linalg.norm(y), rel_tol=1e-9)


def test_lora_tucker_mid_matches_dense(tmp_path: Path) -> None:
    """LyCORIS LoCon with use_tucker: up [out, r, 1, 1], mid [r, r, k, k], down [r, in, 1, 1]."""
    rng = np.random.default_rng(11)
    r, out, inp = 3, 12, 10
    up = rng.normal(0, 0.3, (out, r, 1, 1)).astype(np.float32)
    mid = rng.normal(0, 0.3, (r, r, 3, 3)).astype(np.float32)
    down = rng.normal(0, 0.3, (r, inp, 1, 1)).astype(np.float32)
    name = "lora_unet_down_blocks_0_resnets_0_conv2"
    m = _module(tmp_path, {f"{name}.lora_up.weight": up, f"{name}.lora_mid.weight": mid,
                           f"{name}.lora_down.weight": down,
                           f"{name}.alpha": np.array(1.5, np.float32)})
    b, a = lora_factors(m)
    dense = np.einsum("ijkl,jr,pi->prkl", mid.astype(np.float64), down[:, :, 0, 0],
                      up[:, :, 0, 0]).reshape(out, -1)
    assert np.allclose(b.dense() @ a.dense(), dense)
    pair, _ = PAIRS[Algorithm.LORA](m, m.scale.value)
    _check(pair, m.scale.value * dense, pair.kurtosis)
    assert m.scale.value == pytest.approx(0.5)


def test_full_diff_matches_dense(tmp_path: Path) -> None:
    rng = np.random.default_rng(13)
    d = rng.normal(0, 0.01, (20, 30)).astype(np.float32)
    m = _module(tmp_path, {"lora_unet_mid_block_attentions_0_proj_in.diff": d})
    pair, _ = PAIRS[Algorithm.FULL](m, m.scale.value)
    _check(pair, d.astype(np.float64), pair.kurtosis)


def test_mlx_transposed_factors_give_the_peft_statistics(tmp_path: Path) -> None:
    from tests.static.factories_formats import llama_factors, peft_tensors, write_mlx

    factors = llama_factors(layers=1, hidden=48, r=4, modules=("q_proj",))
    write_mlx(tmp_path / "mlx", factors, scale=2.0)
    peft = write_st(tmp_path / "peft", "adapter_model.safetensors", peft_tensors(factors))
    mlx_m = read_adapters(tmp_path / "mlx", headers(tmp_path / "mlx"), {}, {
        "adapter_config.json": {"fine_tune_type": "lora", "lora_parameters": {"scale": 2.0}}}
        ).modules[0]
    peft_m = read_adapters(peft, headers(peft), {}, {}).modules[0]
    assert mlx_m.transposed and mlx_m.target == peft_m.target
    p1, _ = PAIRS[Algorithm.LORA](mlx_m, 2.0)
    p2, _ = PAIRS[Algorithm.LORA](peft_m, 2.0)
    assert p1.spectrum.top_singular_values == pytest.approx(p2.spectrum.top_singular_values)
    assert p1.kurtosis == pytest.approx(p2.kurtosis)
