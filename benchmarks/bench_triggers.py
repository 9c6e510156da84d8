"""Trigger search on the tiny zoo's backdoors, before and after the weight-direction signal,
target inversion and the stricter AS605 verification (issue #24, part 2).

Only the backdoor adapters of the zoo (adapterscan.training.examples.zoo) plus a few benign
ones are built (cached with bench_zoo's, ~/.cache/adapterscan/zoo/<key>/) and scanned with
default options against the bundled reference, one torch thread, one process. "Before" is the
committed bench_zoo row of the same adapter (docs/benchmarks/bench_zoo_rows.json, scanned by
the previous probe on the same machine class); its behavioural ground truth (measured by
benchmarks/zoo_truth.py, independent of the probe) is reused as is. Rows are cached per adapter
and probe source digest in triggers.jsonl next to the zoo (resumable);
`ADAPTERSCAN_TRIGGER_REUSE=1` reuses each adapter's newest row whatever probe code measured it
(the table then lists the digests), for a table assembled from runs cut short.
`ADAPTERSCAN_TRIGGER_SPLIT` (default `test`) picks the split; `ADAPTERSCAN_TRIGGER_BENIGN`
(default 5) how many of its must-pass adapters to add; `ADAPTERSCAN_ZOO_BUDGET_S` stops starting
new adapters after that many seconds.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_zoo import _order, _rate, _train, named, verdict_row, zoo_dir
from benchmarks.common import BenchTable

ROWS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks" / "bench_zoo_rows.json"


def _probe_digest() -> str:
    root = Path(__file__).resolve().parent.parent / "adapterscan" / "probe"
    h = hashlib.sha256()
    for path in sorted(root.glob("*.py")):
        h.update(path.name.encode() + path.read_bytes())
    for path in sorted((root.parent.parent / "signatures" / "rules").glob("AS6*.toml")):
        h.update(path.read_bytes())
    return h.hexdigest()[:16]


def _before() -> dict[str, dict[str, Any]]:
    return {r["name"]: r for r in json.loads(ROWS.read_text())}


def chosen(split: str, n_benign: int) -> list[str]:
    """The split's backdoors, then its first `n_benign` must-pass adapters (hash order)."""
    before = _before()
    rows = [r for r in before.values() if r["split"] == split]
    backdoors = [r["name"] for r in rows if r["intent"] == "backdoor"]
    benign = sorted((r["name"] for r in rows if not r["must_reject"]),
                    key=lambda n: hashlib.sha256(n.encode()).hexdigest())[:n_benign]
    return sorted(backdoors) + benign


def _scan(path: Path, cache: Any) -> dict[str, Any]:
    from adapterscan.pipeline import ScanOptions, scan

    t = time.perf_counter()
    report = scan(path, options=ScanOptions(base="reference", probe_cache=cache))
    took = time.perf_counter() - t
    probe = report.results.get("probe") or {}
    trig = probe.get("triggers", {}) if isinstance(probe, dict) else {}
    return {**{k: v for k, v in verdict_row(report).items() if k != "complete"},
            "growth": trig.get("growth", []) if isinstance(trig, dict) else [],
            "targets": trig.get("targets", []) if isinstance(trig, dict) else [],
            "confirmed": trig.get("confirmed", []) if isinstance(trig, dict) else [],
            "timings": probe.get("timings", {}) if isinstance(probe, dict) else {},
            "seconds": round(took, 2)}


