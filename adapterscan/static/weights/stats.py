"""Per-module statistics of a LoRA adapter and its adapter-level summary (no rules here)."""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import AdapterModule, Algorithm, Scale, TensorRef
from adapterscan.static.formats.readers import MIXED_ALGORITHMS
from adapterscan.static.formats.tensor_reader import FLOAT_DTYPES, TensorReadError
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.algorithms import (
    MAX_RANK,
    PAIRS,
    ModuleProblem,
    NonFinite,
    TooLarge,
    lora_rank,
)
from adapterscan.static.weights.ia3 import ScalingResult, analyze_ia3
from adapterscan.static.weights.lowrank import PairStats
from adapterscan.static.weights.vectors import read_vector

_EMPTY = np.zeros((0, 0))
VOCAB_TYPES = frozenset({"lm_head", "embed_tokens", "embed_out", "output", "wte", "embeddings",
                         "token_embd"})


@dataclass(frozen=True)
class ModuleResult:
    module: AdapterModule
    scale: Scale
    pair: PairStats
    zero_b: bool
    bias_norm: float | None = None  # ‖s·b‖ of lora_B.bias, added to every output of the module

    @property
    def values(self) -> dict[str, float | None]:
        """The statistics a calibration bank and outlier tests use."""
        sp = self.pair.spectrum
        return {
            "log10_fro": math.log10(sp.fro) if sp.fro > 0 else None,
            "log10_spectral": math.log10(sp.spectral) if sp.spectral > 0 else None,
            "stable_rank": sp.stable_rank, "effective_rank": sp.effective_rank,
            "energy_concentration": sp.energy_concentration,
            "spectral_entropy": sp.spectral_entropy, "kurtosis": self.pair.kurtosis,
        }

    def record(self) -> dict[str, JSONValue]:
        m, p, sp = self.module, self.pair, self.pair.spectrum
        return {
            "module": m.name, "algorithm": m.algorithm.value, "type": m.module_type,
            "layer": m.layer, "file": m.file, "embedding": m.embedding,
            "out_features": p.out_features, "in_features": p.in_features, "rank": p.rank,
            "dtype": m.first.info.dtype, "scale": self.scale.value,
            "scale_source": self.scale.source, "fro": sp.fro, "spectral": sp.spectral,
            "top_singular_values": list(sp.top_singular_values), "stable_rank": sp.stable_rank,
            "effective_rank": sp.effective_rank,
            "energy_concentration": sp.energy_concentration,
            "spectral_entropy": sp.spectral_entropy, "numerical_rank": sp.numerical_rank,
            "kurtosis": p.kurtosis, "kurtosis_method": p.kurtosis_method, "zero_b": self.zero_b,
            "bias_norm": self.bias_norm, "bias_ratio": self.bias_ratio,
            "row_concentration": p.rows.record() if p.rows else None,  # type: ignore[dict-item]
            "col_concentration": p.cols.record() if p.cols else None,  # type: ignore[dict-item]
        }

    @property
    def bias_ratio(self) -> float | None:
        """‖s·b‖ / ‖ΔW‖_F: the constant shift against the typical token-dependent change
        (‖ΔW·x‖ ≈ ‖ΔW‖_F for inputs of unit RMS, which RMSNorm/LayerNorm produce)."""
        if self.bias_norm is None:
            return None
        fro = self.pair.spectrum.fro
        if fro > 0:
            return self.bias_norm / fro
        return math.inf if self.bias_norm > 0 else 0.0

    @property
    def is_vocab(self) -> bool:
        return self.module.embedding or self.module.module_type in VOCAB_TYPES


def _problem(emit: Emitter, m: AdapterModule, problem: str) -> None:
    ref = m.a or m.b or m.first
    emit.emit(C.SHAPE_MISMATCH, f"{m.algorithm.value} module {m.name}: {problem}",
              file=ref.file, tensor=ref.info.name,
              evidence={"module": m.name, "algorithm": m.algorithm.value, "problem": problem,
                        "shapes": {k: list(v.info.shape) for k, v in m.factors.items()}})


Computed = tuple[PairStats, TensorRef | None]


