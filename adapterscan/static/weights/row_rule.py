"""AS517: a module's update concentrated on a few output rows (or input columns) unlike its family.

The statistic is the share of ΔW's energy in its top `top_k` rows (concentration.py, exact from
the Grams), which is scale-free: a module trained harder or scaled up keeps its share, so this
rule is independent of the update's strength (AS508 covers strength). Each module is compared
with its family — the adapter's modules of its type and shape, else of its shape — by the
robust z of log10(share) (median/MAD over the family, the scale floored at `min_spread`
decades, so z ≥ 6 with a floor of 0.1 always means a share ≥ ×4 the family's median: small
families cannot estimate a spread). `min_share` keeps ratios between two tiny shares quiet.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.baseline import robust
from adapterscan.static.weights.family import family_keys, shape_keys
from adapterscan.static.weights.lowrank import TOP_K, AxisConcentration
from adapterscan.static.weights.stats import ModuleResult

AXES = ("rows", "cols")


def _axis(r: ModuleResult, axis: str) -> AxisConcentration | None:
    return r.pair.rows if axis == "rows" else r.pair.cols


def _families(results: Sequence[ModuleResult], min_family: float
              ) -> dict[str, tuple[list[int], list[int]]]:
    """family → (modules compared in it, modules it is made of): a module's family is its role
    (family.py: type and shape, split by parent, stack and expert) when at least `min_family`
    modules share it, else its shape when enough share that; modules in neither are not
    compared."""
    by_role: dict[str, list[int]] = {}
    by_shape: dict[str, list[int]] = {}
    for i, (key, shape) in enumerate(zip(family_keys(results), shape_keys(results),
                                         strict=True)):
        by_role.setdefault(key, []).append(i)
        by_shape.setdefault(shape, []).append(i)
    families = {k: (m, m) for k, m in by_role.items() if len(m) >= min_family}
    typed = {i for members, _ in families.values() for i in members}
    for key, members in by_shape.items():
        rest = [i for i in members if i not in typed]
        if len(members) >= min_family and rest:
            families[key] = (rest, members)
    return families


@dataclass(frozen=True)
class Score:
    index: int  # into the results
    axis: str  # "rows" | "cols"
    family: str
    family_size: int
    share: float  # of the energy in the top k rows (columns)
    family_median: float  # the family's median share
    z: float  # robust z of log10(share) in the family, its scale floored at min_spread

    @property
    def ratio(self) -> float:
        return self.share / self.family_median


def concentration_scores(results: Sequence[ModuleResult], top_k: int, min_family: float,
                         min_spread: float) -> list[Score]:
    """A score for every module and axis in a family large enough to compare with."""
    k = TOP_K.index(top_k)
    out: list[Score] = []
    for key, (compared, members) in _families(results, min_family).items():
        for axis in AXES:
            logs = {i: math.log10(c.top_share[k]) for i in members
                    if (c := _axis(results[i], axis)) is not None and c.top_share[k] > 0}
            rb = robust(list(logs.values())) if len(logs) >= min_family else None
            if rb is None:
                continue
            scale = max(rb.scale, min_spread)
            for i in compared:
                if i in logs:
                    out.append(Score(i, axis, key, len(members), 10 ** logs[i],
                                     10 ** rb.median, (logs[i] - rb.median) / scale))
    return out


def row_concentration(results: Sequence[ModuleResult], emit: Emitter) -> None:
    """One AS517 finding per module whose rows or columns stand out, the larger z first."""
    top_k = int(emit.num(C.ROW_CONCENTRATION, "top_k"))
    threshold = emit.num(C.ROW_CONCENTRATION, "z")
    min_share = emit.num(C.ROW_CONCENTRATION, "min_share")
    hits: dict[int, list[Score]] = {}
    for sc in concentration_scores(results, top_k, emit.num(C.ROW_CONCENTRATION, "min_family"),
                                   emit.num(C.ROW_CONCENTRATION, "min_spread")):
        if sc.z >= threshold and sc.share >= min_share:
            hits.setdefault(sc.index, []).append(sc)
    for i in sorted(hits):
        r = results[i]
        sc = max(hits[i], key=lambda h: h.z)
        what = "output rows" if sc.axis == "rows" else "input columns"
        conc = _axis(r, sc.axis)
        evidence: dict[str, JSONValue] = {
            "module": r.module.name, "axis": sc.axis, "family": sc.family,
            "family_size": sc.family_size, "top_k": top_k, "share": sc.share,
            "family_median_share": sc.family_median, "ratio": sc.ratio, "z": sc.z,
            "concentration": conc.record() if conc else None}  # type: ignore[dict-item]
        emit.emit(C.ROW_CONCENTRATION,
                  f"{r.module.name}: {sc.share:.0%} of its update's energy sits in {top_k} "
                  f"{what}, {sc.ratio:.1f}× the median share of the {sc.family_size} "
                  f"{sc.family} modules (robust z {sc.z:+.1f})", file=r.module.file,
                  evidence=evidence)