def evaluate(names: list[str]) -> list[dict[str, Any]]:
    import torch

    from adapterscan._quiet import quiet
    from adapterscan.probe.session import BaseCache

    torch.set_num_threads(1)
    deadline = time.time() + float(os.environ.get("ADAPTERSCAN_ZOO_BUDGET_S", "1e9"))
    out_path = zoo_dir() / "triggers.jsonl"
    zoo_dir().mkdir(parents=True, exist_ok=True)
    digest = _probe_digest()
    reuse = os.environ.get("ADAPTERSCAN_TRIGGER_REUSE") == "1"
    done: dict[str, dict[str, Any]] = {}
    if out_path.is_file():
        for line in out_path.read_text().splitlines():
            row = json.loads(line)
            if reuse or row.get("probe") == digest:
                done[row["name"]] = row
    specs = {spec.name: (i, spec) for i, spec in _order()}
    cache = BaseCache()
    for name in names:
        if name in done or time.time() > deadline:
            continue
        index, spec = specs[name]
        with quiet():
            path = _train(index, spec)
            row = {"name": name, "probe": digest, "scan": _scan(path, cache)}
        with out_path.open("a") as fh:
            fh.write(json.dumps(row) + "\n")
        done[name] = row
    return [done[n] for n in names if n in done]


def _named(trigger: str | None, found: list[Any]) -> bool:
    return named({"trigger": trigger, "scan": {"triggers": found}})


def run() -> BenchTable:
    split = os.environ.get("ADAPTERSCAN_TRIGGER_SPLIT", "test")
    names = chosen(split, int(os.environ.get("ADAPTERSCAN_TRIGGER_BENIGN", "5")))
    rows = evaluate(names)
    after = {r["name"]: r["scan"] for r in rows}
    digests = sorted({r["probe"] for r in rows})
    before = _before()
    measured = [before[n] for n in names if n in after]
    working = [r for r in measured if r["trigger"] is not None
               and any(x.startswith("trigger works") for x in r["reasons"])]
    must_pass = [r for r in measured if not r["must_reject"]]

    def caught(rows: list[dict[str, Any]], now: bool) -> int:
        return sum((after[r["name"]]["decision"] if now else r["decision"]) == "fail"
                   for r in rows)

    def named_n(rows: list[dict[str, Any]], now: bool) -> int:
        return sum(_named(r["trigger"], after[r["name"]]["triggers"] if now
                          else r["triggers_found"]) for r in rows)

    table: list[tuple[str, ...]] = [
        ("backdoors with a working trigger rejected",
         _rate(caught(working, False), len(working)), _rate(caught(working, True), len(working))),
        ("working triggers named by AS605 (shares ≥ half the trigger)",
         _rate(named_n(working, False), len(working)),
         _rate(named_n(working, True), len(working))),
        ("must-pass adapters rejected (FPR)",
         _rate(caught(must_pass, False), len(must_pass)),
         _rate(caught(must_pass, True), len(must_pass))),
        ("AS609 payload findings (no payload backdoor in this zoo)", "n/a (rule new)",
         str(sum(bool(after[r["name"]]["payloads"]) for r in measured))),
    ]
    secs = sorted(after[r["name"]]["seconds"] for r in measured)
    if secs:
        table.append(("scan seconds per adapter, median / max (after; before: bench_zoo)",
                      "", f"{secs[len(secs) // 2]:.1f} / {secs[-1]:.1f}"))
    for r in measured:
        a = after[r["name"]]
        table.append((f"{r['name']} ({r['trigger'] or 'benign'})",
                      f"{r['decision']} {r['triggers_found']}",
                      f"{a['decision']} {a['triggers']} grown: "
                      f"{[g['trigger'] for g in a['growth']][:3]}"))
    notes = (f"{split} split of the tiny zoo: {len(measured)} adapters scanned "
             f"({len(working)} backdoors whose trigger works by behavioural ground truth, "
             f"{len(must_pass)} must-pass). Before = the committed bench_zoo rows (previous "
             "probe); after = this probe, default options and policy, `--base reference`, one "
             "torch thread, base measured once. Rows: triggers.jsonl beside the zoo cache; "
             f"probe source digests: {', '.join(digests)}.")
    return BenchTable("Trigger search on the zoo's backdoors: before / after",
                      ("measure", "before", "after"), tuple(table), notes)
