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

import functools
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
    SideSummary,
    Vectors,
    block_energies,
    combine,
    gram_for,
)


def vector_energies(v: Vectors, gram: F64) -> F64:
    """x_iᵀ G x_i for every vector of `v` (B's rows with G = AAᵀ, or A's columns with BᵀB),
    streamed in the same blocks as the Grams, clipped at 0 (lowrank.block_energies)."""
    step = max(1, min(MAX_BLOCK_VECTORS, BLOCK_ELEMS // max(1, v.r)))
    out = np.empty(v.count, dtype=np.float64)
    g: Floats | None = None
    for start in range(0, v.count, step):
        stop = min(v.count, start + step)
        blk = v.block(start, stop)
        g = g if g is not None else gram_for(blk, gram)
        out[start:stop] = block_energies(blk, g, v.rows)
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


@functools.cache
def _uniforms() -> F64:
    """The SAMPLE_SIDE uniforms Generator.choice(p=...) draws first from default_rng(SAMPLE_SEED)
    (read-only: shared by every module)."""
    u = np.random.default_rng(SAMPLE_SEED).random(SAMPLE_SIDE)
    u.setflags(write=False)
    return u


def importance_rows(energies: F64) -> tuple[npt.NDArray[np.intp], F64]:
    """Rows drawn by energy (fixed seed), deduplicated, with their Hansen-Hurwitz weights
    multiplicity/(n·p_i)."""
    m = energies.size
    total = float(energies.sum())
    p = np.full(m, 1.0 / m) if not total > 0 else 0.5 * energies / total + 0.5 / m
    # Generator.choice(m, SAMPLE_SIDE, p=p/Σp) of a fresh default_rng(SAMPLE_SEED), step for
    # step (the same draws, tests hold it), without a new generator and p's checks per module.
    cdf = np.cumsum(p / p.sum())
    cdf /= cdf[-1]
    draws = cdf.searchsorted(_uniforms(), side="right")
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


def with_concentration(side_b: SideSummary, side_a: SideSummary, b: Vectors, a: Vectors,
                       scale: float, plan: KurtosisPlan) -> PairStats:
    """The pair's statistics with its row/column concentration and, for large modules, the
    kurtosis estimated on rows drawn by energy. Energies the summaries computed on their own
    pass are used as they are; the others take one more pass over their factor (O(r²·count)).
    The uniform grid's kurtosis is computed only where the energy draw cannot replace it."""
    row_e = side_b.energies if side_b.energies is not None else vector_energies(b, side_a.gram)
    col_e = side_a.energies if side_a.energies is not None else vector_energies(a, side_b.gram)
    drawn = plan.method == "sampled-grid" and side_a.sample is not None \
        and float(row_e.sum()) > 0
    if plan.method == "sampled-grid" and not drawn and side_b.sample is None \
            and plan.rows is not None:
        side_b.sample = b.take(plan.rows)
    pair = combine(side_b, side_a, scale, plan, moments=not drawn)
    out = replace(pair, rows=axis_concentration(row_e), cols=axis_concentration(col_e))
    if drawn and side_a.sample is not None:
        mom = sampled_moments(b, side_a.sample, row_e, a.count)
        out = replace(out, kurtosis=mom.kurtosis, kurtosis_method="sampled-energy")
    return out