def needs_pair(m: AdapterModule) -> bool:
    """Will analyze_module compute this module's pair statistics? (Decided from the header
    alone; used to compute them ahead, on a worker thread. A wrong guess only costs time.)"""
    if m.problem is not None or not math.isfinite(m.scale.value) or m.algorithm is Algorithm.IA3:
        return False
    if any(ref.info.dtype not in FLOAT_DTYPES for ref in m.factors.values()):
        return False
    return m.algorithm is not Algorithm.LORA or (
        m.a is not None and m.b is not None and lora_rank(m)[0] <= MAX_RANK)


def compute_pair(m: AdapterModule, keep_grams: bool = False) -> Computed:
    """The module's ΔW statistics (reads its factors; raises the algorithms' exceptions).
    Emits nothing, so it runs on any thread. The r×r Grams are kept only when asked for or
    for vocabulary modules (row energies need them): results queued ahead stay small."""
    with np.errstate(all="ignore"):  # overflow is detected by analyze_module, not warned about
        pair, zero = PAIRS[m.algorithm](m, m.scale.value)
    if not (keep_grams or m.embedding or m.module_type in VOCAB_TYPES):
        pair = replace(pair, gram_a=_EMPTY, gram_b=_EMPTY)
    return pair, zero


def analyze_module(m: AdapterModule, emit: Emitter, *, keep_grams: bool = False,
                   computed: Future[Computed] | None = None
                   ) -> ModuleResult | ScalingResult | None:
    """Statistics of one module's update (one stored tensor in memory at a time for LoRA);
    `computed` is compute_pair(m) started ahead on a worker, when it was."""
    if m.problem is not None:
        _problem(emit, m, m.problem)
        if m.problem.startswith(MIXED_ALGORITHMS):
            # Loaders apply one of the sets; its update went unmeasured: the scan is incomplete.
            emit.skip((m.a or m.b or m.first).file, f"module {m.name} not analysed: {m.problem}")
        return None
    scale = m.scale
    if not math.isfinite(scale.value):
        ref = scale.tensor or m.first
        emit.emit(C.NONFINITE, f"{m.name}: scale {scale.value} (alpha {scale.alpha}, "
                  f"{scale.source}) is NaN or infinite: merging it poisons the base weights",
                  file=ref.file, tensor=ref.info.name,
                  evidence={"module": m.name, "role": "scale", "alpha": scale.alpha,
                            "r": scale.r, "source": scale.source})
        return None
    for ref in m.factors.values():
        if ref.info.dtype not in FLOAT_DTYPES:
            emit.skip(ref.file, f"tensor {ref.info.name}: dtype {ref.info.dtype} is not a float "
                      "type; weight statistics not computed")
            return None
    if m.algorithm is Algorithm.IA3:
        return analyze_ia3(m, emit)
    if m.algorithm is Algorithm.LORA and not _lora_bounds(m, emit):
        return None
    try:
        pair, zero_ref = (computed.result() if computed is not None
                          else compute_pair(m, keep_grams))
    except ModuleProblem as exc:
        _problem(emit, m, str(exc))
        return None
    except NonFinite as exc:
        _nonfinite(emit, m, exc.ref.file, exc.ref.info.name)
        return None
    except TooLarge as exc:
        emit.skip(m.file, f"module {m.name}: {exc}; weight statistics not computed")
        return None
    except (OSError, TensorReadError) as exc:
        emit.skip(m.file, f"module {m.name}: cannot read its factors: {exc}")
        return None
    except (np.linalg.LinAlgError, ValueError) as exc:
        emit.skip(m.file, f"module {m.name}: statistics overflow or do not converge ({exc})")
        return None
    overflow = _merge_overflow(m, pair)
    if overflow is not None:  # finite factors whose product is not: merging writes Inf
        ref = m.b or m.first
        emit.emit(C.NONFINITE, f"{m.name}: its finite factors multiply to an update that "
                  f"overflows {overflow} (RMS entry of ΔW {pair.spectrum.fro:.3g}/√"
                  f"{pair.out_features * pair.in_features}): merging it writes Inf into the "
                  "base weights", file=ref.file, tensor=ref.info.name,
                  evidence={"module": m.name, "role": "overflow", "dtype": overflow,
                            "delta_fro": pair.spectrum.fro})
        return None
    bias_norm = _bias_norm(m, scale.value, emit) if m.bias is not None else None
    result = ModuleResult(m, scale, pair, zero_ref is not None, bias_norm)
    if zero_ref is not None:
        effect = (f"only its {_bias_role(m)} changes the output" if bias_norm else
                  "this module changes nothing")
        role = next((k for k, v in m.factors.items() if v is zero_ref), "")
        factor = {"A": "lora_A", "B": "lora_B"}.get(role, role)
        emit.emit(C.ZERO_LORA_B, f"{factor or zero_ref.info.name} of {m.name} is all zeros: "
                  f"{effect}", file=zero_ref.file, tensor=zero_ref.info.name,
                  evidence={"module": m.name, "factor": factor, "tensor": zero_ref.info.name})
    ratio = result.bias_ratio
    if ratio is not None and bias_norm and ratio > emit.num(C.LORA_BIAS, "max_ratio"):
        assert m.bias is not None
        emit.emit(C.LORA_BIAS, f"{m.name}: {_bias_role(m)} adds a fixed vector of norm "
                  f"{bias_norm:.3g} to every output, {ratio:.3g}× the low-rank update's "
                  f"‖ΔW‖_F ({pair.spectrum.fro:.3g})", file=m.bias.file, tensor=m.bias.info.name,
                  evidence={"module": m.name, "bias_norm": bias_norm, "delta_fro":
                            pair.spectrum.fro, "ratio": ratio if math.isfinite(ratio) else None})
    s = abs(scale.value)
    if s > emit.num(C.EXTREME_SCALE, "max_scale") or (0 < s < emit.num(C.EXTREME_SCALE,
                                                                       "min_scale")):
        ref = scale.tensor or m.first
        emit.emit(C.EXTREME_SCALE, f"{m.name}: scale {scale.value:.4g} "
                  f"(alpha {scale.alpha:g}, r {scale.r}, {scale.source})", file=ref.file,
                  tensor=ref.info.name,
                  evidence={"module": m.name, "scale": scale.value, "alpha": scale.alpha,
                            "r": scale.r, "source": scale.source})
    return result


