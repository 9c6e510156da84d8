"""Low-rank statistics agree with the dense computation on ΔW = s·B·A."""

from __future__ import annotations

import math

import numpy as np
import pytest

from adapterscan.static.formats.tensor_reader import RawTensor
from adapterscan.static.weights.lowrank import (
    combine,
    plan_kurtosis,
    row_energies,
    summarize,
)


def _pair(m: int, n: int, r: int, seed: int, dtype: type = np.float64
          ) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    b = rng.normal(size=(m, r)) * rng.uniform(0.2, 3.0, size=(1, r))
    a = rng.normal(size=(r, n))
    b[: max(1, m // 20)] *= 8.0  # heavy rows so the kurtosis is far from Gaussian
    return b.astype(dtype), a.astype(dtype)


def _stats(b: np.ndarray, a: np.ndarray, scale: float):  # type: ignore[no-untyped-def]
    tag = "F64" if b.dtype == np.float64 else "F32"
    plan = plan_kurtosis(b.shape[0], a.shape[1], a.shape[0])
    sb = summarize(RawTensor("b", tag, b.shape, b), True, plan)
    sa = summarize(RawTensor("a", tag, a.shape, a), False, plan)
    return combine(sb, sa, scale, plan)


def _dense_kurtosis(d: np.ndarray) -> float:
    x = d.ravel() - d.mean()
    return float((x**4).mean() / (x**2).mean() ** 2)


def _dense(b: np.ndarray, a: np.ndarray, scale: float) -> dict[str, float]:
    d = scale * (b.astype(np.float64) @ a.astype(np.float64))
    sv = np.linalg.svd(d, compute_uv=False)
    p = sv**2 / (sv**2).sum()
    h = float(-(p[p > 0] * np.log(p[p > 0])).sum())
    return {"fro": float(np.linalg.norm(d)), "spectral": float(sv[0]),
            "stable_rank": float((sv**2).sum() / sv[0] ** 2), "effective_rank": math.exp(h),
            "energy_concentration": float(p[0]), "spectral_entropy": h / math.log(a.shape[0]),
            "kurtosis": _dense_kurtosis(d), "sv": sv}


@pytest.mark.parametrize(("m", "n", "r", "method"), [
    (48, 40, 4, "exact-dense"),
    (600, 500, 4, "exact-khatri-rao"),
    (520, 560, 12, "exact-khatri-rao"),
])
def test_agrees_with_dense(m: int, n: int, r: int, method: str) -> None:
    b, a = _pair(m, n, r, seed=m)
    got = _stats(b, a, scale=2.5)
    want = _dense(b, a, 2.5)
    assert got.kurtosis_method == method
    sp = got.spectrum
    for name in ("fro", "spectral", "stable_rank", "effective_rank", "energy_concentration",
                 "spectral_entropy"):
        assert getattr(sp, name) == pytest.approx(want[name], rel=1e-5), name
    assert got.kurtosis == pytest.approx(want["kurtosis"], rel=1e-5)
    top = np.asarray(sp.top_singular_values)
    np.testing.assert_allclose(top, want["sv"][: top.size], rtol=1e-5)
    assert sp.numerical_rank == r


def test_sampled_kurtosis_is_deterministic_and_close() -> None:
    b, a = _pair(1200, 1100, 24, seed=3)
    first, second = _stats(b, a, 1.0), _stats(b, a, 1.0)
    assert first.kurtosis_method == "sampled-grid"
    assert first.kurtosis == second.kurtosis
    d = b @ a
    assert first.kurtosis == pytest.approx(_dense_kurtosis(d), rel=0.35)
    assert first.spectrum.fro == pytest.approx(float(np.linalg.norm(d)), rel=1e-5)


def test_float32_inputs_agree() -> None:
    b, a = _pair(64, 80, 8, seed=5, dtype=np.float32)
    got, want = _stats(b, a, 0.5), _dense(b, a, 0.5)
    assert got.spectrum.fro == pytest.approx(want["fro"], rel=1e-5)
    assert got.spectrum.spectral == pytest.approx(want["spectral"], rel=1e-5)


def test_zero_b_has_no_shape_statistics() -> None:
    b = np.zeros((30, 4))
    a = np.random.default_rng(0).normal(size=(4, 20))
    got = _stats(b, a, 1.0)
    assert got.spectrum.fro == 0.0
    assert got.spectrum.stable_rank is None and got.kurtosis is None


@pytest.mark.parametrize("rows_are_b", [True, False])
def test_row_energies_match_dense_rows(rows_are_b: bool) -> None:
    b, a = _pair(50, 300, 4, seed=9)
    d = 3.0 * (b @ a)
    if rows_are_b:  # lm_head: rows of ΔW
        got = row_energies(RawTensor("b", "F64", b.shape, b), a @ a.T, True, 3.0)
        want = (d**2).sum(axis=1)
    else:  # embedding: ΔW_emb = (BA)ᵀ, rows are A's columns
        got = row_energies(RawTensor("a", "F64", a.shape, a), b.T @ b, False, 3.0)
        want = (d**2).sum(axis=0)
    np.testing.assert_allclose(got, want, rtol=1e-9)
