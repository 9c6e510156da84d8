"""(IA)3 scaling vectors: per-channel gains, which are not a ΔW without the base weight.

PEFT merges W·diag(l) (feed-forward modules: l scales the inputs) or diag(l)·W, with l
initialised to 1; LyCORIS merges W·(1 + v) with v initialised to 0. A gain ≤ 0 silences or
flips a channel; a gain far from 1 rescales it far beyond what training from 1 produces.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import AdapterModule
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.vectors import read_vector

MAX_CHANNELS = 1 << 24
_SHOWN = 10


@dataclass(frozen=True)
class ScalingResult:
    module: AdapterModule
    channels: int
    gain_min: float
    gain_max: float
    gain_median: float
    nonpositive: int
    rms_change: float  # RMS of (gain - 1): the typical relative change of a channel

    def record(self) -> dict[str, JSONValue]:
        m = self.module
        return {"module": m.name, "algorithm": m.algorithm.value, "type": m.module_type,
                "layer": m.layer, "file": m.file, "channels": self.channels,
                "on_input": m.ia3_on_input, "gain_min": self.gain_min,
                "gain_max": self.gain_max, "gain_median": self.gain_median,
                "nonpositive": self.nonpositive, "rms_change": self.rms_change}


def analyze_ia3(m: AdapterModule, emit: Emitter) -> ScalingResult | None:
    ref = m.factors["ia3"]
    shape = ref.info.shape
    count = math.prod(shape)
    if sum(d != 1 for d in shape) > 1 or count > MAX_CHANNELS:
        emit.emit(C.SHAPE_MISMATCH, f"(IA)3 module {m.name}: {list(shape)} is not a scaling "
                  f"vector of at most {MAX_CHANNELS} channels", file=ref.file,
                  tensor=ref.info.name, evidence={"module": m.name, "shape": list(shape)})
        return None
    vector = read_vector(ref, "the (IA)3 vector", emit)
    if vector is None:
        return None
    with np.errstate(all="ignore"):
        gain = vector + m.ia3_gain_offset
    if not bool(np.isfinite(gain).all()):
        emit.emit(C.NONFINITE, f"{ref.info.name} contains NaN or Inf: merging it poisons the "
                  "base weights", file=ref.file, tensor=ref.info.name,
                  evidence={"module": m.name, "role": "ia3"})
        return None
    if gain.size == 0:
        emit.emit(C.SHAPE_MISMATCH, f"(IA)3 module {m.name}: empty vector", file=ref.file,
                  tensor=ref.info.name, evidence={"module": m.name, "shape": list(shape)})
        return None
    bad = np.flatnonzero(gain <= 0)
    max_gain = emit.num(C.IA3_GAIN, "max_gain")
    with np.errstate(divide="ignore"):
        far = np.flatnonzero((gain > max_gain) | ((gain > 0) & (gain < 1.0 / max_gain)))
    result = ScalingResult(m, int(gain.size), float(gain.min()), float(gain.max()),
                           float(np.median(gain)), int(bad.size),
                           float(np.sqrt(np.mean((gain - 1.0) ** 2))))
    if bad.size or far.size:
        shown = np.concatenate([bad, far])[:_SHOWN]
        emit.emit(C.IA3_GAIN, f"{m.name}: {bad.size} (IA)3 gains ≤ 0 (channels silenced or "
                  f"sign-flipped) and {far.size} beyond ×{max_gain:g} of {gain.size}",
                  file=ref.file, tensor=ref.info.name,
                  evidence={"module": m.name, "nonpositive": int(bad.size),
                            "beyond_max_gain": int(far.size), "max_gain": max_gain,
                            "channels": [{"channel": int(i), "gain": float(gain[i])}
                                         for i in shown]})
    return result