# Largest finite value of each stored dtype (GGUF Q8_0 is dequantized to float32).
_DTYPE_MAX = {"F16": 65504.0, "BF16": 3.3895313892515355e38, "F32": 3.4028234663852886e38,
              "Q8_0": 3.4028234663852886e38, "F64": 1.7976931348623157e308}


def _merge_overflow(m: AdapterModule, pair: PairStats) -> str | None:
    """The dtype a merge of this update certainly overflows (None: it does not).

    Certain, not possible: the RMS entry ‖ΔW‖_F/√(out·in) is below the largest entry, so when
    it exceeds the largest value of the factors' dtype (the dtype PEFT merges in, as a rule),
    some merged weight becomes Inf. A norm that overflows float64 overflows every dtype.
    """
    fro = pair.spectrum.fro
    if not math.isfinite(fro):
        return "float64"
    entries = pair.out_features * pair.in_features
    limit = _DTYPE_MAX.get(m.first.info.dtype)
    if limit is None or entries <= 0 or fro / math.sqrt(entries) <= limit:
        return None
    return m.first.info.dtype


def _bias_role(m: AdapterModule) -> str:
    return "lora_B.bias" if m.algorithm is Algorithm.LORA else "bias (diff_b)"


def _lora_bounds(m: AdapterModule, emit: Emitter) -> bool:
    """Rank checks from the header shapes, before anything is read."""
    if m.a is None or m.b is None:
        _problem(emit, m, "lora_A without lora_B" if m.b is None else "lora_B without lora_A")
        return False
    r, n, out = lora_rank(m)
    if r >= min(out, n) and min(out, n) > 0:
        emit.emit(C.FULL_RANK, f"{m.name}: rank {r} ≥ min(out, in) = {min(out, n)}; this is a "
                  "full-rank update, not a low-rank adapter", file=m.a.file, tensor=m.a.info.name,
                  evidence={"module": m.name, "rank": r, "out_features": out, "in_features": n})
    if r > MAX_RANK:  # r×r Grams and SVDs stop being cheap; never let a header size them
        emit.skip(m.a.file, f"module {m.name}: rank {r} > {MAX_RANK}; weight statistics not "
                  "computed")
        return False
    return True


