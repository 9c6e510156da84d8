"""Calibration bank: robust location/scale of weight statistics over adapters a user trusts.

Raw statistics cluster by training configuration (rank, steps, learning rate, shapes), so they are
only compared with a bank built from benign adapters for the same base model. Module statistics
are keyed by module type AND shape (`q_proj:4096x4096`): a bank never scores a module of a model it
was not built for. Each module also lands under a rank-specific key (`q_proj:4096x4096@r16`),
because spectral shape statistics scale with the rank; scoring prefers that key when the bank has
enough values under it. z = (x − median) / (1.4826·MAD), with a floor on the scale so that a bank
of near-identical adapters does not turn rounding noise into huge z-scores.
"""

from __future__ import annotations

import json
import math
import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from adapterscan.findings import JSONValue

BANK_FORMAT = "adapterscan-baseline/2"
MAX_BANK_BYTES = 16 * 1024 * 1024
MODULE_STATS = ("log10_fro", "log10_spectral", "stable_rank", "effective_rank",
                "energy_concentration", "spectral_entropy", "kurtosis")
ADAPTER_STATS = ("log10_total_fro", "layer_top_share", "layer_entropy", "median_stable_rank",
                 "median_kurtosis")
MAD_TO_SIGMA = 1.4826
# Scale floor: relative to |median| and absolute (statistics are O(1) or log10 norms).
REL_FLOOR = 0.01
ABS_FLOOR = 1e-3


class BankError(Exception):
    """A calibration bank that cannot be read or has the wrong shape."""


@dataclass(frozen=True)
class Robust:
    """Median and MAD of `count` values drawn from `adapters` distinct adapters. Values from one
    adapter's layers are correlated, so minimums are set on adapters, not values."""

    median: float
    mad: float
    count: int
    adapters: int

    @property
    def scale(self) -> float:
        return max(MAD_TO_SIGMA * self.mad, REL_FLOOR * abs(self.median), ABS_FLOOR)

    def z(self, value: float) -> float:
        return (value - self.median) / self.scale

    def to_json(self) -> dict[str, JSONValue]:
        return {"median": self.median, "mad": self.mad, "count": self.count,
                "adapters": self.adapters}


def robust(values: Sequence[float], sources: Sequence[int] | None = None) -> Robust | None:
    """Location/scale of the finite values; `sources[i]` names the adapter of `values[i]`."""
    keep = [i for i, v in enumerate(values) if math.isfinite(v)]
    if not keep:
        return None
    xs = [float(values[i]) for i in keep]
    # statistics.median (same value as np.median), which spares a scan numpy.ma's import
    med = float(statistics.median(xs))
    adapters = len({sources[i] for i in keep}) if sources is not None else len(keep)
    return Robust(med, float(statistics.median([abs(x - med) for x in xs])), len(xs), adapters)


def module_key(module_type: str, out_features: int, in_features: int) -> str:
    return f"{module_type}:{out_features}x{in_features}"


def rank_key(key: str, rank: int) -> str:
    return f"{key}@r{rank}"


@dataclass(frozen=True)
class AdapterSample:
    """Statistics of one trusted adapter: per-module (module_key, rank, values), and its summary.
    A module with a rank also lands under its rank-specific key in the bank."""

    source: str
    modules: Sequence[tuple[str, int | None, Mapping[str, float | None]]]
    adapter: Mapping[str, float | None]


@dataclass(frozen=True)
class Bank:
    path: str
    modules: Mapping[str, Mapping[str, Robust]]
    adapter: Mapping[str, Robust]
    n_adapters: int
    meta: Mapping[str, JSONValue]

    def module(self, key: str) -> Mapping[str, Robust] | None:
        return self.modules.get(key)

    def lookup(self, key: str, rank: int,
               min_adapters: int) -> tuple[str, Mapping[str, Robust]] | None:
        """The rank-specific entry when it comes from `min_adapters` adapters, else the shape
        entry."""
        specific = self.modules.get(rank_key(key, rank))
        if specific and min(r.adapters for r in specific.values()) >= min_adapters:
            return rank_key(key, rank), specific
        pooled = self.modules.get(key)
        return (key, pooled) if pooled is not None else None


