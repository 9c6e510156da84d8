"""DoRA magnitude vectors: per-channel gains that the LoRA factors do not show.

DoRA (Liu et al. 2024) merges row j of a Linear weight as m_j·(W_j + s·ΔW_j)/‖W_j + s·ΔW_j‖, so
after merging that output channel has norm |m_j| where the base had ‖W_j‖. PEFT initialises m_j
to ‖W_j‖ and training moves it by a few percent. A hostile adapter can leave B at zero (the LoRA
statistics then see no update at all) and still rescale, silence (m_j = 0) or flip (m_j < 0)
chosen output channels through m alone. Non-positive magnitudes are checked without a base; the
gain |m_j|/‖W_j‖ needs the base weight.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.config.peft_names import PREFIX, parse_lora_key
from adapterscan.static.formats.model import TensorRef
from adapterscan.static.formats.tensor_reader import FLOAT_DTYPES, RawTensor, TensorReadError
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.alignment import BASE_BLOCK_ELEMS, BaseWeights
from adapterscan.static.weights.vectors import read_vector

_SHOWN = 10  # channels listed as evidence
# A magnitude has one entry per output channel; no real layer has more than this many.
MAX_CHANNELS = 1 << 24


def magnitude_target(name: str) -> str | None:
    """`model.layers.0.self_attn.q_proj` for a DoRA magnitude tensor name, else None."""
    parsed = parse_lora_key(name)
    if parsed is None or parsed[1] != "lora_magnitude_vector" or parsed[2] != "weight":
        return None
    return parsed[0].removeprefix(PREFIX)


def magnitude_tensors(others: Sequence[TensorRef]) -> list[tuple[str, TensorRef]]:
    return [(t, ref) for ref in others if (t := magnitude_target(ref.info.name)) is not None]


def _row_norms(w: RawTensor, by_columns: bool) -> np.ndarray:
    if by_columns:  # fan_in_fan_out (GPT-2 Conv1D): the stored weight is (in, out)
        acc = np.zeros(w.cols)
        for _, blk in w.blocks(BASE_BLOCK_ELEMS):
            acc += np.einsum("ij,ij->j", blk, blk)
        return np.sqrt(acc)
    parts = [np.sqrt(np.einsum("ij,ij->i", blk, blk)) for _, blk in w.blocks(BASE_BLOCK_ELEMS)]
    return np.concatenate(parts) if parts else np.zeros(0)


def _channels(idx: np.ndarray, values: np.ndarray) -> list[JSONValue]:
    return [{"channel": int(i), "value": float(values[i])} for i in idx[:_SHOWN]]


def check_magnitudes(others: Sequence[TensorRef], config: Mapping[str, JSONValue] | None,
                     base: BaseWeights | None, emit: Emitter, *,
                     extra: Sequence[tuple[str, TensorRef]] = ()) -> list[JSONValue]:
    """One record per magnitude vector (PEFT's among `others`, plus `extra` (target, tensor)
    pairs from other formats); AS513 for non-positive entries, AS514 for channel gains outside
    [1/max_gain, max_gain] against the base."""
    max_gain = emit.num(C.DORA_GAIN, "max_gain")
    fan_in_fan_out = bool(config.get("fan_in_fan_out")) if config else False
    out: list[JSONValue] = []
    for target, ref in [*magnitude_tensors(others), *extra]:
        if ref.info.dtype not in FLOAT_DTYPES:
            emit.skip(ref.file, f"{ref.info.name}: DoRA magnitude of dtype {ref.info.dtype} "
                      "is not a float tensor; not analysed")
            continue
        count = math.prod(ref.info.shape)
        if len(ref.info.shape) > 2 or count > MAX_CHANNELS:
            emit.skip(ref.file, f"{ref.info.name}: DoRA magnitude of shape {list(ref.info.shape)}"
                      f" is not a vector of at most {MAX_CHANNELS} channels; not analysed")
            continue
        m = read_vector(ref, "DoRA magnitude", emit)
        if m is None:
            continue
        if not bool(np.isfinite(m).all()):
            emit.emit(C.NONFINITE, f"{ref.info.name}: DoRA magnitude holds NaN/Inf",
                      file=ref.file, tensor=ref.info.name,
                      evidence={"module": target, "tensor": ref.info.name})
            continue
        entry: dict[str, JSONValue] = {
            "tensor": ref.info.name, "module": target, "channels": int(m.size),
            "min": float(m.min()) if m.size else None, "max": float(m.max()) if m.size else None,
            "median": float(np.median(m)) if m.size else None}
        bad = np.flatnonzero(m <= 0)
        entry["nonpositive"] = int(bad.size)
        if bad.size:
            emit.emit(C.DORA_NONPOSITIVE,
                      f"{target}: {bad.size} of {m.size} DoRA magnitudes are ≤ 0 (those output "
                      "channels are silenced or sign-flipped when the adapter is merged)",
                      file=ref.file, tensor=ref.info.name,
                      evidence={"module": target, "count": int(bad.size),
                                "channels": _channels(bad, m)})
        if base is not None:
            entry.update(_gains(target, m, base, fan_in_fan_out, max_gain, ref, emit))
        out.append(entry)
    return out


def _gains(target: str, m: np.ndarray, base: BaseWeights, fan_in_fan_out: bool,
           max_gain: float, ref: TensorRef, emit: Emitter) -> dict[str, JSONValue]:
    if m.size == 0:
        return {"gain": None}
    name = base.find(target)
    if name is None:
        emit.skip(ref.file, f"{ref.info.name}: no base weight for {target}; DoRA channel gains "
                  "not checked")
        return {"gain": None}
    try:
        w = base.read(name)
    except (OSError, TensorReadError) as exc:
        emit.skip(ref.file, f"{ref.info.name}: cannot read base weight {name}: {exc}")
        return {"gain": None}
    norms = _row_norms(w, fan_in_fan_out)
    if norms.size != m.size:
        emit.skip(ref.file, f"{ref.info.name}: {m.size} magnitudes for {norms.size} output "
                  f"channels of {name}; DoRA channel gains not checked")
        return {"gain": None}
    with np.errstate(divide="ignore", invalid="ignore"):
        gain = np.where(norms > 0, np.abs(m) / norms, np.where(np.abs(m) > 0, np.inf, 1.0))
        log_gain = np.abs(np.log(np.where(gain > 0, gain, np.nan)))
    out_of_range = np.flatnonzero((gain > max_gain) | (gain < 1.0 / max_gain))
    order = out_of_range[np.argsort(-np.nan_to_num(log_gain[out_of_range], nan=np.inf))]
    record: dict[str, JSONValue] = {
        "base": name, "gain_min": float(gain.min()), "gain_max": float(gain.max()),
        "median_abs_log_gain": float(np.nanmedian(log_gain)),
        "channels_out_of_range": int(out_of_range.size)}
    if out_of_range.size:
        emit.emit(C.DORA_GAIN,
                  f"{target}: DoRA rescales {out_of_range.size} of {m.size} output channels "
                  f"by more than ×{max_gain:g} against the base (gains {gain.min():.3g}–"
                  f"{gain.max():.3g})", file=ref.file, tensor=ref.info.name,
                  evidence={"module": target, "base": name, "max_gain": max_gain,
                            "count": int(out_of_range.size), "channels": _channels(order, gain)})
    return record
