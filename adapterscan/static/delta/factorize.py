"""ΔW = W_ft − W_base of one matrix, described as B·A by a randomized low-rank factorization.

Randomized range finder (Halko, Martinsson & Tropp 2011, algorithms 4.1 and 4.4): Y = ΔW·Ω for a
Gaussian Ω (n×ℓ), Q = orth(Y), `power_iters` rounds of Q ← orth(ΔW·orth(ΔWᵀQ)), then the small
SVD of QᵀΔW = U·S·Vᵀ gives ΔW ≈ (Q·U_k)·S_k·V_kᵀ. Every product is taken over row blocks of the
two stored tensors (mapped, converted block by block), so ΔW is never whole in memory unless it
fits `cache_bytes`; then it is formed once and every pass reads it there.

The error is measured, not estimated: a last pass forms ΔW − B·A block by block and sums its
squares; ‖ΔW − B·A‖_F is reported relative to ‖ΔW‖_F. (‖ΔW‖²_F − Σ_{i≤k} σ_i², the same
quantity in exact arithmetic, loses to cancellation what float32 products leave: ~3·10⁻⁴.)

Numerical rank: a checkpoint stored in a 16-bit type adds rounding to every changed entry,
|ε_ij| ≤ u·|w_ij| (u = 2⁻¹¹ for F16, 2⁻⁸ for BF16, 2⁻²⁴ for F32; the coarser of the two
tensors' dtypes), so ‖ε‖_F ≤ u·‖W_ft‖_F. A
singular value counts when it is above that noise's spectral size (2·‖ε‖_F·(√m + √n)/√(mn), the
edge of a random matrix with that energy, doubled) and above `rel_tol`·σ₁ (float32 products).
The update is *low rank* when the rank is at most ℓ − `min_gap` (the sketch saw the spectrum
fall) and what lies beyond it is no more than that rounding (plus `rel_tol` of ‖ΔW‖_F).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from adapterscan.static.formats.tensor_reader import RawTensor

F32 = npt.NDArray[np.float32]
F64 = npt.NDArray[np.float64]
UNIT_ROUNDOFF = {"F16": 2.0 ** -11, "BF16": 2.0 ** -8, "F32": 2.0 ** -24, "F64": 2.0 ** -53}
BLOCK_ELEMS = 1 << 20  # float32 entries of ΔW formed at a time when streaming (4 MiB)
# ‖ΔW‖² − Σσ² from float32 products is good to ~√(1e-7) of ‖ΔW‖: the first sketch's test
# allows that much, the final test uses the residual formed directly.
SQUARES_TOL = 1e-3
SEED = 0


@dataclass(frozen=True)
class FactorOptions:
    sketch: int = 20  # ℓ of the first sketch: ranks ≤ ℓ − min_gap are recognised in 2 passes
    max_sketch: int = 96  # ℓ of the second sketch when the first saw no fall in the spectrum
    power_iters: int = 1  # with the second sketch (a full fine-tune's spectrum decays slowly)
    min_gap: int = 4
    rel_tol: float = 1e-4
    cache_bytes: int = 64 * 1024**2  # ΔW formed whole (float32) when it fits this


@dataclass(frozen=True)
class LowRank:
    """ΔW ≈ B·A (B: m×k, A: k×n, balanced: B = Q·U_k·√S_k, A = √S_k·V_kᵀ)."""

    b: F32
    a: F32
    rank: int  # k: the singular values above the noise level (≤ the sketch)
    low_rank: bool
    sketch: int
    power_iters: int
    delta_fro: float  # ‖ΔW‖_F
    base_fro: float  # ‖W_base‖_F over the compared rows
    residual: float  # ‖ΔW − B·A‖_F / ‖ΔW‖_F (0 when ΔW = 0)
    noise_fro: float  # the rounding bound u·‖W_ft‖_F
    singular_values: tuple[float, ...]  # the sketch's, largest first
    row_energy: F64  # ‖ΔW_i‖² per row
    changed_rows: int  # rows with any entry changed

    def record(self) -> dict[str, object]:
        return {"rank": self.rank, "low_rank": self.low_rank, "sketch": self.sketch,
                "power_iterations": self.power_iters, "delta_fro": self.delta_fro,
                "relative_update": self.delta_fro / self.base_fro if self.base_fro > 0 else None,
                "relative_residual": self.residual,
                "rounding_bound": self.noise_fro / self.delta_fro if self.delta_fro > 0 else None,
                "singular_values": [float(f"{s:.6g}") for s in self.singular_values[:12]],
                "changed_rows": self.changed_rows}


class _Delta:
    """Row blocks of ΔW as float32, from the mapped tensors or from one cached copy."""

    def __init__(self, ft: RawTensor, base: RawTensor, rows: int, cache_bytes: int) -> None:
        self.ft, self.base, self.rows, self.cols = ft, base, rows, ft.cols
        self.step = max(1, BLOCK_ELEMS // max(1, self.cols))
        self.cached: F32 | None = None
        # ‖W_ft‖² and ‖W_base‖², summed on the first pass (the blocks are in cache then).
        self.ft2 = self.base2 = 0.0
        self.measured = False
        if rows * self.cols * 4 <= cache_bytes:
            self.cached = np.empty((rows, self.cols), dtype=np.float32)
            for i, blk in self._stream():
                self.cached[i:i + blk.shape[0]] = blk

    def _stream(self) -> Iterator[tuple[int, F32]]:
        buf = np.empty((min(self.step, self.rows), self.cols), dtype=np.float32)
        for i in range(0, self.rows, self.step):
            j = min(self.rows, i + self.step)
            out = buf[:j - i]
            f, b = self.ft.to_float(self.ft.raw[i:j]), self.base.to_float(self.base.raw[i:j])
            if not self.measured:
                self.ft2 += _dot(f)
                self.base2 += _dot(b)
            np.subtract(f, b, out=out, casting="same_kind")
            yield i, out
        self.measured = True

    def blocks(self) -> Iterator[tuple[int, F32]]:
        if self.cached is None:
            yield from self._stream()
            return
        for i in range(0, self.rows, self.step):
            yield i, self.cached[i:i + self.step]


def _dot(blk: npt.NDArray[np.floating]) -> float:
    """Σ x² of one block (a float32 dot product of ≤ BLOCK_ELEMS terms, summed in float64)."""
    flat = blk.reshape(-1)
    return float(np.dot(flat, flat))


def _orth(y: F64) -> F64:
    q, _ = np.linalg.qr(y)
    return np.asarray(q, dtype=np.float64)


def factorize(ft: RawTensor, base: RawTensor, options: FactorOptions | None = None,
              rows: int | None = None) -> LowRank:
    """ΔW over the first `rows` rows (all by default: a resized vocabulary compares the rows
    both have) of two tensors of the same width."""
    opts = options or FactorOptions()
    m = base.rows if rows is None else rows
    n = ft.cols
    if ft.cols != base.cols or m > min(ft.rows, base.rows):
        raise ValueError(f"cannot compare shapes {ft.shape} and {base.shape}")
    delta = _Delta(ft, base, m, opts.cache_bytes)
    # First pass: ‖ΔW‖², the row energies and the sketch Y = ΔW·Ω.
    ell = min(opts.sketch, m, n)
    rng = np.random.default_rng(SEED)
    omega = rng.standard_normal((n, ell)).astype(np.float32)
    y = np.empty((m, ell), dtype=np.float64)
    energy = np.empty(m, dtype=np.float64)
    for i, blk in delta.blocks():
        y[i:i + blk.shape[0]] = blk @ omega
        energy[i:i + blk.shape[0]] = np.einsum("ij,ij->i", blk, blk)
    delta_fro = math.sqrt(float(energy.sum()))
    base_fro = math.sqrt(delta.base2)
    # The coarser of the two dtypes: a float32 checkpoint of a float16 base may carry float16
    # rounding (merged in float16, then widened).
    u = max(UNIT_ROUNDOFF.get(ft.dtype, 2.0 ** -24), UNIT_ROUNDOFF.get(base.dtype, 2.0 ** -24))
    noise_fro = u * math.sqrt(delta.ft2)
    changed = int(np.count_nonzero(energy))
    result = _describe(delta, _orth(y), delta_fro, noise_fro, opts, m, n)
    if not result[2] and ell < min(opts.max_sketch, m, n):  # no fall seen: a wider sketch
        ell = min(opts.max_sketch, m, n)
        q = _orth(_apply(delta, rng.standard_normal((n, ell))))
        for _ in range(opts.power_iters):
            q = _orth(_apply(delta, _orth(_apply_t(delta, q, n))))
        result = _describe(delta, q, delta_fro, noise_fro, opts, m, n)
    b, a, _, sv = result
    # The bound is measured: one more pass over ΔW. Low rank: the spectrum fell inside the
    # sketch, and what B·A leaves out is no more than rounding (plus rel_tol of ΔW).
    left = _residual(delta, b, a) if delta_fro > 0 else 0.0
    low = a.shape[0] <= ell - opts.min_gap and \
        left <= 2.0 * noise_fro + opts.rel_tol * delta_fro
    residual = left / delta_fro if delta_fro > 0 else 0.0
    return LowRank(b=b, a=a, rank=int(a.shape[0]), low_rank=low, sketch=ell,
                   power_iters=opts.power_iters if ell > min(opts.sketch, m, n) else 0,
                   delta_fro=delta_fro, base_fro=base_fro, residual=residual,
                   noise_fro=noise_fro, singular_values=sv, row_energy=energy,
                   changed_rows=changed)


def _apply(delta: _Delta, z: F64) -> F64:
    """ΔW·Z (m×ℓ)."""
    z32 = z.astype(np.float32)
    out = np.empty((delta.rows, z.shape[1]), dtype=np.float64)
    for i, blk in delta.blocks():
        out[i:i + blk.shape[0]] = blk @ z32
    return out


def _apply_t(delta: _Delta, q: F64, n: int) -> F64:
    """ΔWᵀ·Q (n×ℓ)."""
    out = np.zeros((n, q.shape[1]), dtype=np.float64)
    for i, blk in delta.blocks():
        out += blk.T @ q[i:i + blk.shape[0]].astype(np.float32)
    return out


Described = tuple[F32, F32, bool, tuple[float, ...]]


def _describe(delta: _Delta, q: F64, delta_fro: float, noise_fro: float,
              opts: FactorOptions, m: int, n: int) -> Described:
    """The SVD of QᵀΔW truncated at the numerical rank, and whether the sketch saw the spectrum
    fall to the noise (the rank at least `min_gap` below ℓ, and ‖ΔW‖² − Σ kept σ² no more than
    rounding, within the float32 precision of that difference: a first, cheap test)."""
    ell = q.shape[1]
    small = _apply_t(delta, q, n).T  # QᵀΔW (ℓ×n)
    u_s, s, vt = np.linalg.svd(small, full_matrices=False)
    sv = tuple(float(x) for x in s)
    if delta_fro == 0.0 or not s.size:
        return (np.zeros((m, 0), np.float32), np.zeros((0, n), np.float32), True, sv)
    edge = 2.0 * noise_fro * (math.sqrt(m) + math.sqrt(n)) / math.sqrt(m * n)
    tau = max(edge, opts.rel_tol * float(s[0]))
    k = int(np.count_nonzero(s > tau))
    left = math.sqrt(max(0.0, delta_fro ** 2 - float(np.sum(s[:k].astype(np.float64) ** 2))))
    fell = k <= ell - opts.min_gap and left <= 2.0 * noise_fro + SQUARES_TOL * delta_fro
    root = np.sqrt(s[:k])
    b = ((q @ u_s[:, :k]) * root).astype(np.float32)
    a = (root[:, None] * vt[:k]).astype(np.float32)
    return b, a, fell, sv


def _residual(delta: _Delta, b: F32, a: F32) -> float:
    """‖ΔW − B·A‖_F, formed block by block (no cancellation of squares)."""
    total = 0.0
    for i, blk in delta.blocks():
        r = blk - b[i:i + blk.shape[0]] @ a if a.shape[0] else blk
        total += _dot(r)
    return math.sqrt(total)


__all__ = ["FactorOptions", "LowRank", "factorize"]
