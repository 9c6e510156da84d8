"""Spectra and entry moments of Kronecker products, from the two factors alone.

For ΔW = s·kron(W₁, W₂) (LoKr) the singular values are all products σᵢ(W₁)·σⱼ(W₂), so
‖ΔW‖_F = |s|·‖W₁‖_F·‖W₂‖_F, and the entries are all products x·y of an entry of W₁ and one of
W₂, so every power sum factorises: Σ(xy)ᵏ = (Σxᵏ)(Σyᵏ). Each side is either a full matrix
(an SVD of a small matrix) or itself low-rank (W = B·A, statistics as for LoRA).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adapterscan.static.formats.tensor_reader import F64, RawTensor
from adapterscan.static.weights.lowrank import (
    Moments,
    Spectrum,
    entry_moments,
    plan_kurtosis,
    singular_values,
    spectrum_stats,
    summarize,
)

# A full LoKr side is SVD'd densely: at most this many entries and this short a side.
MAX_FULL_ENTRIES = 1 << 24
MAX_FULL_SIDE = 4096
MAX_PRODUCT_SV = 1 << 22  # singular values of the product listed explicitly


class SideTooLarge(Exception):
    """A factor too large to analyse within the bounds above."""


@dataclass(frozen=True)
class Side:
    """Singular values (descending) and entry power means of one Kronecker factor."""

    sv: F64
    count: int  # entries of the factor
    means: tuple[float, float, float, float] | None  # E[x], E[x²], E[x³], E[x⁴]
    method: str
    zero: bool
    finite: bool = True


def dense_side(t: RawTensor) -> Side:
    """A full factor (rows × cols, conv kernels flattened)."""
    if t.rows * t.cols > MAX_FULL_ENTRIES or min(t.rows, t.cols) > MAX_FULL_SIDE:
        raise SideTooLarge(f"full factor {t.name} of shape {list(t.shape)} is too large to "
                           "analyse")
    x = t.dense()
    if not bool(np.isfinite(x).all()):
        return Side(np.zeros(0), x.size, None, "dense", False, finite=False)
    sv = np.linalg.svd(x, compute_uv=False) if x.size else np.zeros(0)
    x2 = x * x
    means = (float(x.mean()), float(x2.mean()), float((x2 * x).mean()), float((x2 * x2).mean()))
    return Side(np.sort(sv)[::-1], x.size, means, "exact-dense", not bool(x.any()))


def lowrank_side(b: RawTensor, a: RawTensor) -> Side:
    """A factor stored as B·A (out×r, r×in)."""
    plan = plan_kurtosis(b.rows, a.cols, a.rows)
    sb = summarize(b, True, plan)
    sa = summarize(a, False, plan)
    if not (sb.finite and sa.finite):
        return Side(np.zeros(0), b.rows * a.cols, None, plan.method, False, finite=False)
    mom = entry_moments(sb, sa, plan)
    means = (mom.s1 / mom.count, mom.s2 / mom.count, mom.s3 / mom.count,
             mom.s4 / mom.count) if mom is not None and mom.count else None
    sv = singular_values(sb.gram, sa.gram)
    return Side(sv, b.rows * a.cols, means, plan.method, sb.zero or sa.zero)


def kron_spectrum(s1: Side, s2: Side, scale: float) -> Spectrum:
    if s1.sv.size * s2.sv.size > MAX_PRODUCT_SV:
        raise SideTooLarge(f"{s1.sv.size}×{s2.sv.size} singular values: too many to list")
    sv = np.sort(np.outer(s1.sv, s2.sv).ravel())[::-1] * abs(scale)
    return spectrum_stats(np.asarray(sv, dtype=np.float64))


def _moments(n: int, m: list[float]) -> Moments | None:
    if not all(math.isfinite(v) for v in m):
        return None
    return Moments(count=n, s1=n * m[0], s2=n * m[1], s3=n * m[2], s4=n * m[3])


def side_moments(s: Side) -> Moments | None:
    return None if s.means is None else _moments(s.count, list(s.means))


def kron_moments(s1: Side, s2: Side) -> Moments | None:
    """Power sums of the entries of kron(W₁, W₂): Σ(xy)ᵏ = Σxᵏ·Σyᵏ, i.e. means multiply."""
    if s1.means is None or s2.means is None:
        return None
    return _moments(s1.count * s2.count, [x * y for x, y in zip(s1.means, s2.means,
                                                                   strict=True)])
