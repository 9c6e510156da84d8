"""A full checkpoint scanned as ΔW = W_ft − W_base against its base (docs/delta.md).

Tensor by tensor, in file order: unchanged tensors are counted (bytes compared block by block,
stopping at the first difference); each changed matrix is factorized (factorize.py) and its
factors appended to a PEFT adapter (writer.py); changed vectors (norms, biases) are measured.
Then the adapter's own weight analysis runs on the factors, unchanged: the same AdapterModel
the PEFT reader would build, with findings pointing at the checkpoint's files.
"""

from __future__ import annotations

import math
import tempfile
from collections.abc import Callable, Mapping
from concurrent.futures import Executor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.delta import checks as C
from adapterscan.static.delta.factorize import FactorOptions, LowRank, factorize
from adapterscan.static.delta.model import build_model
from adapterscan.static.delta.pairing import (
    VOCAB_KEYS,
    BaseMismatch,
    Pair,
    Pairing,
    pair_tensors,
)
from adapterscan.static.delta.tokens import TokenRows, report_rows, token_rows
from adapterscan.static.delta.writer import AdapterWriter, ModuleFactors
from adapterscan.static.formats.tensor_reader import RawTensor, TensorReadError, read_tensor
from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.options import StaticOptions
from adapterscan.static.weights.alignment import BaseModelError, BaseWeights
from adapterscan.static.weights.analysis import weight_analysis
from adapterscan.static.weights.trigger_tokens import TokenCandidate, load_vocab

Progress = Callable[[str], None]
SHOWN = 50
COMPARE_ELEMS = 1 << 20  # elements compared at a time (unchanged tensors)


@dataclass
class _Tally:
    unchanged: int = 0
    rounding_only: list[str] = field(default_factory=list)
    vectors: list[JSONValue] = field(default_factory=list)
    modules: list[dict[str, JSONValue]] = field(default_factory=list)
    factors: list[tuple[ModuleFactors, Pair]] = field(default_factory=list)
    lowrank: list[LowRank] = field(default_factory=list)
    rows: list[TokenRows] = field(default_factory=list)


@dataclass(frozen=True)
class DeltaResult:
    results: dict[str, JSONValue]  # the report's results["delta"] and results["weights"]
    triggers: tuple[TokenCandidate, ...] = ()


def analyze_checkpoint(root: Path, headers: Mapping[str, SafetensorsHeader], emit: Emitter,
                       options: StaticOptions, executor: Executor | None = None,
                       progress: Progress | None = None) -> DeltaResult:
    """The delta scan against options.weights.base_dir. A base that cannot be read or is not
    this checkpoint's base is a stage error (the scan ends incomplete with the reason)."""
    base_dir = options.weights.base_dir
    assert base_dir is not None
    try:
        base = BaseWeights.open(base_dir)
        pairing = pair_tensors(root, headers, base)
    except BaseMismatch as exc:
        emit.error("delta", f"the base {base_dir} does not match this checkpoint: {exc}")
        return DeltaResult({"delta": {"base_dir": str(base_dir), "matched": False,
                                      "reason": str(exc)}})
    except (OSError, ValueError, BaseModelError, TensorReadError) as exc:
        emit.error("delta", f"base model unusable: {exc}", str(base_dir))
        return DeltaResult({"delta": {"base_dir": str(base_dir), "matched": False,
                                      "reason": str(exc)}})
    _tensor_findings(pairing, emit)
    opts = options.delta
    factor_opts = FactorOptions(sketch=opts.sketch, max_sketch=opts.max_sketch,
                                power_iters=opts.power_iters)
    with tempfile.TemporaryDirectory(prefix="adapterscan-delta-") as tmp:
        folder = opts.recover_dir or Path(tmp)
        writer = AdapterWriter(folder)
        tally = _Tally()
        try:
            for pair in sorted(pairing.pairs, key=lambda p: (p.ft.file, p.ft.info.begin)):
                if progress:
                    progress(f"delta {pair.name}")
                _one(pair, factor_opts, writer, tally, emit)
        except BaseException:
            writer.abandon()
            raise
        merged = _merged_lora(pairing, tally, emit)
        recover = merged.get("recognised") is True or opts.recover_dir is not None
        weights_file = writer.finish(opts.base_name, opts.base_revision) \
            if tally.factors else None
        if weights_file is None:
            writer.abandon()
        vocab = load_vocab(root) or load_vocab(base_dir)
        delta: dict[str, JSONValue] = {
            "base_dir": str(base_dir), "matched": True,
            "tensors": _counts(pairing, tally),
            "factorization": _method(factor_opts, tally),
            "modules": list[JSONValue](tally.modules), "vectors_changed": tally.vectors[:SHOWN],
            "rounding_only": list[JSONValue](tally.rounding_only[:SHOWN]),
            "token_rows": report_rows(tally.rows, vocab, emit),
            "merged_lora": merged,
            "recovered_adapter": str(opts.recover_dir) if opts.recover_dir and recover
            and weights_file else None,
        }
        results: dict[str, JSONValue] = {"delta": delta}
        triggers: tuple[TokenCandidate, ...] = ()
        if weights_file is not None:
            model = build_model(weights_file, [(m, p.ft.file) for m, p in tally.factors])
            stats, triggers = weight_analysis(root, {}, None, emit, options.weights, model,
                                              executor)
            if stats is not None:
                results["weights"] = stats
    return DeltaResult(results, triggers)


