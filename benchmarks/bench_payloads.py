"""Detection of payloads planted into real adapters (benchmarks/payloads.py), against strength.

Adapters: the folders of the real-adapter corpus (env ADAPTERSCAN_REAL_ADAPTERS overrides) with a
safetensors LoRA file holding a live (non-zero) pair. Payloads go into check-half adapters only
(benchmarks/common.py half_of: the half no threshold was fitted on); the unplanted adapters of
both halves are scanned too, and a relevant rule firing there is a false alarm.

Strength (benchmarks/payload_strength.py): the payload's RMS change of one of its target rows of
the merged model's output, for a random unit input, over the RMS change of one output row of the
adapter's typical (median) module. `scale`, `rows` and `rotate` are planted at strengths 1, 2, 4,
... (their parameter solved exactly for it; an adapter whose strongest direction, moved entirely,
stays weaker is counted as out of reach); `rows` and `rotate` also at t = 1 (the whole
direction moved), `rank` at its parameter with the strength it reached. Each planted copy is
scanned in-process like `adapterscan scan FOLDER`. Detected: the verdict warns or fails and one
of its reasons is a rule relevant to the payload. Flagged: a relevant rule fires at all.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path

from adapterscan.pipeline import scan
from benchmarks.common import (
    REAL_ADAPTERS,
    BenchTable,
    corpus_missing,
    half_of,
    real_adapter_folders,
)
from benchmarks.payloads import (
    AT_STRENGTH,
    StFile,
    Unreachable,
    live_pairs,
    plant,
    plant_at,
    weights_file,
)

RELEVANT: dict[str, frozenset[str]] = {
    "scale": frozenset({"AS508", "AS509", "AS518"}),
    "rows": frozenset({"AS517"}),
    "rotate": frozenset({"AS508", "AS509", "AS510", "AS517", "AS518"}),
    "nan": frozenset({"AS501"}),
    "overflow": frozenset({"AS501", "AS508"}),
    "rank": frozenset({"AS504", "AS320", "AS508", "AS517"}),
}
STRENGTHS = (1.0, 2.0, 4.0, 8.0, 16.0, 32.0)
FULL_MOVE = ("rows", "rotate")  # also planted at t = 1
GRID: dict[str, tuple[float, ...]] = {
    "nan": (0.0, 1.0),
    "overflow": (20.0, 36.0, 42.0),
    "rank": (2.0, 4.0),
}
PARAMETER = {"scale": "×{:.3g} B", "rows": "t = {:.2g}", "rotate": "t = {:.2g}",
             "nan": "fraction {:g} of A", "overflow": "B × 10^{:g}", "rank": "r × {:g}"}
HEADERS = ("payload", "strength", "parameter (median)", "check adapters planted",
           "detected (verdict)", "flagged (rule fires)", "relevant rules")


def real_adapters() -> list[Path]:
    out = []
    for d in real_adapter_folders():
        path = weights_file(d)
        if path is not None and live_pairs(StFile.read(path)):
            out.append(d)
    return out


def _outcome(folder: Path, relevant: frozenset[str]) -> tuple[bool, bool]:
    """(detected, flagged) for one scan."""
    doc = scan(folder).to_dict()
    fired = {f["rule_id"] for f in doc["findings"]}
    verdict = doc["verdict"]
    cited = any(str(reason).split(" ", 1)[0] in relevant for reason in verdict["reasons"])
    return verdict["decision"] in ("warn", "fail") and cited, bool(fired & relevant)


def _pct(k: int, n: int) -> str:
    return f"{k}/{n} ({k / n:.0%})" if n else "–"


class _Cell:
    """Outcomes of one payload at one strength over the check-half adapters."""

    def __init__(self) -> None:
        self.detected = self.flagged = self.out_of_reach = 0
        self.params: list[float] = []
        self.strengths: list[float] = []

    def add(self, folder: Path, relevant: frozenset[str], parameter: float,
            strength: float) -> None:
        d, f = _outcome(folder, relevant)
        self.detected += d
        self.flagged += f
        self.params.append(parameter)
        if not math.isnan(strength):
            self.strengths.append(strength)

    def row(self, payload: str, strength: str, n: int) -> tuple[str, ...]:
        k = len(self.params)
        param = PARAMETER[payload].format(statistics.median(self.params)) if k else "–"
        planted = f"{k} of {n}" + (f" ({self.out_of_reach} out of reach)"
                                   if self.out_of_reach else "")
        return (payload, strength, param, planted, _pct(self.detected, k),
                _pct(self.flagged, k), ", ".join(sorted(RELEVANT[payload])))


def _unplanted(adapters: list[Path]) -> tuple[dict[str, dict[str, int]], list[float]]:
    """Per payload and half, the unplanted adapters where a relevant rule fires; scan times."""
    alarms = {p: {"fit": 0, "check": 0} for p in RELEVANT}
    times = []
    for folder in adapters:
        t0 = time.perf_counter()
        doc = scan(folder).to_dict()
        times.append(time.perf_counter() - t0)
        fired = {f["rule_id"] for f in doc["findings"]}
        for p, rel in RELEVANT.items():
            alarms[p][half_of(folder.name)] += bool(fired & rel)
    return alarms, times


def _planted_rows(check: list[Path], tmp: Path) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    n = len(check)
    for payload in AT_STRENGTH:
        for target in STRENGTHS:
            cell = _Cell()
            for k, folder in enumerate(check):
                dst = tmp / f"{payload}-s{target:g}-{k}"
                try:
                    got = plant_at(folder, dst, payload, target, seed=k)
                except Unreachable:
                    cell.out_of_reach += 1
                    continue
                cell.add(dst, RELEVANT[payload], got.parameter, got.strength)
            rows.append(cell.row(payload, f"{target:g}", n))
        if payload in FULL_MOVE:
            cell = _Cell()
            for k, folder in enumerate(check):
                dst = tmp / f"{payload}-t1-{k}"
                plant(folder, dst, payload, 1.0, seed=k)
                cell.add(dst, RELEVANT[payload], 1.0, math.nan)
            rows.append(cell.row(payload, "t = 1 (whole direction)", n))
    for payload, grid in GRID.items():
        for param in grid:
            cell = _Cell()
            for k, folder in enumerate(check):
                dst = tmp / f"{payload}-{param:g}-{k}"
                got = plant(folder, dst, payload, param, seed=k)
                cell.add(dst, RELEVANT[payload], param, got.strength)
            label = (f"{statistics.median(cell.strengths):.2g} (median)" if cell.strengths
                     else "–")
            rows.append(cell.row(payload, label, n))
    return rows


def run() -> BenchTable:
    if not REAL_ADAPTERS.is_dir():
        return corpus_missing("Planted payloads in real adapters")
    adapters = real_adapters()
    check = [d for d in adapters if half_of(d.name) == "check"]
    n_fit = len(adapters) - len(check)
    alarms, times = _unplanted(adapters)
    rows: list[tuple[str, ...]] = [
        (p, "none (unplanted)", "–", f"{len(check)} check + {n_fit} fit", "–",
         f"check {alarms[p]['check']}/{len(check)}, fit {alarms[p]['fit']}/{n_fit}",
         ", ".join(sorted(RELEVANT[p]))) for p in RELEVANT]
    with tempfile.TemporaryDirectory() as tmp:
        rows += _planted_rows(check, Path(tmp))
    notes = (
        f"Planted into the {len(check)} check-half adapters (of {len(adapters)} real adapters "
        "with a live safetensors LoRA pair; pickle-only and all-zero adapters cannot carry "
        "these payloads); the unplanted rows count false alarms of the relevant rules on both "
        "halves. Strength: the payload's RMS change of one of its target rows of the merged "
        "model's output for a random unit input, over that of one output row of the adapter's "
        "median module (exact from the factors and the scales PEFT applies; "
        "benchmarks/payload_strength.py); 1 = each target row moves as much as a row of a "
        "typical module does. Payloads go into the mid-depth live module (natural name order), "
        "except rank inflation (every module, config r and lora_alpha raised with it). `scale` "
        "multiplies B by k (target rows: all of the module's); `rows` moves fraction t of the "
        "module's strongest LoRA direction into 4 output rows with ‖b_j‖ and ‖ΔW‖_F kept "
        "(target rows: those 4); `rotate` turns it towards a random direction orthogonal to "
        "B's columns, norms kept (target rows: all). Out of reach: the whole direction moved "
        "(t = 1) is weaker than the strength asked. Detected = the verdict warns or fails "
        "citing a relevant rule; flagged = a relevant rule fires at any severity (AS508 is "
        "low: it never moves the verdict). Median scan of an unplanted adapter in-process: "
        f"{statistics.median(times) * 1000:.0f} ms (max {max(times) * 1000:.0f} ms).")
    return BenchTable("Planted payloads in real adapters: detection against strength",
                      HEADERS, tuple(rows), notes)
