"""Float32 statistics against float64 (docs/weights.md, "Precision"): singular values to 1e-4
relative for every algorithm path, and the documented worst-case bound on every σ, over
several float32 Gram blocks and for F32, F16 and BF16 storage."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from adapterscan.static.formats.model import AdapterModule, Algorithm
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.weights.algorithms import PAIRS
from adapterscan.static.weights.lowrank import MAX_BLOCK_VECTORS, TOP_K_SINGULAR
from tests.factories import adapter_config
from tests.static.factories_formats import write_st
from tests.static.factories_weights import bf16_bytes, headers, st_bytes

U32 = 2.0 ** -24
GAMMA = MAX_BLOCK_VECTORS * U32 / (1 - MAX_BLOCK_VECTORS * U32)


def _module(folder: Path, tensors: dict[str, np.ndarray], bf16: frozenset[str] = frozenset(),
            config: dict[str, object] | None = None) -> AdapterModule:
    folder.mkdir(parents=True)
    (folder / "adapter_model.safetensors").write_bytes(st_bytes(tensors, bf16))
    configs = {} if config is None else {"adapter_config.json": config}
    (model_file,) = read_adapters(folder, headers(folder), {}, configs).files
    (module,) = model_file.modules
    return module


def _stored(x: np.ndarray, dtype: str) -> np.ndarray:
    """The float64 values of x once stored as dtype (what the file holds)."""
    if dtype == "BF16":
        bits = np.frombuffer(bf16_bytes(x), "<u2").astype(np.uint32) << 16
        return bits.view(np.float32).reshape(x.shape).astype(np.float64)
    return x.astype({"F32": np.float32, "F16": np.float16}[dtype]).astype(np.float64)


def _factors(out: int, inp: int, r: int, decay: float, seed: int) -> tuple[np.ndarray, ...]:
    """B (out×r) and A (r×in) whose product's spectrum falls from 1 to `decay`."""
    rng = np.random.default_rng(seed)
    qb, _ = np.linalg.qr(rng.normal(size=(out, r)))
    qa, _ = np.linalg.qr(rng.normal(size=(inp, r)))
    sv = np.geomspace(1.0, decay, r)
    mix = rng.normal(size=(r, r)) * 0.1 + np.eye(r)  # B and A not orthogonal themselves
    b = (qb * np.sqrt(sv)) @ mix * 0.05
    a = np.linalg.solve(mix, (qa * np.sqrt(sv)).T) * 0.05
    return b, a


@pytest.mark.parametrize("dtype", ["F32", "F16", "BF16"])
@pytest.mark.parametrize(("out", "inp", "r", "decay"), [
    (4096, 4096, 64, 0.05),   # a Llama q_proj at r=64: two float32 blocks per factor
    (1024, 11008, 16, 1e-3),  # three blocks of A's columns, an ill-conditioned spectrum
    (9000, 512, 8, 0.3),      # three blocks of B's rows
])
def test_lora_singular_values_match_float64(tmp_path: Path, dtype: str, out: int, inp: int,
                                            r: int, decay: float) -> None:
    b, a = _factors(out, inp, r, decay, seed=out + inp)
    p = "base_model.model.model.layers.0.self_attn.q_proj"
    tensors = {f"{p}.lora_A.weight": a.astype(np.float32), f"{p}.lora_B.weight":
               b.astype(np.float32)}
    if dtype == "F16":
        tensors = {k: v.astype(np.float16) for k, v in tensors.items()}
    m = _module(tmp_path / "a", tensors, frozenset(tensors) if dtype == "BF16" else frozenset(),
                adapter_config(r=r, lora_alpha=2 * r, target_modules=["q_proj"]))
    pair, _ = PAIRS[Algorithm.LORA](m, m.scale.value)
    b64, a64 = _stored(b, dtype), _stored(a, dtype)
    # Reference: Householder QR of both factors in float64 (no Gram), then an r×r SVD.
    rb, ra = np.linalg.qr(b64, mode="r"), np.linalg.qr(a64.T, mode="r")
    want = 2.0 * np.linalg.svd(rb @ ra.T, compute_uv=False)
    got = np.asarray(pair.spectrum.top_singular_values)
    top = want[:TOP_K_SINGULAR]
    assert np.all(np.abs(got - top) <= 1e-4 * top), (got, top)
    assert pair.spectrum.fro == pytest.approx(float(np.sqrt((want ** 2).sum())), rel=1e-4)
    # The worst-case bound of docs/weights.md holds for every singular value.
    na2, nb2 = np.linalg.norm(a64, 2) ** 2, np.linalg.norm(b64, 2) ** 2
    bound_sq = 4.0 * GAMMA * (na2 * (b64 ** 2).sum() + nb2 * (a64 ** 2).sum()) * 1.01
    assert np.all(np.abs(got ** 2 - top ** 2) <= bound_sq)