def _tensor_findings(p: Pairing, emit: Emitter) -> None:
    if p.added:
        names = [t.name for t in p.added]
        emit.emit(C.TENSOR_ADDED, f"{len(names)} tensors the base does not have (first: "
                  f"{names[0]})", tensor=names[0],
                  evidence={"count": len(names), "tensors": list[JSONValue](names[:SHOWN])})
    if p.removed:
        emit.emit(C.TENSOR_REMOVED, f"{len(p.removed)} tensors of the base are missing (first: "
                  f"{p.removed[0]})", tensor=p.removed[0],
                  evidence={"count": len(p.removed),
                            "tensors": list[JSONValue](p.removed[:SHOWN])})
    if p.reshaped:
        first = p.reshaped[0]
        emit.emit(C.TENSOR_RESHAPED, f"{len(p.reshaped)} tensors have another shape than in "
                  f"the base (first: {first[0]} {list(first[1])} vs {list(first[2])})",
                  tensor=first[0], evidence={
                      "count": len(p.reshaped), "vocab_size": list[JSONValue](p.vocab),
                      "tensors": [{"tensor": n, "shape": list[JSONValue](f),
                                   "base_shape": list[JSONValue](b)}
                                  for n, f, b in p.reshaped[:SHOWN]]})
    if p.dtype_changed:
        first_d = p.dtype_changed[0]
        emit.emit(C.TENSOR_DTYPE, f"{len(p.dtype_changed)} tensors are stored in another dtype "
                  f"than in the base (first: {first_d[0]} {first_d[1]} vs {first_d[2]})",
                  tensor=first_d[0], evidence={
                      "count": len(p.dtype_changed),
                      "tensors": [{"tensor": n, "dtype": f, "base_dtype": b}
                                  for n, f, b in p.dtype_changed[:SHOWN]]})


