"""Adapters other people trained and published (issue 23): every folder of the real-adapter corpus
scanned the way a user scans it, one whole `python -m adapterscan scan DIR --format json` process
each, split into fit and check halves by the sha256 of the folder name (a stable split: the
check half is what a rule fitted on the fit half has not seen).

Per half: how many adapters pass, warn, fail or end incomplete; tracebacks (stderr); which rules
fire at low or above, with the number of adapters each fires in; median and max seconds per
adapter (whole process); per rule that warns or fails, how many adapters of each half it fired
on (its false-alarm rate on the check half: the adapters are presumed benign); the largest value
the in-adapter comparisons' statistics reach on each half (benchmarks/real_margins.py). Then one
row per adapter. Targets (issue 23): check half failed <= 1%
(each remaining failure a true defect of the file, named), warned <= 5%, incomplete only with a
named unsupported feature, 0 tracebacks.

Environment: ADAPTERSCAN_REAL_ADAPTERS (default /work/shared/data/real-adapters),
BENCH_REAL_WORKERS (default 1; processes in parallel).
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from adapterscan.exit_codes import ExitCode
from benchmarks.common import REAL_ADAPTERS as CORPUS
from benchmarks.common import BenchTable, corpus_missing, half_of, real_adapter_folders
from benchmarks.real_margins import HEADERS as MARGIN_HEADERS
from benchmarks.real_margins import margin_rows

WORKERS = int(os.environ.get("BENCH_REAL_WORKERS", "1"))
ROOT = Path(__file__).resolve().parent.parent
SHOWN = ("low", "medium", "high", "critical")
TIMEOUT_S = 600


@dataclass(frozen=True)
class Row:
    folder: str
    half: str
    decision: str  # pass / warn / fail / incomplete / error (no report)
    exit_code: int
    seconds: float
    traceback: bool
    rules: tuple[str, ...]  # "AS314:high", each rule once, severity low and above
    reasons: str


def scan_one(folder: Path) -> Row:
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "adapterscan", "scan", str(folder),
                           "--format", "json"], capture_output=True, timeout=TIMEOUT_S,
                          cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)})
    seconds = time.perf_counter() - t0
    err = proc.stderr.decode("utf-8", "replace")
    try:
        doc = json.loads(proc.stdout)
    except ValueError:
        return Row(folder.name, half_of(folder.name), "error", proc.returncode, seconds,
                   "Traceback" in err, (), err.strip().splitlines()[-1][:160] if err else "")
    verdict = doc.get("verdict", {})
    decision = str(verdict.get("decision", "?"))
    if proc.returncode == ExitCode.INCOMPLETE or doc.get("complete") is False:
        decision = "incomplete" if decision != "fail" else decision
    worst: dict[str, str] = {}
    for f in doc.get("findings", []):
        sev = f.get("severity")
        if sev in SHOWN and SHOWN.index(sev) >= SHOWN.index(worst.get(f["rule_id"], "low")):
            worst[f["rule_id"]] = sev
    reasons = "; ".join(str(r) for r in verdict.get("reasons", []))
    return Row(folder.name, half_of(folder.name), decision, proc.returncode, seconds,
               "Traceback" in err, tuple(f"{k}:{v}" for k, v in sorted(worst.items())),
               reasons)


def scan_all(folders: list[Path]) -> list[Row]:
    with ThreadPoolExecutor(max_workers=max(1, WORKERS)) as pool:
        return list(pool.map(scan_one, folders))


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


SUMMARY_HEADERS = ("half", "adapters", "pass", "warn", "fail", "incomplete", "error",
                   "tracebacks", "median s", "max s", "rules firing (low and above: adapters)")
ROW_HEADERS = ("half", "folder", "decision", "exit", "seconds", "traceback",
               "rules (worst severity, low and above)", "verdict reasons")


def summary(rows: list[Row]) -> tuple[tuple[str, ...], ...]:
    out: list[tuple[str, ...]] = []
    for half in ("fit", "check", "all"):
        sel = [r for r in rows if half in ("all", r.half)]
        if not sel:
            continue
        counts = Counter(r.decision for r in sel)
        fired = Counter(rule for r in sel for rule in r.rules)
        secs = [r.seconds for r in sel]
        n = len(sel)
        out.append((
            half, str(n),
            *(f"{counts[d]} ({100 * counts[d] / n:.0f}%)"
              for d in ("pass", "warn", "fail", "incomplete", "error")),
            str(sum(r.traceback for r in sel)), f"{statistics.median(secs):.2f}",
            f"{max(secs):.2f}",
            ", ".join(f"{k} {v}" for k, v in sorted(fired.items())) or "-"))
    return tuple(out)


def per_adapter(rows: list[Row]) -> str:
    lines = ["| " + " | ".join(ROW_HEADERS) + " |",
             "| " + " | ".join("---" for _ in ROW_HEADERS) + " |"]
    for r in sorted(rows, key=lambda r: (r.half, r.folder)):
        lines.append("| " + " | ".join((
            r.half, f"`{r.folder}`", r.decision, str(r.exit_code), f"{r.seconds:.2f}",
            "yes" if r.traceback else "no", ", ".join(r.rules) or "-",
            _cell(r.reasons if r.decision != "pass" else ""))) + " |")
    return "\n".join(lines)


WARN_OR_FAIL = ("medium", "high", "critical")


def false_alarms(rows: list[Row]) -> str:
    """Per rule that fired at medium or above (a severity that warns or fails the verdict): in
    how many adapters of each half, and its false-alarm rate on the check half. Every adapter
    is presumed benign, so each firing is a false alarm unless the row names a true defect."""
    n = {h: sum(r.half == h for r in rows) for h in ("fit", "check")}
    fired: dict[str, Counter[str]] = {}
    worst: dict[str, str] = {}
    for r in rows:
        for item in r.rules:
            rule, sev = item.split(":")
            if sev in WARN_OR_FAIL:
                fired.setdefault(rule, Counter())[r.half] += 1
                if WARN_OR_FAIL.index(sev) >= WARN_OR_FAIL.index(worst.get(rule, "medium")):
                    worst[rule] = sev
    if not fired:
        return (f"No rule fired at medium or above on any adapter: every rule that warns or "
                f"fails has a false-alarm rate of 0/{n['check']} (0%) on the check half "
                f"(0/{n['fit']} on the fit half).")
    lines = ["| rule | worst severity | fit: adapters | check: adapters (false-alarm rate) |",
             "| --- | --- | --- | --- |"]
    for rule in sorted(fired):
        c = fired[rule]
        rate = 100 * c["check"] / n["check"] if n["check"] else 0.0
        lines.append(f"| {rule} | {worst[rule]} | {c['fit']}/{n['fit']} | "
                     f"{c['check']}/{n['check']} ({rate:.0f}%) |")
    return ("Rules that warn or fail, per half (every other such rule fired on no adapter: "
            f"0/{n['check']} on the check half):\n\n" + "\n".join(lines))


def margins_table(folders: list[Path]) -> str:
    rows = margin_rows(folders)
    lines = ["| " + " | ".join(MARGIN_HEADERS) + " |",
             "| " + " | ".join("---" for _ in MARGIN_HEADERS) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return ("How close honest adapters come to the in-adapter comparisons (thresholds set from "
            "the fit half; the check half had no say), in-process statistics of the adapters "
            "with safetensors weights:\n\n" + "\n".join(lines))


def run() -> BenchTable:
    if not CORPUS.is_dir():
        return corpus_missing("Real adapters (issue 23)")
    folders = real_adapter_folders()
    load_before = os.getloadavg()[0]
    rows = scan_all(folders)
    load = max(load_before, os.getloadavg()[0])
    notes = (f"Split by sha256 of the folder name (first byte < 128: fit; `benchmarks/common.py` "
             f"half_of); whole `adapterscan scan` processes, {WORKERS} at a time; corpus: "
             f"{len(rows)} folders of {CORPUS.name}; 1-minute load average up to {load:.1f} on "
             f"{os.cpu_count()} CPUs (other work on the machine inflates the seconds). "
             "Targets (issue 23), check half: failed <= 1%, warned <= 5%, incomplete only "
             "with a named unsupported feature, 0 tracebacks.\n\n" + false_alarms(rows)
             + "\n\n" + margins_table(folders)
             + "\n\nOne row per adapter:\n\n" + per_adapter(rows))
    return BenchTable("Real adapters (issue 23): adapters other people published",
                      SUMMARY_HEADERS, summary(rows), notes)


if __name__ == "__main__":
    print(run().markdown())
