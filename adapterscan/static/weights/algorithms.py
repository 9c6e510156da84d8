"""ΔW statistics for every algorithm, without forming ΔW for low-rank ones.

- LoRA: B·A, or with a LyCORIS Tucker core (`lora_mid`) B·M where M = core ×₂ down.
- LoHa: (B₁A₁) ∘ (B₂A₂) = B̃·Ã, a LoRA of rank r₁r₂ over face-split vectors (lowrank.FaceSplit).
- LoKr: kron(W₁, W₂), each side full or B·A: products of singular values (weights/kron.py).
- full / diff: ΔW stored whole, SVD'd when small enough.
Tucker cores (LyCORIS `hada_t1`, `lokr_t2`, `lora_mid`; PEFT's `make_weight_cp`) rebuild
W[p, q, k, l] = Σ_ij t[i, j, k, l]·wa[i, p]·wb[j, q], i.e. B = waᵀ and A = t ×₂ wb (r × in·k·l).
(IA)3 vectors are not a ΔW without the base: weights/ia3.py handles them.
"""

from __future__ import annotations

import math

import numpy as np

from adapterscan.static.formats.model import AdapterModule, Algorithm, TensorRef
from adapterscan.static.formats.tensor_reader import F64, RawTensor
from adapterscan.static.weights.concentration import with_concentration
from adapterscan.static.weights.kron import (
    Side,
    SideTooLarge,
    dense_side,
    kron_moments,
    kron_spectrum,
    lowrank_side,
    side_moments,
)
from adapterscan.static.weights.lowrank import (
    FaceSplit,
    KurtosisPlan,
    PairStats,
    SideSummary,
    TensorVectors,
    plan_kurtosis,
    spectrum_stats,
    summarize_vectors,
)

_EMPTY = np.zeros((0, 0))
MAX_RANK = 2048
MAX_LOHA_RANK = 1024  # r₁·r₂: the Grams are (r₁r₂)² and cost (out+in)·(r₁r₂)² to build


class ModuleProblem(Exception):
    """Factors that do not fit together (AS503)."""


class NonFinite(Exception):
    """A factor holding NaN or Inf (AS501)."""

    def __init__(self, ref: TensorRef) -> None:
        super().__init__(ref.info.name)
        self.ref = ref


class TooLarge(Exception):
    """Statistics this module would cost more than the analyzer's bounds allow (a skip)."""


def _f64(name: str, x: np.ndarray) -> RawTensor:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    return RawTensor(name, "F64", tuple(arr.shape), arr.reshape(arr.shape[0], -1))


def _tucker_a(core_ref: TensorRef, wb: RawTensor) -> RawTensor:
    """A = t ×₂ wb: M[i, (q, k, l)] = Σ_j t[i, j, k, l]·wb[j, q] (r₁ × in·k·l)."""
    shape = core_ref.info.shape
    if len(shape) != 4 or shape[1] != wb.rows:
        raise ModuleProblem(f"Tucker core {core_ref.info.name} {list(shape)} does not fit "
                            f"{wb.name} {list(wb.shape)}")
    core = core_ref.read().dense().reshape(shape)
    m = np.einsum("ijkl,jq->iqkl", core, wb.dense())
    return _f64(core_ref.info.name, m.reshape(shape[0], -1))


def _adalora_a(e_ref: TensorRef, a: RawTensor) -> RawTensor:
    """AdaLoRA applies B·(A ⊙ E): E (r × 1, its learned singular values) scales A's rows."""
    if e_ref.info.shape not in ((a.rows, 1), (a.rows,)):
        raise ModuleProblem(f"lora_E {list(e_ref.info.shape)} does not fit lora_A "
                            f"{list(a.shape)}")
    e = e_ref.read().dense().reshape(a.rows, 1)
    return _f64(a.name, a.dense() * e)


