"""Detection of payloads planted into real adapters (benchmarks/payloads.py), over strengths.

Adapters: every folder under /work/shared/data/real-adapters (env ADAPTERSCAN_REAL_ADAPTERS
overrides) with a safetensors LoRA file holding a live (non-zero) pair. For each payload and
strength each adapter gets one planted copy, scanned in-process like `adapterscan scan FOLDER`.
Detected: the verdict warns or fails and one of its reasons is a rule relevant to the payload.
Flagged: a relevant rule fires at all (low-severity rules such as AS508 never move the verdict).
The unplanted adapters are scanned too: a relevant rule firing there is a false alarm.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from pathlib import Path

from adapterscan.pipeline import scan
from benchmarks.common import REAL_ADAPTERS, BenchTable, corpus_missing, real_adapter_folders
from benchmarks.payloads import StFile, live_pairs, plant, weights_file

RELEVANT: dict[str, frozenset[str]] = {
    "scale": frozenset({"AS508", "AS509", "AS518"}),
    "rows": frozenset({"AS517"}),
    "rotate": frozenset({"AS508", "AS509", "AS510", "AS517", "AS518"}),
    "nan": frozenset({"AS501"}),
    "overflow": frozenset({"AS501", "AS508"}),
    "rank": frozenset({"AS504", "AS320", "AS508", "AS517"}),
}
GRID: dict[str, tuple[float, ...]] = {
    "scale": (2.0, 4.0, 8.0, 16.0, 64.0, 256.0),
    "rows": (0.1, 0.25, 0.5, 0.75, 1.0),
    "rotate": (0.5, 1.0),
    "nan": (0.0, 1.0),
    "overflow": (20.0, 36.0, 42.0),
    "rank": (2.0, 4.0),
}
STRENGTH = {"scale": "×{:g} B", "rows": "t = {:g}", "rotate": "t = {:g}",
            "nan": "fraction {:g} of A", "overflow": "B × 10^{:g}", "rank": "r × {:g}"}


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


def run() -> BenchTable:
    if not REAL_ADAPTERS.is_dir():
        return corpus_missing("Planted payloads in real adapters")
    adapters = real_adapters()
    rows: list[tuple[str, ...]] = []
    times: list[float] = []
    base_alarms = {p: 0 for p in GRID}
    for folder in adapters:
        t0 = time.perf_counter()
        doc = scan(folder).to_dict()
        times.append(time.perf_counter() - t0)
        fired = {f["rule_id"] for f in doc["findings"]}
        for p, rel in RELEVANT.items():
            base_alarms[p] += bool(fired & rel)
    n = len(adapters)
    with tempfile.TemporaryDirectory() as tmp:
        for payload, grid in GRID.items():
            rows.append((payload, "none (unplanted)", str(n), "–",
                         f"{base_alarms[payload]}/{n}", ", ".join(sorted(RELEVANT[payload]))))
            for strength in grid:
                detected = flagged = 0
                for k, folder in enumerate(adapters):
                    dst = Path(tmp) / f"{payload}-{strength:g}-{k}"
                    plant(folder, dst, payload, strength, seed=k)
                    d, f = _outcome(dst, RELEVANT[payload])
                    detected += d
                    flagged += f
                rows.append((payload, STRENGTH[payload].format(strength), str(n),
                             f"{detected}/{n} ({detected / n:.0%})",
                             f"{flagged}/{n} ({flagged / n:.0%})",
                             ", ".join(sorted(RELEVANT[payload]))))
    notes = (f"{n} real adapters with a live safetensors LoRA pair (of the folders under the "
             "real-adapter corpus; pickle-only and all-zero adapters cannot carry these "
             "payloads). Payloads go into the mid-depth live module (natural name order), "
             "except rank inflation (every module, config r and lora_alpha raised with it). "
             "`rows` moves the module's strongest LoRA direction (fraction t of it) into 4 "
             "output rows with ‖b_j‖ and ‖ΔW‖_F kept; `rotate` turns it towards a random "
             "direction orthogonal to B's columns, norms kept. Detected = the verdict warns or "
             "fails citing a relevant rule; flagged = a relevant rule fires at any severity "
             "(AS508 is low: it never moves the verdict; AS518 warns). Where flagged exceeds "
             "detected for a rule that warns, the unplanted adapter already fails on another "
             "rule and a failed verdict cites only its failing reasons. Median scan of an "
             f"unplanted adapter in-process: {statistics.median(times) * 1000:.0f} ms (max "
             f"{max(times) * 1000:.0f} ms).")
    return BenchTable("Planted payloads in real adapters: detection against strength",
                      ("payload", "strength", "adapters", "detected (verdict)",
                       "flagged (rule fires)", "relevant rules"), tuple(rows), notes)
