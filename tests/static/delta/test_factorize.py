"""The randomized factorization of ΔW: rank, error bound, streaming."""

from __future__ import annotations

import numpy as np
import pytest

from adapterscan.static.delta.factorize import FactorOptions, factorize
from adapterscan.static.formats.tensor_reader import RawTensor


def _raw(x: np.ndarray, dtype: str) -> RawTensor:
    return RawTensor("w", dtype, x.shape, x)


def _pair(rank: int, dtype: type = np.float16, m: int = 384, n: int = 256, seed: int = 0
          ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    w = (rng.standard_normal((m, n)) * 0.05).astype(dtype)
    upd = (rng.standard_normal((m, rank)) * 0.03) @ (rng.standard_normal((rank, n)) * 0.03)
    return w, (w.astype(np.float32) + upd).astype(dtype), upd


@pytest.mark.parametrize("rank", [1, 8, 16])
def test_merged_lora_in_float16_is_low_rank_with_its_rank(rank: int) -> None:
    w, ft, _ = _pair(rank)
    lr = factorize(_raw(ft, "F16"), _raw(w, "F16"))
    assert lr.low_rank and lr.rank == rank
    # What is left is the float16 rounding of the merge, and the bound says so.
    assert lr.residual * lr.delta_fro <= 2 * lr.noise_fro


def test_residual_is_the_measured_frobenius_error() -> None:
    w, ft, _ = _pair(8, np.float32)
    lr = factorize(_raw(ft, "F32"), _raw(w, "F32"))
    d = ft.astype(np.float64) - w
    err = np.linalg.norm(d - lr.b.astype(np.float64) @ lr.a) / np.linalg.norm(d)
    assert lr.rank == 8 and lr.low_rank
    assert err == pytest.approx(lr.residual, abs=1e-5)
    assert err < 1e-5


def test_dense_update_is_not_low_rank_and_states_its_error() -> None:
    rng = np.random.default_rng(1)
    w = (rng.standard_normal((384, 256)) * 0.05).astype(np.float32)
    ft = w + (rng.standard_normal(w.shape) * 0.01).astype(np.float32)
    lr = factorize(_raw(ft, "F32"), _raw(w, "F32"), FactorOptions(max_sketch=64))
    d = ft.astype(np.float64) - w
    err = np.linalg.norm(d - lr.b.astype(np.float64) @ lr.a) / np.linalg.norm(d)
    assert not lr.low_rank and lr.rank == 64 and lr.sketch == 64 and lr.power_iters == 1
    assert err == pytest.approx(lr.residual, rel=1e-4) and 0.3 < err < 1.0


def test_streamed_and_cached_agree() -> None:
    w, ft, _ = _pair(4, np.float32, m=2000, n=600)
    cached = factorize(_raw(ft, "F32"), _raw(w, "F32"))
    streamed = factorize(_raw(ft, "F32"), _raw(w, "F32"), FactorOptions(cache_bytes=0))
    assert streamed.rank == cached.rank == 4
    assert np.allclose(streamed.b @ streamed.a, cached.b @ cached.a, atol=1e-6)
    assert streamed.delta_fro == pytest.approx(cached.delta_fro, rel=1e-6)


def test_bf16_rows_compared_and_zero_delta() -> None:
    bits = np.arange(12 * 8, dtype=np.uint16).reshape(12, 8) + np.uint16(0x3F00)
    same = factorize(_raw(bits, "BF16"), _raw(bits.copy(), "BF16"))
    assert same.rank == 0 and same.delta_fro == 0 and same.changed_rows == 0
    changed = bits.copy()
    changed[3, 2] += 1
    lr = factorize(_raw(changed, "BF16"), _raw(bits, "BF16"), rows=12)
    assert lr.changed_rows == 1 and int(np.argmax(lr.row_energy)) == 3