def _same_bytes(ft: RawTensor, base: RawTensor, rows: int) -> bool:
    if ft.dtype != base.dtype:
        return False
    unsigned = np.dtype(f"u{ft.raw.dtype.itemsize}")
    step = max(1, COMPARE_ELEMS // max(1, ft.cols))
    for i in range(0, rows, step):
        j = min(rows, i + step)
        if not np.array_equal(ft.raw[i:j].view(unsigned), base.raw[i:j].view(unsigned)):
            return False
    return True


def _one(pair: Pair, opts: FactorOptions, writer: AdapterWriter, tally: _Tally,
         emit: Emitter) -> None:
    try:
        ft = read_tensor(pair.ft.path, pair.ft.header, pair.ft.info)
        base = read_tensor(pair.base.path, pair.base.header, pair.base.info)
    except (OSError, TensorReadError) as exc:
        emit.skip(pair.ft.file, f"tensor {pair.name}: not compared with the base: {exc}")
        return
    if _same_bytes(ft, base, pair.rows) and ft.rows == base.rows:
        tally.unchanged += 1
        return
    if len(pair.ft.info.shape) < 2:
        d = ft.to_f64(ft.raw) - base.to_f64(base.raw)
        change = float(np.linalg.norm(d))
        if change == 0.0:  # the same values in another dtype
            tally.unchanged += 1
            return
        norm = float(np.linalg.norm(base.to_f64(base.raw)))
        tally.vectors.append({"tensor": pair.name, "delta_norm": change,
                              "relative": change / norm if norm else None})
        return
    with np.errstate(all="ignore"):
        lr = factorize(ft, base, opts, rows=pair.rows)
    if not (math.isfinite(lr.delta_fro) and math.isfinite(lr.base_fro)):
        emit.skip(pair.ft.file, f"tensor {pair.name}: the difference with the base is not "
                  "finite (NaN or Inf): not factorized")
        return
    if lr.delta_fro == 0.0 and ft.rows == base.rows:  # the same values in another dtype
        tally.unchanged += 1
        return
    if pair.kind in VOCAB_KEYS:
        tally.rows.append(token_rows(pair.name, pair.ft.file, lr.row_energy, ft.rows))
    rec: dict[str, JSONValue] = {"module": pair.module, "file": pair.ft.file,
                                 "shape": list[JSONValue](pair.ft.info.shape),
                                 **lr.record()}  # type: ignore[dict-item]
    tally.modules.append(rec)
    if lr.rank == 0:  # only rounding (a dtype round trip), or only rows the base lacks
        if lr.delta_fro > 0:
            tally.rounding_only.append(pair.name)
        return
    tally.lowrank.append(lr)
    tally.factors.append((writer.add(pair.module, lr.b, lr.a, pair.embedding), pair))


def _merged_lora(p: Pairing, tally: _Tally, emit: Emitter) -> dict[str, JSONValue]:
    """Is every change a low-rank matrix update (what merging a LoRA leaves)?"""
    why: list[str] = []
    high = [m["module"] for m in tally.modules if m["rank"] and not m["low_rank"]]
    if not tally.lowrank:
        why.append("no matrix changed beyond rounding")
    if high:
        why.append(f"{len(high)} changed matrices are not low rank (first: {high[0]})")
    if tally.vectors:
        why.append(f"{len(tally.vectors)} vectors changed (norms or biases: a LoRA merge "
                   "leaves them)")
    if p.added or p.reshaped:
        why.append("tensors were added or reshaped")
    ranks = sorted({lr.rank for lr in tally.lowrank})
    worst = max((lr.residual for lr in tally.lowrank), default=0.0)
    out: dict[str, JSONValue] = {
        "recognised": not why, "rank": max(ranks) if ranks else None,
        "ranks": list[JSONValue](ranks), "modules": len(tally.lowrank),
        "max_relative_residual": worst, "not_because": list[JSONValue](why)}
    if not why:
        emit.emit(C.MERGED_LORA, f"every changed matrix is a low-rank update: a merged LoRA of "
                  f"rank {max(ranks)} over {len(tally.lowrank)} modules (largest relative "
                  f"residual {worst:.2g})", evidence=out)
    return out


def _counts(p: Pairing, tally: _Tally) -> dict[str, JSONValue]:
    return {"compared": len(p.pairs), "unchanged": tally.unchanged,
            "matrices_changed": len(tally.lowrank), "rounding_only": len(tally.rounding_only),
            "vectors_changed": len(tally.vectors), "added": len(p.added),
            "removed": len(p.removed), "reshaped": len(p.reshaped),
            "dtype_changed": len(p.dtype_changed), "vocab_size": list[JSONValue](p.vocab)}


def _method(opts: FactorOptions, tally: _Tally) -> dict[str, JSONValue]:
    return {"method": "randomized range finder (Halko, Martinsson & Tropp 2011), Gaussian "
            "sketch, power iterations on the wider sketch; ΔW ≈ B·A truncated at the numerical "
            "rank", "sketch": opts.sketch, "max_sketch": opts.max_sketch,
            "power_iterations": opts.power_iters,
            "max_relative_residual": max((lr.residual for lr in tally.lowrank), default=0.0),
            "error_bound": "relative_residual = ‖ΔW − B·A‖_F / ‖ΔW‖_F, measured per module "
            "(ΔW − B·A formed block by block in a last pass)"}