def lora_factors(m: AdapterModule) -> tuple[RawTensor, RawTensor]:
    """(B out×r, A r×in) as the loader applies them (MLX transposed back, Tucker rebuilt)."""
    if m.a is None or m.b is None:
        raise ModuleProblem("lora_A without lora_B" if m.b is None else "lora_B without lora_A")
    mid = m.factors.get("mid")
    if mid is None:
        sa, sb = m.a_shape(), m.b_shape()
        conv = len(sa) == 4 and len(sb) == 4 and tuple(sb[2:]) == (1, 1)
        if not conv and (len(sa) != 2 or len(sb) != 2):
            raise ModuleProblem(f"factors must be 2-D (or conv A[r,in,k,k] B[out,r,1,1]), got "
                                f"A{list(sa)} B{list(sb)}")
        if sa[0] != sb[1]:
            raise ModuleProblem(f"inner dimensions disagree: A{list(sa)} B{list(sb)}")
        if min(*sa, *sb) == 0:
            raise ModuleProblem(f"empty factor: A{list(sa)} B{list(sb)}")
        e = m.factors.get("E")
        return m.read_b(), (m.read_a() if e is None else _adalora_a(e, m.read_a()))
    up, down = m.b.read(), m.a.read()
    if mid.info.shape[:1] != (up.cols,):
        raise ModuleProblem(f"lora_mid {list(mid.info.shape)} does not fit lora_up "
                            f"{list(m.b.info.shape)}")
    return up, _tucker_a(mid, down)


def lora_rank(m: AdapterModule) -> tuple[int, int, int]:
    """(r, in, out) from the header shapes alone."""
    sa, sb = m.a_shape(), m.b_shape()
    if "mid" in m.factors:
        ms = m.factors["mid"].info.shape
        return sb[1] if len(sb) > 1 else 0, (sa[1] if len(sa) > 1 else 0) * math.prod(
            ms[2:]), sb[0]
    return sa[0], math.prod(sa[1:]), sb[0]


def _first_nonfinite(*pairs: tuple[TensorRef, RawTensor]) -> TensorRef:
    for ref, t in pairs:
        with np.errstate(all="ignore"):
            if not t.all_finite():
                return ref
    return pairs[0][0]


def _loha_side(m: AdapterModule, wa: str, wb: str, t: str) -> tuple[RawTensor, RawTensor]:
    a_ref, b_ref = m.factors[wa], m.factors[wb]
    if t in m.factors:  # Tucker: wa [r, out], wb [r, in], t [r, r, k, l]
        return a_ref.read().transposed(), _tucker_a(m.factors[t], b_ref.read())
    return a_ref.read(), b_ref.read()


def loha_pair(m: AdapterModule, scale: float) -> tuple[PairStats, TensorRef | None]:
    b1, a1 = _loha_side(m, "w1a", "w1b", "t1")
    b2, a2 = _loha_side(m, "w2a", "w2b", "t2")
    if b1.rows != b2.rows or a1.cols != a2.cols or b1.cols != a1.rows or b2.cols != a2.rows:
        raise ModuleProblem(f"LoHa factors do not fit: w1 {list(b1.shape)}·{list(a1.shape)}, "
                            f"w2 {list(b2.shape)}·{list(a2.shape)}")
    rank = b1.cols * b2.cols
    if rank > MAX_LOHA_RANK:
        raise TooLarge(f"LoHa rank {b1.cols}×{b2.cols} = {rank} > {MAX_LOHA_RANK}")
    refs = [m.factors[k] for k in ("w1a", "w1b", "w2a", "w2b")]
    plan = plan_kurtosis(b1.rows, a1.cols, rank)
    bv = FaceSplit(TensorVectors(b1, True), TensorVectors(b2, True))
    av = FaceSplit(TensorVectors(a1, False), TensorVectors(a2, False))
    side_b, side_a = summarize_vectors(bv, plan), summarize_vectors(av, plan)
    if not (side_a.finite and side_b.finite):
        raise NonFinite(_first_nonfinite(*zip(refs, (b1, a1, b2, a2), strict=True)))
    zero = None
    if side_a.zero or side_b.zero:
        zero = next((r for r, t in zip(refs, (b1, a1, b2, a2), strict=True) if t.all_zero()),
                    refs[0])
    return with_concentration(side_b, side_a, bv, av, scale, plan), zero