def _bias_norm(m: AdapterModule, scale: float, emit: Emitter) -> float | None:
    """‖s·b‖ for lora_B.bias (LyCORIS diff_b), or None (with a skip or AS501) when unusable."""
    ref = m.bias
    assert ref is not None
    out = m.b_shape()[0] if m.b is not None else m.first.info.shape[0]
    if ref.info.dtype not in FLOAT_DTYPES or list(ref.info.shape) != [out]:
        fits = f"lora_B {list(m.b_shape())}" if m.b is not None else f"{out} outputs"
        emit.skip(ref.file, f"{ref.info.name}: {_bias_role(m)} of dtype {ref.info.dtype} and "
                  f"shape {list(ref.info.shape)} does not fit {fits}; bias not analysed")
        return None
    b = read_vector(ref, _bias_role(m), emit)
    if b is None:
        return None
    with np.errstate(all="ignore"):
        norm = abs(scale) * float(np.sqrt(np.dot(b, b)))
    if not math.isfinite(norm):
        _nonfinite(emit, m, ref.file, ref.info.name)
        return None
    return norm


def _nonfinite(emit: Emitter, m: AdapterModule, file: str, tensor: str) -> None:
    emit.emit(C.NONFINITE, f"{tensor} contains NaN or Inf: merging it poisons the base weights",
              file=file, tensor=tensor, evidence={"module": m.name})


def summarize_adapter(results: Sequence[ModuleResult],
                      top_fraction: float) -> dict[str, JSONValue]:
    """Distribution over layers and module types; energy = ‖ΔW‖_F²."""
    per_layer: dict[int, float] = {}
    per_type: dict[str, list[ModuleResult]] = {}
    for res in results:
        energy = res.pair.spectrum.fro ** 2
        if res.module.layer is not None:
            per_layer[res.module.layer] = per_layer.get(res.module.layer, 0.0) + energy
        per_type.setdefault(res.module.module_type, []).append(res)
    total = sum(r.pair.spectrum.fro ** 2 for r in results)
    layer_e = np.asarray([per_layer[k] for k in sorted(per_layer)], dtype=np.float64)
    top_share = entropy = None
    k = max(1, int(len(layer_e) * top_fraction))
    if layer_e.size and layer_e.sum() > 0:
        p = layer_e / layer_e.sum()
        top_share = float(np.sort(p)[::-1][:k].sum())
        nz = p[p > 0]
        entropy = float(-(nz * np.log(nz)).sum() / math.log(len(p))) if len(p) > 1 else 0.0

    def med(vals: list[float | None]) -> float | None:
        xs = [v for v in vals if v is not None and math.isfinite(v)]
        # statistics.median, not np.median: numpy's imports numpy.ma (~30 ms) on first use
        return float(statistics.median(xs)) if xs else None

    types: dict[str, JSONValue] = {}
    for t, rs in sorted(per_type.items()):
        types[t] = {"count": len(rs), "median_fro": med([r.pair.spectrum.fro for r in rs]),
                    "median_stable_rank": med([r.pair.spectrum.stable_rank for r in rs]),
                    "median_kurtosis": med([r.pair.kurtosis for r in rs]),
                    "energy_share": (sum(r.pair.spectrum.fro ** 2 for r in rs) / total
                                     if total > 0 else None)}
    return {
        "modules": len(results), "layers": len(per_layer),
        "log10_total_fro": math.log10(math.sqrt(total)) if total > 0 else None,
        "layer_energy": {str(k2): per_layer[k2] for k2 in sorted(per_layer)},
        "layer_top_k": k, "layer_top_share": top_share, "layer_entropy": entropy,
        "median_stable_rank": med([r.pair.spectrum.stable_rank for r in results]),
        "median_kurtosis": med([r.pair.kurtosis for r in results]),
        "module_types": types,
    }
