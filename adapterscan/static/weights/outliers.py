"""AS508: one module's update out of line with the adapter's other modules (no bank needed).

Each module is compared with the first of these groups that is large enough:

1. modules of its type and shape (`q_proj:4096x4096`), at least `min_modules` of them — the
   comparison of large adapters, unchanged;
2. modules of its type and shape, at least `min_small_group` of them (a UNet has 5 or 6 of
   each role per resolution: comparing its self-attention `attn1.to_q` with the cross-attention
   `attn2.to_q` of the same shape made honest modules look ×10 off);
3. modules of its shape across types (q_proj and o_proj, k_proj and v_proj), at least
   `min_small_group`;
4. modules of its layer, whatever their shape, at least `min_small_group`, on size-free values:
   each statistic minus its size term (log10 ‖ΔW‖_F − ½·log10(out·in) is the log RMS entry).

A 2-layer adapter has two modules per type, so (1) alone never tested it; (3) and (4) do. Small
groups cannot estimate a spread: their robust scale is floored at `min_spread` (log10 units,
0.2 = ×1.6), so z ≥ 8 there needs a module ≥ 1.6 decades (×40) away from its group's median.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.baseline import robust
from adapterscan.static.weights.family import detrended, family_keys, layer_keys, shape_keys
from adapterscan.static.weights.stats import ModuleResult

# The size term of each statistic for the within-layer comparison (log10 of ‖ΔW‖_F and of σ₁
# grow like √(out·in) for updates with entries of one scale; the other statistics are ratios).
_SIZE_EXPONENT = {"log10_fro": 0.5, "log10_spectral": 0.5}


@dataclass(frozen=True)
class _Group:
    kind: str  # "type" | "shape" | "layer"
    key: str
    members: tuple[int, ...]  # indices into the results
    floor: float  # minimum robust scale (0: the group is large enough to estimate its own)


def _groups(results: Sequence[ModuleResult], min_modules: float, min_small: float,
            min_spread: float) -> dict[int, _Group]:
    """The group each module is compared in (modules in no group large enough are absent)."""
    index = {id(r): i for i, r in enumerate(results)}

    def collect(key: Callable[[ModuleResult], str | None]) -> dict[str, list[int]]:
        out: dict[str, list[int]] = {}
        for i, r in enumerate(results):
            k = key(r)
            if k is not None:
                out.setdefault(k, []).append(i)
        return out

    families, shapes, layers = family_keys(results), shape_keys(results), layer_keys(results)
    by_type = collect(lambda r: families[index[id(r)]])
    by_shape = collect(lambda r: shapes[index[id(r)]])
    by_layer = collect(lambda r: layers[index[id(r)]])
    chosen: dict[int, _Group] = {}
    for kind, groups, minimum, floor in (("type", by_type, min_modules, 0.0),
                                         ("type", by_type, min_small, min_spread),
                                         ("shape", by_shape, min_small, min_spread),
                                         ("layer", by_layer, min_small, min_spread)):
        for key, members in groups.items():
            if len(members) < minimum:
                continue
            group = _Group(kind, key, tuple(members), floor)
            for i in members:
                chosen.setdefault(i, group)
    return chosen


def _value(r: ModuleResult, name: str, kind: str) -> float | None:
    v = r.values.get(name)
    if v is None or kind != "layer":
        return v
    if name not in _SIZE_EXPONENT:
        return v
    return v - _SIZE_EXPONENT[name] * math.log10(max(1, r.pair.out_features * r.pair.in_features))


def _z(hit: JSONValue) -> float:
    z = hit.get("z") if isinstance(hit, dict) else None
    return float(z) if isinstance(z, int | float) else 0.0


def outlier_scores(results: Sequence[ModuleResult], emit: Emitter
                   ) -> list[tuple[int, _Group, str, dict[str, float]]]:
    """(module index, its group, statistic, {value, z, median, mad}) for every module and
    statistic that can be scored, whatever its z (the calibration measures the largest)."""
    raw = emit.param(C.MODULE_OUTLIER, "stats")
    names = [str(s) for s in (raw if isinstance(raw, list) else [raw])]
    chosen = _groups(results, emit.num(C.MODULE_OUTLIER, "min_modules"),
                     emit.num(C.MODULE_OUTLIER, "min_small_group"),
                     emit.num(C.MODULE_OUTLIER, "min_spread"))
    detrend = bool(emit.param(C.MODULE_OUTLIER, "detrend"))
    out: list[tuple[int, _Group, str, dict[str, float]]] = []
    for group in {id(g): g for g in chosen.values()}.values():
        for name in names:
            vals = {i: _value(results[i], name, group.kind) for i in group.members}
            if detrend and group.kind != "layer":  # depth drift is not an outlier
                vals = detrended(vals, {i: results[i].module.layer for i in group.members})
            rb = robust([v for v in vals.values() if v is not None])
            if rb is None:
                continue
            scale = max(rb.scale, group.floor)
            for i, v in vals.items():
                if v is None or chosen.get(i) is not group:
                    continue
                out.append((i, group, name, {"value": v, "z": (v - rb.median) / scale,
                                             "median": rb.median, "mad": rb.mad}))
    return out


def module_outliers(results: Sequence[ModuleResult], emit: Emitter) -> None:
    """One AS508 finding per module that stands out in its group, its worst statistic first;
    AS518 as well where that module's update is also many times its group's in size."""
    threshold = emit.num(C.MODULE_OUTLIER, "z")
    scale_z = emit.num(C.SCALE_OUTLIER, "z")
    min_excess = emit.num(C.SCALE_OUTLIER, "min_excess_decades")
    flagged: dict[int, dict[str, JSONValue]] = {}
    larger: dict[int, dict[str, JSONValue]] = {}
    groups: dict[int, _Group] = {}
    for i, group, name, hit in outlier_scores(results, emit):
        if abs(hit["z"]) >= threshold:
            flagged.setdefault(i, {})[name] = dict(hit)
            groups[i] = group
        # Both: far out in its group's own spread, and ≥ 10^min_excess times its median size
        # (honest adapters reach +0.81 decades at most, and never with a large z: docs/weights.md).
        if hit["z"] >= scale_z and hit["value"] - hit["median"] >= min_excess:
            larger.setdefault(i, {})[name] = dict(hit)
            groups[i] = group
    for i in sorted(flagged):
        _report(results[i], groups[i], flagged[i], emit)
    for i in sorted(larger):
        _report_scale(results[i], groups[i], larger[i], emit)


def _report(r: ModuleResult, group: _Group, hits: Mapping[str, JSONValue],
            emit: Emitter) -> None:
    worst = max(hits, key=lambda n: abs(_z(hits[n])))
    what = {"type": f"{group.key} modules", "shape": f"modules of shape {group.key}",
            "layer": f"modules of {group.key} (size-normalised)"}[group.kind]
    emit.emit(C.MODULE_OUTLIER,
              f"{r.module.name}: {worst} is {_z(hits[worst]):+.1f} robust SDs from the other "
              f"{len(group.members) - 1} {what}", file=r.module.file,
              evidence={"module": r.module.name, "statistic": worst, "group": group.key,
                        "comparison": group.kind, "count": len(group.members),
                        "statistics": dict(hits)})


def _report_scale(r: ModuleResult, group: _Group, hits: Mapping[str, JSONValue],
                  emit: Emitter) -> None:
    worst = max(hits, key=lambda n: abs(_z(hits[n])))
    hit = hits[worst]
    value = hit.get("value") if isinstance(hit, dict) else None
    median = hit.get("median") if isinstance(hit, dict) else None
    excess = (float(value) - float(median) if isinstance(value, int | float)
              and isinstance(median, int | float) else 0.0)
    emit.emit(C.SCALE_OUTLIER,
              f"{r.module.name}: its update is ×{10 ** excess:.0f} the median of the other "
              f"{len(group.members) - 1} modules it is compared with ({worst}, "
              f"{_z(hit):+.1f} robust SDs): loading applies one module's change far beyond the "
              "rest of the adapter", file=r.module.file,
              evidence={"module": r.module.name, "statistic": worst, "group": group.key,
                        "comparison": group.kind, "count": len(group.members),
                        "times_median": round(10 ** excess, 2), "statistics": dict(hits)})
