"""How close honest adapters come to the in-adapter comparison rules (AS508, AS517, AS518), per
half of the real-adapter corpus: the largest value each rule's statistic reaches on the fit
half (what its threshold was set from) and on the check half (adapters the threshold never saw).
In-process, statistics only (no findings); read by bench_real.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.rules.loader import load_ruleset
from adapterscan.static.weights import checks as C
from adapterscan.static.weights.alignment import parse_header
from adapterscan.static.weights.analysis import compute_statistics, describe
from adapterscan.static.weights.outliers import outlier_scores
from adapterscan.static.weights.row_rule import concentration_scores
from adapterscan.static.weights.stats import ModuleResult
from benchmarks.common import half_of


@dataclass(frozen=True)
class Margins:
    as508_z: float  # largest |z| of any module statistic in its group
    as517_z: float  # largest concentration z (rows or columns) with a share >= min_share
    as518_excess: float  # largest excess over the group median (decades) with z >= AS518's z


def module_results(folder: Path, emit: Emitter) -> tuple[ModuleResult, ...]:
    files = sorted(folder.glob("*.safetensors"))
    headers = {f.name: parse_header(f, f.name) for f in files}
    cfg_path = folder / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text("utf-8")) if cfg_path.is_file() else None
    return compute_statistics(describe(folder, headers, cfg if isinstance(cfg, dict) else None),
                              emit).results


def margins(results: Sequence[ModuleResult], emit: Emitter) -> Margins:
    outl = outlier_scores(results, emit)
    conc = concentration_scores(results, int(emit.num(C.ROW_CONCENTRATION, "top_k")),
                                emit.num(C.ROW_CONCENTRATION, "min_family"),
                                emit.num(C.ROW_CONCENTRATION, "min_spread"))
    min_share, scale_z = emit.num(C.ROW_CONCENTRATION, "min_share"), emit.num(C.SCALE_OUTLIER, "z")
    return Margins(
        max((abs(h["z"]) for *_, h in outl), default=0.0),
        max((s.z for s in conc if s.share >= min_share), default=0.0),
        max((h["value"] - h["median"] for *_, h in outl if h["z"] >= scale_z), default=0.0))


HEADERS = ("statistic (rule, threshold)", "fit half: largest", "check half: largest")


def margin_rows(folders: Sequence[Path]) -> tuple[tuple[str, ...], ...]:
    emit = Emitter(load_ruleset())
    by_half: dict[str, list[Margins]] = {"fit": [], "check": []}
    for folder in folders:
        if not any(folder.glob("*.safetensors")):
            continue
        results = module_results(folder, emit)
        if results:
            by_half[half_of(folder.name)].append(margins(results, emit))
    fields = (("as508_z", f"robust z, absolute, in its group (AS508 low, z >= "
                          f"{emit.num(C.MODULE_OUTLIER, 'z'):g})"),
              ("as517_z", f"top-{emit.num(C.ROW_CONCENTRATION, 'top_k'):g} share z in its "
                          f"family (AS517 medium, z >= {emit.num(C.ROW_CONCENTRATION, 'z'):g})"),
              ("as518_excess", "size over its group median, decades (AS518 medium, >= "
                               f"{emit.num(C.SCALE_OUTLIER, 'min_excess_decades'):g})"))
    rows = []
    for attr, label in fields:
        cells = [label]
        for half in ("fit", "check"):
            vals = [getattr(m, attr) for m in by_half[half]]
            cells.append(f"{max(vals):.2f} ({len(vals)} adapters)" if vals else "-")
        rows.append(tuple(cells))
    return tuple(rows)
