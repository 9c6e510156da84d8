"""Row and column concentration of ΔW = s·B·A, exactly, from the r×r Grams (ΔW never formed).

Row i of B·A is b_iᵀA, so its energy is ‖b_iᵀA‖² = b_iᵀ(AAᵀ)b_i = b_iᵀ G_A b_i: one pass over
B's rows with G_A costs O(out·r²); column j's energy a_jᵀ(BᵀB)a_j likewise costs O(in·r²). From
the energies: the Hoyer sparsity of the row norms, the Gini coefficient of the energies and the
share of the top 1, 4 and 16 rows. All are scale-free (s and the update's strength cancel), so
they compare a module with its family whatever each module's norm.

The same energies steer the kurtosis estimate of large modules: rows are drawn with probability
½·e_i/Σe + ½/out (importance sampling, defensive mixture) and each draw is weighted by 1/(n·p_i),
so four spiky rows among 8192 are drawn ~128 times in 256 draws instead of ~0.125 times on a
uniform grid; the power sums stay unbiased (Hansen-Hurwitz), the uniform half bounds the weights.
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import numpy.typing as npt

from adapterscan.static.formats.tensor_reader import BLOCK_ELEMS, F64, Floats
from adapterscan.static.weights.lowrank import (
    MAX_BLOCK_VECTORS,
    SAMPLE_SEED,
    SAMPLE_SIDE,
    TOP_K,
    AxisConcentration,
    KurtosisPlan,
    Moments,
    PairStats,
    Vectors,
)


def vector_energies(v: Vectors, gram: F64) -> F64:
    """x_iᵀ G x_i for every vector of `v` (B's rows with G = AAᵀ, or A's columns with BᵀB),
    streamed in the same blocks as the Grams, clipped at 0. One GEMM per block in the block's
    precision (float32 for F32/F16/BF16 factors, float64 for F64 ones: relative error ~r·2⁻²⁴,
    far below what a share threshold resolves), r-term row sums in the same precision."""
    step = max(1, min(MAX_BLOCK_VECTORS, BLOCK_ELEMS // max(1, v.r)))
    out = np.empty(v.count, dtype=np.float64)
    g32: Floats | None = None
    for start in range(0, v.count, step):
        stop = min(v.count, start + step)
        blk = v.block(start, stop)
        g = gram if blk.dtype == np.float64 else (
            g32 if g32 is not None else (g32 := gram.astype(np.float32)))
        if v.rows:  # (k × r): Σ_j (X G)_ij X_ij
            out[start:stop] = np.einsum("ij,ij->i", blk @ g, blk)
        else:  # (r × k) column slice: Σ_j (G X)_ji X_ji, no transposed copy
            out[start:stop] = np.einsum("ji,ji->i", g @ blk, blk)
    return np.clip(out, 0.0, None)


def axis_concentration(energies: F64) -> AxisConcentration | None:
    n = int(energies.size)
    total = float(energies.sum())
    if n == 0 or not (total > 0.0 and math.isfinite(total)):
        return None
    e = np.sort(energies)  # ascending
    norms = np.sqrt(e)
    l1, l2 = float(norms.sum()), math.sqrt(total)
    hoyer = (math.sqrt(n) - l1 / l2) / (math.sqrt(n) - 1.0) if n > 1 else 0.0
    ranks = np.arange(1, n + 1, dtype=np.float64)
    gini = float(2.0 * np.dot(ranks, e) / (n * total) - (n + 1.0) / n)
    desc = e[::-1]
    top = tuple(float(desc[:k].sum()) / total for k in TOP_K)
    return AxisConcentration(n, min(1.0, max(0.0, hoyer)), min(1.0, max(0.0, gini)), top)


def importance_rows(energies: F64) -> tuple[npt.NDArray[np.intp], F64]:
    """Rows drawn by energy (fixed seed), deduplicated, with their Hansen-Hurwitz weights
    multiplicity/(n·p_i)."""
    m = energies.size
    total = float(energies.sum())
    p = np.full(m, 1.0 / m) if not total > 0 else 0.5 * energies / total + 0.5 / m
    rng = np.random.default_rng(SAMPLE_SEED)
    draws = rng.choice(m, size=SAMPLE_SIDE, replace=True, p=p / p.sum())
    rows, counts = np.unique(draws, return_counts=True)
    return rows.astype(np.intp), counts / (SAMPLE_SIDE * p[rows])


def sampled_moments(b: Vectors, a_cols: Floats, energies: F64, n_cols: int) -> Moments:
    """Power sums of the entries of B·A estimated on rows drawn by energy × the plan's uniform
    columns (`a_cols`, one column of A per row), scaled to all out × in entries."""
    rows, weights = importance_rows(energies)
    x = np.asarray(b.take(rows), dtype=np.float32)
    cols = np.asarray(a_cols, dtype=np.float32)
    e = (x @ cols.T).astype(np.float64)  # r-long float32 dot products, sums in float64
    e2 = e * e
    w = weights * (n_cols / max(1, cols.shape[0]))  # per drawn row; columns scaled uniformly
    return Moments(count=b.count * n_cols, s1=float(w @ e.sum(axis=1)),
                   s2=float(w @ e2.sum(axis=1)), s3=float(w @ np.einsum("ij,ij->i", e2, e)),
                   s4=float(w @ np.einsum("ij,ij->i", e2, e2)))


def with_concentration(pair: PairStats, b: Vectors, a: Vectors, plan: KurtosisPlan,
                       a_cols: Floats | None) -> PairStats:
    """`pair` with its row/column concentration and, for large modules, the kurtosis estimated
    on rows drawn by energy (one more pass over each factor: O(r²(out+in)))."""
    row_e = vector_energies(b, pair.gram_a)
    col_e = vector_energies(a, pair.gram_b)
    out = replace(pair, rows=axis_concentration(row_e), cols=axis_concentration(col_e))
    if plan.method == "sampled-grid" and a_cols is not None and float(row_e.sum()) > 0:
        mom = sampled_moments(b, a_cols, row_e, a.count)
        out = replace(out, kurtosis=mom.kurtosis, kurtosis_method="sampled-energy")
    return out