def _f64_twin(tmp_path: Path, tensors: dict[str, np.ndarray]) -> tuple[object, object]:
    """The same module stored as F32 and, exactly upcast, as F64 (float64 blocks throughout)."""
    pairs = []
    for tag, dtype in (("f32", np.float32), ("f64", np.float64)):
        folder = write_st(tmp_path / tag, "lora.safetensors",
                          {k: v.astype(dtype) for k, v in tensors.items()})
        (module,) = read_adapters(folder, headers(folder), {}, {}).modules
        pairs.append(PAIRS[module.algorithm](module, module.scale.value)[0])
    return pairs[0], pairs[1]


def _agree(f32: object, f64: object) -> None:
    got = np.asarray(f32.spectrum.top_singular_values)  # type: ignore[attr-defined]
    want = np.asarray(f64.spectrum.top_singular_values)  # type: ignore[attr-defined]
    assert got.shape == want.shape and np.all(np.abs(got - want) <= 1e-4 * want), (got, want)
    assert f32.spectrum.fro == pytest.approx(f64.spectrum.fro, rel=1e-4)  # type: ignore[attr-defined]


NAME = "lora_unet_mid_block_attentions_0_proj_in"


def test_loha_float32_matches_float64(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    out, inp, r = 5000, 1200, 6  # face-split rank 36: two blocks of B's rows
    t = {f"{NAME}.hada_w1_a": rng.normal(0, 0.3, (out, r)),
         f"{NAME}.hada_w1_b": rng.normal(0, 0.3, (r, inp)),
         f"{NAME}.hada_w2_a": rng.normal(0, 0.3, (out, r)),
         f"{NAME}.hada_w2_b": rng.normal(0, 0.3, (r, inp)), f"{NAME}.alpha": np.array(6.0)}
    _agree(*_f64_twin(tmp_path, t))


def test_lokr_float32_matches_float64(tmp_path: Path) -> None:
    rng = np.random.default_rng(4)
    t = {f"{NAME}.lokr_w1": rng.normal(0, 0.3, (8, 8)),
         f"{NAME}.lokr_w2_a": rng.normal(0, 0.1, (6000, 16)),
         f"{NAME}.lokr_w2_b": rng.normal(0, 0.1, (16, 700)), f"{NAME}.alpha": np.array(16.0)}
    _agree(*_f64_twin(tmp_path, t))


def test_lora_tucker_float32_matches_float64(tmp_path: Path) -> None:
    rng = np.random.default_rng(5)
    r, out, inp = 8, 320, 640
    t = {f"{NAME}.lora_up.weight": rng.normal(0, 0.05, (out, r, 1, 1)),
         f"{NAME}.lora_mid.weight": rng.normal(0, 0.3, (r, r, 3, 3)),
         f"{NAME}.lora_down.weight": rng.normal(0, 0.05, (r, inp, 1, 1)),
         f"{NAME}.alpha": np.array(4.0)}
    _agree(*_f64_twin(tmp_path, t))


def test_block_length_bounds_the_dot_products() -> None:
    """The bound's K: no float32 Gram block sums more than MAX_BLOCK_VECTORS products."""
    from adapterscan.static.formats.tensor_reader import RawTensor
    from adapterscan.static.weights.lowrank import TensorVectors, _iter_blocks

    for r in (1, 4, 64, 512):
        t = RawTensor("b", "F32", (20000, r), np.zeros((20000, r), np.float32))
        sizes = [blk.shape[0] for blk in _iter_blocks(TensorVectors(t, True))]
        assert sum(sizes) == 20000 and max(sizes) <= MAX_BLOCK_VECTORS
        assert math.prod(blk.dtype == np.float32 for blk in _iter_blocks(TensorVectors(t, True)))


def test_ia3_gains_are_the_stored_values_in_float64(tmp_path: Path) -> None:
    """(IA)3 vectors are small and never reduced to a Gram: the gains are read exactly and
    summarised in float64 (no float32 step to bound)."""
    from adapterscan.static.weights.ia3 import analyze_ia3
    from tests.static.factories_weights import emitter

    rng = np.random.default_rng(6)
    v = (1.0 + rng.normal(0, 0.05, 11008)).astype(np.float16)  # PEFT stores the gain itself
    p = "base_model.model.model.layers.0.mlp.down_proj.ia3_l"
    m = _module(tmp_path / "a", {p: v}, config={"peft_type": "IA3", "target_modules":
                                                ["down_proj"], "feedforward_modules":
                                                ["down_proj"]})
    assert m.algorithm is Algorithm.IA3
    res = analyze_ia3(m, emitter())
    assert res is not None
    g = v.astype(np.float64)
    assert (res.gain_min, res.gain_max, res.gain_median) == (g.min(), g.max(), np.median(g))
    assert res.rms_change == float(np.sqrt(np.mean((g - 1.0) ** 2)))