def build_bank(samples: Sequence[AdapterSample],
               meta: Mapping[str, JSONValue] | None = None) -> dict[str, JSONValue]:
    per_key: dict[str, dict[str, list[tuple[float, int]]]] = {}
    per_adapter: dict[str, list[float]] = {}
    for i, s in enumerate(samples):
        for key, rank, stats in s.modules:
            for k in (key,) if rank is None else (key, rank_key(key, rank)):
                slot = per_key.setdefault(k, {})
                for name in MODULE_STATS:
                    v = stats.get(name)
                    if v is not None:
                        slot.setdefault(name, []).append((float(v), i))
        for name in ADAPTER_STATS:
            v = s.adapter.get(name)
            if v is not None:
                per_adapter.setdefault(name, []).append(float(v))
    modules: dict[str, JSONValue] = {}
    for key in sorted(per_key):
        entry: dict[str, JSONValue] = {}
        for name, pairs in sorted(per_key[key].items()):
            rb = robust([v for v, _ in pairs], [i for _, i in pairs])
            if rb is not None:
                entry[name] = rb.to_json()
        modules[key] = entry
    adapter: dict[str, JSONValue] = {}
    for name, vals in sorted(per_adapter.items()):
        rb = robust(vals)
        if rb is not None:
            adapter[name] = rb.to_json()
    return {"format": BANK_FORMAT, "n_adapters": len(samples), "meta": dict(meta or {}),
            "sources": [s.source for s in samples], "modules": modules, "adapter": adapter}


def _robust_from(obj: object, where: str) -> Robust:
    if not isinstance(obj, dict):
        raise BankError(f"{where}: expected an object")
    try:
        med, mad = float(obj["median"]), float(obj["mad"])
        count, adapters = int(obj["count"]), int(obj["adapters"])
    except (KeyError, TypeError, ValueError) as exc:
        raise BankError(f"{where}: needs numeric median, mad, count, adapters") from exc
    if (not (math.isfinite(med) and math.isfinite(mad)) or mad < 0 or count < 1
            or not 1 <= adapters <= count):
        raise BankError(f"{where}: invalid values")
    return Robust(med, mad, count, adapters)


def load_bank(path: Path) -> Bank:
    try:
        size = path.stat().st_size
        if size > MAX_BANK_BYTES:
            raise BankError(f"{path}: {size} bytes, over the {MAX_BANK_BYTES} byte limit")
        data = json.loads(path.read_text("utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BankError(f"{path}: cannot read calibration bank: {exc}") from exc
    if not isinstance(data, dict) or data.get("format") != BANK_FORMAT:
        found = data.get("format") if isinstance(data, dict) else None
        hint = (" (an older bank: rebuild it with `adapterscan baseline build`)"
                if isinstance(found, str) and found.startswith("adapterscan-baseline/") else "")
        raise BankError(f"{path}: not an {BANK_FORMAT} bank{hint}")
    mods_raw, adapter_raw = data.get("modules"), data.get("adapter")
    if not isinstance(mods_raw, dict) or not isinstance(adapter_raw, dict):
        raise BankError(f"{path}: missing 'modules' or 'adapter'")
    modules: dict[str, dict[str, Robust]] = {}
    for key, stats in mods_raw.items():
        if not isinstance(stats, dict):
            raise BankError(f"{path}: modules.{key}: expected an object")
        modules[str(key)] = {str(n): _robust_from(v, f"modules.{key}.{n}")
                             for n, v in stats.items()}
    adapter = {str(n): _robust_from(v, f"adapter.{n}") for n, v in adapter_raw.items()}
    n, meta = data.get("n_adapters"), data.get("meta")
    return Bank(path=str(path), modules=modules, adapter=adapter,
                n_adapters=n if isinstance(n, int) else 0,
                meta=meta if isinstance(meta, dict) else {})


def zscores(reference: Mapping[str, Robust], values: Mapping[str, float | None],
            names: Sequence[str]) -> dict[str, float]:
    out: dict[str, float] = {}
    for name in names:
        v, rb = values.get(name), reference.get(name)
        if v is not None and rb is not None and math.isfinite(v):
            out[name] = rb.z(float(v))
    return out
