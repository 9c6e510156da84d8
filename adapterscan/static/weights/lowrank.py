"""Statistics of ΔW = s·B·A without forming ΔW (B: out×r, A: r×in).

Everything reduces to r×r matrices: with G_B = BᵀB and G_A = AAᵀ (the Grams whose Cholesky
factors are the R factors of QR(B) and QR(Aᵀ)), ‖BA‖_F² = tr(G_B G_A) and the singular values
of BA are those of G_B^½ G_A^½. The Grams are accumulated over blocks of the stored (mapped)
tensor: each block's Gram is one float32 BLAS product over at most MAX_BLOCK_VECTORS vectors,
summed across blocks in float64 (docs/weights.md derives the error bound and the tests hold it
to float64). The same product tells finiteness and zeros: a NaN or Inf anywhere in a block makes
its Gram's trace non-finite, and the trace is 0 only for (near-)zero blocks, so neither needs a
pass of its own; both are confirmed exactly on the rare block that trips them.

Kurtosis of the entries of BA (Pearson, 3 for a Gaussian) is computed exactly when that is cheap:
by dense blocks when out·in ≤ DENSE_ENTRIES, otherwise with the Khatri-Rao identity
Σ_ij (b_i·a_j)⁴ = tr(G_U G_V) where u_i = sym(b_i ⊗ b_i) (r(r+1)/2 entries) when
(out+in)·(r(r+1)/2)² ≤ KR_BUDGET; otherwise it is estimated on SAMPLE_SIDE rows drawn by their
exact energy (concentration.py) × SAMPLE_SIDE columns chosen uniformly (fixed seeds); the uniform
row grid of the plan is the fallback where no energies exist.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import numpy.typing as npt

from adapterscan.static.formats.tensor_reader import BLOCK_ELEMS, F64, Floats, RawTensor

DENSE_ENTRIES = 1 << 18
_MOMENT_BLOCK = 8192  # entries per block of the dense moments (64 KiB: stays in L1/L2)
# Vectors per block: the length of the float32 dot products in one block's Gram (error bound).
MAX_BLOCK_VECTORS = 4096
KR_BUDGET = 2e7  # exact Khatri-Rao kurtosis only where it costs less than a sample
SAMPLE_SIDE = 256
SAMPLE_SEED = 0
TOP_K_SINGULAR = 8

# Row / column concentration of ΔW (computed in concentration.py; here because PairStats holds it).
TOP_K = (1, 4, 16)  # the k of the top-k energy shares


@dataclass(frozen=True)
class AxisConcentration:
    """How the energy of ΔW spreads over its rows (or columns)."""

    count: int
    hoyer: float  # of the row norms: 0 when all rows are equal, 1 when one row holds everything
    gini: float  # of the row energies: 0 equal, → 1 concentrated
    top_share: tuple[float, ...]  # share of the energy in the top k rows, k in TOP_K

    def record(self) -> dict[str, float | int]:
        out: dict[str, float | int] = {"count": self.count, "hoyer": self.hoyer,
                                       "gini": self.gini}
        out.update({f"top{k}": v for k, v in zip(TOP_K, self.top_share, strict=True)})
        return out



@dataclass(frozen=True)
class KurtosisPlan:
    method: str  # "exact-dense" | "exact-khatri-rao" | "sampled-grid"
    rows: npt.NDArray[np.intp] | None = None  # sampled rows of B (sampled-grid only)
    cols: npt.NDArray[np.intp] | None = None  # sampled columns of A


@functools.lru_cache(maxsize=256)
def plan_kurtosis(out: int, inp: int, r: int) -> KurtosisPlan:
    """Pure in (out, in, r): cached, since every layer of a model repeats the same shapes (the
    sampled indices are read-only)."""
    if out * inp <= DENSE_ENTRIES:
        return KurtosisPlan("exact-dense")
    p = r * (r + 1) // 2
    if (out + inp) * p * p <= KR_BUDGET:
        return KurtosisPlan("exact-khatri-rao")
    rng = np.random.default_rng(SAMPLE_SEED)
    rows = np.sort(rng.choice(out, size=min(out, SAMPLE_SIDE), replace=False))
    cols = np.sort(rng.choice(inp, size=min(inp, SAMPLE_SIDE), replace=False))
    rows, cols = rows.astype(np.intp), cols.astype(np.intp)
    rows.setflags(write=False)
    cols.setflags(write=False)
    return KurtosisPlan("sampled-grid", rows, cols)


def _sym_pairs(x: F64) -> F64:
    """Rows u = sym(x_i ⊗ x_i): ⟨u, v⟩ = (x·y)² with half the entries of the full product."""
    r = x.shape[1]
    iu, ju = np.triu_indices(r)
    w = np.where(iu == ju, 1.0, math.sqrt(2.0))
    return np.asarray(x[:, iu] * x[:, ju] * w, dtype=np.float64)


@dataclass
class SideSummary:
    """What one factor contributes; rows are b_i (for B) or columns a_j (for A), length r."""

    count: int
    r: int
    gram: F64
    total: F64  # Σ of the row vectors
    kr_gram: F64 | None = None
    kr_cube: F64 | None = None
    sample: Floats | None = None  # sampled (or, for exact-dense, all) vectors
    finite: bool = True
    zero: bool = True
    energies: F64 | None = None  # x_iᵀ G x_i against the other factor's Gram, when asked for


class Vectors(Protocol):
    """The vectors one factor contributes (rows b_i of B, or columns a_j of A), in blocks."""

    @property
    def count(self) -> int:
        """The number of vectors."""
        ...

    @property
    def r(self) -> int:
        """The length of each vector."""
        ...

    @property
    def rows(self) -> bool:
        """True: blocks are (k × r); False: blocks are (r × k), i.e. column slices."""
        ...

    def block(self, start: int, stop: int) -> Floats:
        """Vectors start..stop as float32 (float64 for F64 tensors), NaN/Inf kept."""
        ...

    def take(self, index: npt.NDArray[np.intp]) -> Floats:
        """The chosen vectors as rows (len(index) × r), float32 (float64 for F64 tensors)."""
        ...


@dataclass(frozen=True)
class TensorVectors:
    """B's rows (rows=True) or A's columns (rows=False) of one stored factor.

    A block is valid until the next call to `block` (f16/bf16 are widened into one reused
    buffer of BLOCK_ELEMS int32).
    """

    t: RawTensor
    rows: bool
    _scratch: npt.NDArray[np.int32] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        size = BLOCK_ELEMS if self.t.dtype in ("F16", "BF16") else 0
        object.__setattr__(self, "_scratch", np.empty(size, np.int32))

    @property
    def count(self) -> int:
        return self.t.rows if self.rows else self.t.cols

    @property
    def r(self) -> int:
        return self.t.cols if self.rows else self.t.rows

    def block(self, start: int, stop: int) -> Floats:
        part = self.t.raw[start:stop] if self.rows else self.t.raw[:, start:stop]
        return self.t.to_float(part, self._scratch)

    def take(self, index: npt.NDArray[np.intp]) -> Floats:
        if self.rows:
            return self.t.to_float(self.t.raw[index])
        return self.t.to_float(self.t.raw[:, index]).T.copy()  # rows, contiguous


@dataclass(frozen=True)
class FaceSplit:
    """Row-wise Kronecker products x_i ⊗ y_i of two factors' vectors (r = r₁·r₂).

    (B₁A₁) ∘ (B₂A₂) = B̃·Ã with b̃_i = b1_i ⊗ b2_i and ã_j = a1_j ⊗ a2_j, since
    (b1_i·a1_j)(b2_i·a2_j) = (b1_i ⊗ b2_i)·(a1_j ⊗ a2_j): a LoHa update is a LoRA of rank r₁r₂.
    """

    left: Vectors
    right: Vectors

    @property
    def rows(self) -> bool:
        return self.left.rows

    @property
    def count(self) -> int:
        return self.left.count

    @property
    def r(self) -> int:
        return self.left.r * self.right.r

    def block(self, start: int, stop: int) -> Floats:
        x, y = self.left.block(start, stop), self.right.block(start, stop)
        if self.rows:
            return np.asarray((x[:, :, None] * y[:, None, :]).reshape(x.shape[0], -1))
        return np.asarray((x[:, None, :] * y[None, :, :]).reshape(-1, x.shape[1]))

    def take(self, index: npt.NDArray[np.intp]) -> Floats:
        x, y = self.left.take(index), self.right.take(index)
        return np.asarray((x[:, :, None] * y[:, None, :]).reshape(x.shape[0], -1))


def _iter_blocks(v: Vectors) -> Iterator[Floats]:
    step = max(1, min(MAX_BLOCK_VECTORS, BLOCK_ELEMS // max(1, v.r)))
    for start in range(0, v.count, step):
        yield v.block(start, min(v.count, start + step))


def _iter_vectors(v: Vectors) -> Iterator[Floats]:
    """Blocks of vectors as rows (k × r)."""
    for blk in _iter_blocks(v):
        yield blk if v.rows else blk.T


def summarize(t: RawTensor, vectors_are_rows: bool, plan: KurtosisPlan) -> SideSummary:
    """Stream one factor in blocks. B's vectors are its rows; A's vectors are its columns."""
    return summarize_vectors(TensorVectors(t, vectors_are_rows), plan)


def summarize_vectors(v: Vectors, plan: KurtosisPlan, energy_gram: F64 | None = None,
                      grid_sample: bool = True) -> SideSummary:
    """The factor's Gram (and what the plan's kurtosis needs) in one pass over its blocks.

    With `energy_gram` (the other factor's Gram), each block's vector energies x_iᵀ G x_i are
    computed from the same widened block (`energies`): the pass vector_energies would make
    again is saved. `grid_sample=False` leaves out the uniform sample of a sampled-grid plan
    (the caller takes it only if the energy-drawn rows cannot be used).
    """
    r, rows = v.r, v.rows
    s = SideSummary(count=v.count, r=r, gram=np.zeros((r, r)), total=np.zeros(r))
    if plan.method == "exact-khatri-rao":
        p = r * (r + 1) // 2
        s.kr_gram = np.zeros((p, p))
        s.kr_cube = np.zeros((r, r, r))
    kept: list[F64] = []
    exact = plan.method != "sampled-grid"
    energies = None if energy_gram is None else np.empty(v.count, dtype=np.float64)
    g_low: Floats | None = None
    start = 0
    for blk in _iter_blocks(v):
        g = _block_gram(blk, rows)
        if g is None:
            s.finite = False
            return s
        s.gram += g
        if s.zero and (float(np.trace(g)) > 0.0 or bool(blk.any())):
            s.zero = False
        stop = start + (blk.shape[0] if rows else blk.shape[1])
        if energies is not None and energy_gram is not None:
            g_low = g_low if g_low is not None else gram_for(blk, energy_gram)
            energies[start:stop] = block_energies(blk, g_low, rows)
        start = stop
        if exact:  # the power sums of the exact kurtosis are summed in float64 (small modules)
            vec = np.asarray(blk if rows else blk.T, dtype=np.float64)
            s.total += vec.sum(axis=0)
            _kr_accumulate(s, vec)
            if plan.method == "exact-dense":
                kept.append(vec)
    if energies is not None:
        s.energies = np.clip(energies, 0.0, None)
    if plan.method == "exact-dense":
        s.sample = np.concatenate(kept, axis=0) if kept else np.zeros((0, r))
    elif rows and plan.rows is not None and grid_sample:
        s.sample = v.take(plan.rows)
    elif not rows and plan.cols is not None:
        s.sample = v.take(plan.cols)
    return s


def gram_for(blk: Floats, gram: F64) -> Floats:
    """The float64 Gram in the blocks' precision (float32 unless the factor is F64)."""
    return gram if blk.dtype == np.float64 else gram.astype(np.float32)


def block_energies(blk: Floats, g: Floats, rows: bool) -> Floats:
    """x_iᵀ G x_i for the vectors of one block, not clipped: one GEMM in the block's precision
    and r-term row sums in the same precision (relative error ~r·2⁻²⁴, far below what a share
    threshold resolves)."""
    if rows:  # (k × r): Σ_j (X G)_ij X_ij
        out: Floats = np.einsum("ij,ij->i", blk @ g, blk)
    else:  # (r × k) column slice: Σ_j (G X)_ji X_ji, no transposed copy
        out = np.einsum("ji,ji->i", g @ blk, blk)
    return out


def _block_gram(blk: Floats, rows: bool) -> F64 | None:
    """The block's Gram in float64 (one float32 BLAS product), or None if it holds NaN/Inf.

    B blocks are rows (k × r), A blocks column slices (r × k): numpy sends X.T @ X and X @ X.T
    to BLAS syrk, with no transposed copy. A non-finite trace means NaN/Inf in the block, or
    finite values whose squares overflow float32 (|x| > 1.8e19): those blocks are redone in
    float64.
    """
    g = blk.T @ blk if rows else blk @ blk.T
    if math.isfinite(float(np.trace(g))):
        return np.asarray(g, dtype=np.float64)
    if not bool(np.isfinite(blk).all()):
        return None
    b64 = np.asarray(blk, dtype=np.float64)
    return np.asarray(b64.T @ b64 if rows else b64 @ b64.T, dtype=np.float64)


def _kr_accumulate(s: SideSummary, vec: F64) -> None:
    if s.kr_gram is None or s.kr_cube is None:
        return
    u = _sym_pairs(vec)
    s.kr_gram += u.T @ u
    # Σ_i x_ia x_ib x_ic as one BLAS product (einsum's 3-operand loop was 20x slower here).
    r = vec.shape[1]
    outer = (vec[:, :, None] * vec[:, None, :]).reshape(vec.shape[0], r * r)
    s.kr_cube += (outer.T @ vec).reshape(r, r, r)


def psd_sqrt(g: F64) -> F64:
    w, v = np.linalg.eigh((g + g.T) / 2.0)
    return np.asarray((v * np.sqrt(np.clip(w, 0.0, None))) @ v.T, dtype=np.float64)


def r_factor(g: F64) -> F64:
    """A matrix R with RᵀR = G: the R factor of a QR (Cholesky), or G^½ when G is singular."""
    try:
        return np.asarray(np.linalg.cholesky(g).T, dtype=np.float64)
    except np.linalg.LinAlgError:
        return psd_sqrt(g)


def singular_values(gram_b: F64, gram_a: F64, scale: float = 1.0) -> F64:
    """Singular values of s·B·A (descending) from BᵀB and AAᵀ: those of R_B·R_Aᵀ."""
    core = r_factor(gram_b) @ r_factor(gram_a).T
    sv = np.linalg.svd(core, compute_uv=False)
    return np.asarray(np.sort(sv)[::-1] * abs(scale), dtype=np.float64)


@dataclass(frozen=True)
class Spectrum:
    fro: float
    spectral: float
    top_singular_values: tuple[float, ...]
    stable_rank: float | None
    effective_rank: float | None
    energy_concentration: float | None
    spectral_entropy: float | None  # entropy of σ²/Σσ², divided by log(r): 0..1
    numerical_rank: int


def spectrum_stats(sv: F64) -> Spectrum:
    energy = sv * sv
    total = float(energy.sum())
    top = tuple(float(x) for x in sv[:TOP_K_SINGULAR])
    if total <= 0.0 or not math.isfinite(total):
        return Spectrum(fro=math.sqrt(max(total, 0.0)), spectral=float(sv[0]) if sv.size else 0.0,
                        top_singular_values=top, stable_rank=None, effective_rank=None,
                        energy_concentration=None, spectral_entropy=None, numerical_rank=0)
    p = energy / total
    nz = p[p > 0]
    h = float(-(nz * np.log(nz)).sum())
    r = sv.size
    return Spectrum(
        fro=math.sqrt(total), spectral=float(sv[0]), top_singular_values=top,
        stable_rank=total / float(energy[0]), effective_rank=math.exp(h),
        energy_concentration=float(energy[0]) / total,
        spectral_entropy=h / math.log(r) if r > 1 else 0.0,
        numerical_rank=int((sv > sv[0] * 1e-6).sum()))


@dataclass(frozen=True)
class Moments:
    """Raw power sums of the entries of B·A (unscaled) over `count` entries."""

    count: int
    s1: float
    s2: float
    s3: float
    s4: float

    @property
    def kurtosis(self) -> float | None:
        n = self.count
        if n == 0:
            return None
        mu = self.s1 / n
        m2 = self.s2 / n - mu * mu
        m4 = self.s4 / n - 4 * mu * self.s3 / n + 6 * mu * mu * self.s2 / n - 3 * mu ** 4
        if m2 <= 0.0:
            return None
        return m4 / (m2 * m2)


def _moments_dense(rows: Floats, cols: Floats) -> Moments:
    s1 = s2 = s3 = s4 = 0.0
    step = max(1, _MOMENT_BLOCK // max(1, cols.shape[0]))
    # The entries come from a float32 product (r-long dot products, as in the Grams) and their
    # power sums are taken in float64: half the cost of a float64 product, same estimate.
    rows32 = rows.astype(np.float32, copy=False)
    cols32 = cols.astype(np.float32, copy=False)
    for i in range(0, rows.shape[0], step):
        e = (rows32[i:i + step] @ cols32.T).ravel().astype(np.float64)
        e2 = e * e  # the power sums as dot products: one temporary instead of four
        s1 += float(e.sum())
        s2 += float(e2.sum())
        s3 += float(np.dot(e2, e))
        s4 += float(np.dot(e2, e2))
    return Moments(rows.shape[0] * cols.shape[0], s1, s2, s3, s4)


def entry_moments(b: SideSummary, a: SideSummary, plan: KurtosisPlan) -> Moments | None:
    if plan.method == "exact-khatri-rao":
        if b.kr_gram is None or a.kr_gram is None or b.kr_cube is None or a.kr_cube is None:
            return None
        return Moments(count=b.count * a.count, s1=float(b.total @ a.total),
                       s2=float(np.sum(b.gram * a.gram)), s3=float(np.sum(b.kr_cube * a.kr_cube)),
                       s4=float(np.sum(b.kr_gram * a.kr_gram)))
    if b.sample is None or a.sample is None:
        return None
    return _moments_dense(b.sample, a.sample)


@dataclass(frozen=True)
class PairStats:
    out_features: int
    in_features: int
    rank: int
    scale: float
    spectrum: Spectrum
    kurtosis: float | None
    kurtosis_method: str
    gram_a: F64 = field(repr=False, compare=False)
    gram_b: F64 = field(repr=False, compare=False)
    rows: AxisConcentration | None = None  # energy over ΔW's rows (outputs); None: not computed
    cols: AxisConcentration | None = None  # energy over ΔW's columns (inputs)


def combine(b: SideSummary, a: SideSummary, scale: float, plan: KurtosisPlan,
            moments: bool = True) -> PairStats:
    """The pair's spectrum and (unless `moments` is False: the caller sets it) kurtosis."""
    sv = singular_values(b.gram, a.gram, scale)
    mom = entry_moments(b, a, plan) if moments else None
    return PairStats(out_features=b.count, in_features=a.count, rank=b.r, scale=scale,
                     spectrum=spectrum_stats(sv), kurtosis=mom.kurtosis if mom else None,
                     kurtosis_method=plan.method, gram_a=a.gram, gram_b=b.gram)


def row_energies(vectors: RawTensor, other_gram: F64, vectors_are_rows: bool,
                 scale: float) -> F64:
    """‖row v of ΔW‖² where row v is s·(x_vᵀ G x_v)^½ for the vectors x_v of one factor.

    For an lm_head LoRA the vocabulary rows of ΔW are B's rows (G = AAᵀ); for an embedding LoRA
    (ΔW_emb = (BA)ᵀ) they are A's columns (G = BᵀB).
    """
    parts = [np.einsum("ij,jk,ik->i", x, other_gram, x)
             for x in _iter_vectors(TensorVectors(vectors, vectors_are_rows))]
    out = np.concatenate(parts) if parts else np.zeros(0)
    return np.asarray(np.clip(out, 0.0, None) * scale * scale, dtype=np.float64)