def _lokr_side(m: AdapterModule, full: str, wa: str, wb: str, t: str) -> tuple[Side, int, int]:
    if full in m.factors:
        x = m.factors[full].read()
        side = dense_side(x)
        if not side.finite:
            raise NonFinite(m.factors[full])
        return side, x.rows, x.cols
    a_ref, b_ref = m.factors[wa], m.factors[wb]
    if t in m.factors:
        b, a = a_ref.read().transposed(), _tucker_a(m.factors[t], b_ref.read())
    else:
        b, a = a_ref.read(), b_ref.read()
    if b.cols != a.rows:
        raise ModuleProblem(f"LoKr factors {a_ref.info.name} {list(a_ref.info.shape)} and "
                            f"{b_ref.info.name} {list(b_ref.info.shape)} do not fit")
    if b.cols > MAX_RANK:
        raise TooLarge(f"LoKr rank {b.cols} > {MAX_RANK}")
    side = lowrank_side(b, a)
    if not side.finite:
        raise NonFinite(_first_nonfinite((a_ref, b), (b_ref, a)))
    return side, b.rows, a.cols


def lokr_pair(m: AdapterModule, scale: float) -> tuple[PairStats, TensorRef | None]:
    try:
        s1, o1, i1 = _lokr_side(m, "k1", "k1a", "k1b", "")
        s2, o2, i2 = _lokr_side(m, "k2", "k2a", "k2b", "kt2")
        spectrum = kron_spectrum(s1, s2, scale)
    except SideTooLarge as exc:
        raise TooLarge(str(exc)) from exc
    mom = kron_moments(s1, s2)
    zero = m.first if s1.zero or s2.zero else None
    pair = PairStats(out_features=o1 * o2, in_features=i1 * i2, rank=s1.sv.size * s2.sv.size,
                     scale=scale, spectrum=spectrum, kurtosis=mom.kurtosis if mom else None,
                     kurtosis_method=f"kronecker({s1.method}, {s2.method})", gram_a=_EMPTY,
                     gram_b=_EMPTY)
    return pair, zero


def full_pair(m: AdapterModule, scale: float) -> tuple[PairStats, TensorRef | None]:
    ref = m.factors["diff"]
    x = ref.read()
    try:
        side = dense_side(x)
    except SideTooLarge as exc:
        raise TooLarge(str(exc)) from exc
    if not side.finite:
        raise NonFinite(ref)
    mom = side_moments(side)
    pair = PairStats(out_features=x.rows, in_features=x.cols, rank=min(x.rows, x.cols),
                     scale=scale, spectrum=spectrum_stats(side.sv * abs(scale)),
                     kurtosis=mom.kurtosis if mom else None, kurtosis_method="exact-dense",
                     gram_a=_EMPTY, gram_b=_EMPTY)
    return pair, ref if side.zero else None


def lora_pair(m: AdapterModule, scale: float) -> tuple[PairStats, TensorRef | None]:
    """Three passes over the factors, not four: the smaller factor's Gram first, then the
    larger factor's Gram and its vector energies (against the first Gram) from the same
    widened blocks, then the smaller factor again for its energies."""
    b, a = lora_factors(m)
    assert m.a is not None and m.b is not None
    plan = plan_kurtosis(b.rows, a.cols, a.rows)
    av, bv = TensorVectors(a, False), TensorVectors(b, True)
    if a.rows * a.cols <= b.rows * b.cols:
        side_a = _finite_a(m, av, plan)
        side_b = summarize_vectors(bv, plan, energy_gram=side_a.gram, grid_sample=False)
        if not side_b.finite:
            raise NonFinite(m.b)
    else:
        side_b = summarize_vectors(bv, plan, grid_sample=False)
        if not side_b.finite:
            _finite_a(m, av, plan)  # a non-finite A is named first, whichever is read first
            raise NonFinite(m.b)
        side_a = _finite_a(m, av, plan, side_b.gram)
    zero = m.b if side_b.zero else m.a if side_a.zero else None
    return with_concentration(side_b, side_a, bv, av, scale, plan), zero


def _finite_a(m: AdapterModule, av: TensorVectors, plan: KurtosisPlan,
              energy_gram: F64 | None = None) -> SideSummary:
    """A's summary; raises NonFinite naming A (or its Tucker core) when it holds NaN/Inf."""
    side_a = summarize_vectors(av, plan, energy_gram=energy_gram)
    if not side_a.finite:
        assert m.a is not None
        raise NonFinite(_first_nonfinite((m.a, m.read_a()), *(
            [(m.factors["mid"], m.factors["mid"].read())] if "mid" in m.factors else [])))
    return side_a


PAIRS = {Algorithm.LORA: lora_pair, Algorithm.LOHA: loha_pair, Algorithm.LOKR: lokr_pair,
         Algorithm.FULL: full_pair}
