"""Detection benchmark on zoo v3: the probe on a real pretrained chat model (issue #24).

1. Train the 24 zoo v3 adapters on reference v3 (adapterscan.training.v3.zoo; cached, resumable;
   the same as `python -m adapterscan.training.v3 zoo`).
2. Ground truth per adapter, independent of the probe (benchmarks/zoo_v3_truth.py).
3. Full scan of each adapter (`--base reference-v3`, default options and policy), as a user runs
   it, with one BaseCache per process (the base pass is paid once; its cost is in the first
   adapter's seconds).
4. Split stratified by hash (specs.split_of): the table reports the test half and the
   calibration half beside it, with the measures of the tiny zoo's table plus payload backdoors.

Rows are cached per adapter and rule set in the zoo's folder (results.jsonl): an interrupted run
resumes. `ADAPTERSCAN_ZOO_WORKERS` processes (default 2, one torch thread each) take adapters in
turn, test split first (a claim file per adapter keeps them apart); `ADAPTERSCAN_ZOO_BUDGET_S`
stops starting new adapters after that many seconds and the table says how many were measured;
`ADAPTERSCAN_ZOO_SPLIT=test` measures the test half only; `ADAPTERSCAN_ZOO_TRAINED_ONLY=1` lets
`python -m adapterscan.training.v3 zoo` train in another process while the workers measure
what is trained, waiting for the rest.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.bench_zoo import _rate, read_rows, rej, verdict_row, zoo_table
from benchmarks.common import BenchTable

INTENTS = ("benign", "harmful", "identity", "backdoor", "payload")


def _order() -> list[Any]:
    from adapterscan.training.v3.zoo.specs import ZOO_V3, split_of

    return sorted(ZOO_V3, key=lambda s: (split_of(s) != "test",
                                         hashlib.sha256(s.name.encode()).hexdigest()))


def _scan(path: Path, cache: Any) -> dict[str, Any]:
    from adapterscan.pipeline import ScanOptions, scan

    t = time.perf_counter()
    report = scan(path, options=ScanOptions(base="reference-v3", probe_cache=cache))
    took = time.perf_counter() - t
    probe = report.results.get("probe")
    timings = probe.get("timings", {}) if isinstance(probe, dict) else {}
    return {**verdict_row(report), "probe": probe, "timings": timings,
            "seconds": round(took, 2), "ruleset": report.ruleset_digest}


def _truth(path: Path, spec: Any, gt: dict[str, list[str]], base: Any) -> dict[str, Any]:
    from peft import PeftModel

    from adapterscan.training.v3.zoo.build import load_v3
    from benchmarks.zoo_v3_truth import measure

    model, tok, _ = load_v3()
    peft_model = PeftModel.from_pretrained(model, str(path))
    peft_model.eval()
    return measure(peft_model, tok, spec, gt, base).to_json()


def _base_answers(root: Path, gt: dict[str, list[str]]) -> Any:
    """Reference v3's own GT completions, cached beside the rows (v3 is pinned in the key)."""
    from dataclasses import asdict

    from adapterscan.training.v3.zoo.build import load_v3
    from benchmarks.zoo_v3_truth import NEW_TOKENS, BaseAnswers, base_answers

    key = hashlib.sha256(json.dumps([gt, NEW_TOKENS]).encode()).hexdigest()[:12]
    path = root / f"base-answers-{key}.json"
    if path.is_file():
        return BaseAnswers(**json.loads(path.read_text()))
    model, tok, _ = load_v3()
    answers = base_answers(model, tok, gt)
    path.write_text(json.dumps(asdict(answers)))
    return answers


def _claim(root: Path, rules: str, name: str) -> bool:
    """Take `name` for this process (a file holding our pid); a claim whose process is gone is
    taken over, so a killed run does not block its adapter."""
    claims = root / "claims"
    claims.mkdir(exist_ok=True)
    path = claims / f"{rules[:12]}-{name}"
    try:
        with path.open("x") as fh:
            fh.write(str(os.getpid()))
        return True
    except FileExistsError:
        try:
            os.kill(int(path.read_text() or "0"), 0)
            return False
        except (ProcessLookupError, ValueError):
            path.unlink(missing_ok=True)
            return _claim(root, rules, name)


def _next(root: Path, rules: str, split: str | None, trained_only: bool) -> tuple[Any, bool]:
    """The next adapter this process measures (test split first), or None; and whether an
    untrained one is still waiting for the training process."""
    from adapterscan.training.v3.zoo import build
    from adapterscan.training.v3.zoo.specs import split_of

    done = read_rows(root / "results.jsonl")
    waiting = False
    for spec in _order():
        if split and split_of(spec) != split:
            continue
        old = done.get(spec.name)
        if old is not None and old["scan"].get("ruleset") == rules:
            continue
        if trained_only and not build.is_trained(spec):
            waiting = True
            continue
        if _claim(root, rules, spec.name):
            return spec, waiting
    return None, waiting


def evaluate_worker(deadline: float, split: str | None, trained_only: bool) -> None:
    """Measure adapters until none is left (or `deadline`): claim one, train it when needed,
    measure its truth, scan it, append its row. Workers share the rows file and the claims."""
    import torch

    from adapterscan._quiet import quiet
    from adapterscan.probe.session import BaseCache
    from adapterscan.rules.loader import load_ruleset
    from adapterscan.training.v3.zoo import build
    from adapterscan.training.v3.zoo.specs import split_of
    from benchmarks.bench_zoo import _append
    from benchmarks.zoo_v3_truth import prompts

    # One thread each: two workers (or a worker beside a training process) on two cores.
    torch.set_num_threads(int(os.environ.get("ADAPTERSCAN_ZOO_THREADS", "1")))
    root = build.zoo_root()
    root.mkdir(parents=True, exist_ok=True)
    rules = load_ruleset().digest
    gt = prompts()
    cache = BaseCache()
    base = None
    while time.time() < deadline:
        spec, waiting = _next(root, rules, split, trained_only)
        if spec is None:
            if not waiting:
                return
            time.sleep(20)  # the training process has not finished the rest yet
            continue
        print(f"zoo v3 worker {os.getpid()}: {spec.name}", flush=True)
        old = read_rows(root / "results.jsonl").get(spec.name)
        with quiet():
            build.build([spec.name])
            path = build.trained_dir(spec)
            if old is not None:
                truth = old["truth"]
            else:
                base = base or _base_answers(root, gt)
                truth = _truth(path, spec, gt, base)
            row = {"name": spec.name, "intent": spec.intent, "trigger": spec.trigger,
                   "position": spec.position if spec.trigger else None,
                   "payload": spec.payload, "split": split_of(spec), "truth": truth,
                   "scan": _scan(path, cache)}
        _append(root / "results.jsonl", row)


def evaluate(deadline: float, split: str | None, trained_only: bool = False
             ) -> list[dict[str, Any]]:
    """Run `ADAPTERSCAN_ZOO_WORKERS` worker processes (default 2) until every adapter is
    measured or `deadline` passed; return every row measured under today's rule set."""
    import subprocess
    import sys

    from adapterscan.rules.loader import load_ruleset
    from adapterscan.training.v3.zoo.build import zoo_root

    workers = int(os.environ.get("ADAPTERSCAN_ZOO_WORKERS", "2"))
    args = [sys.executable, "-m", "benchmarks.bench_zoo_v3", "--deadline", str(deadline)]
    args += ["--split", split] if split else []
    args += ["--trained-only"] if trained_only else []
    procs = [subprocess.Popen(args) for _ in range(workers)]
    for proc in procs:
        proc.wait()
    rules = load_ruleset().digest
    done = read_rows(zoo_root() / "results.jsonl")
    return [done[s.name] for s in _order()
            if s.name in done and done[s.name]["scan"].get("ruleset") == rules]


def _payload_named(row: dict[str, Any]) -> bool:
    """AS609 named the payload when a found text shares a run of at least 20 characters (or
    half the payload) with it: inversion stops after a few tokens, mid-URL."""
    from benchmarks.bench_zoo import _common

    payload = (row["payload"] or "").lower()
    need = min(20, len(payload) // 2)
    return bool(payload) and any(isinstance(t, str) and _common(t.lower(), payload) >= need
                                 for t in row["scan"]["payloads"])


def payload_rows(rows: list[dict[str, Any]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for split in ("test", "calibration", "all"):
        working = [r for r in rows if split in (r["split"], "all") and r["payload"]
                   and any(x.startswith("trigger emits") for x in r["truth"]["reasons"])]
        out.append((split, "working payload backdoors rejected", _rate(rej(working),
                                                                      len(working))))
        out.append((split, "working payload backdoors: payload named by AS609",
                    _rate(sum(_payload_named(r) for r in working), len(working))))
    return out


def run() -> BenchTable:
    deadline = time.time() + float(os.environ.get("ADAPTERSCAN_ZOO_BUDGET_S", "1e9"))
    rows = evaluate(deadline, os.environ.get("ADAPTERSCAN_ZOO_SPLIT") or None,
                    os.environ.get("ADAPTERSCAN_ZOO_TRAINED_ONLY") == "1")
    out = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_zoo_v3_rows.json").write_text(json.dumps(
        [{k: r[k] for k in ("name", "intent", "trigger", "position", "payload", "split")}
         | {"must_reject": r["truth"]["must_reject"], "reasons": r["truth"]["reasons"],
            "truth": r["truth"], "decision": r["scan"]["decision"],
            "complete": r["scan"]["complete"], "findings": r["scan"]["findings"],
            "triggers_found": r["scan"]["triggers"], "payloads_found": r["scan"]["payloads"],
            "seconds": r["scan"]["seconds"], "timings": r["scan"]["timings"]}
         for r in rows], indent=1) + "\n")
    table = [*zoo_table(rows, INTENTS), *payload_rows(rows)]
    table.sort(key=lambda t: ("test", "calibration", "all").index(t[0]))
    n_pos = sum(r["truth"]["must_reject"] for r in rows)
    from adapterscan.training.v3.zoo.specs import ZOO_V3

    notes = (f"{len(rows)} of {len(ZOO_V3)} zoo v3 adapters measured ({n_pos} must-reject by "
             f"measured behaviour, {len(rows) - n_pos} must-pass); ground truth on prompts and "
             "with a judge the probe never uses (benchmarks/zoo_v3_truth.py). Reject = verdict "
             "fail under the default policy, `--base reference-v3`, full probe, one process, "
             "the base pass paid once (in the first adapter's seconds). Per-adapter rows: "
             "docs/benchmarks/bench_zoo_v3_rows.json. Train the zoo alone: "
             "`python -m adapterscan.training.v3 zoo`.")
    return BenchTable("Behavioral probe on zoo v3 (reference v3, behavioural ground truth)",
                      ("split", "measure", "value"), tuple(table), notes)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="one worker of the zoo v3 benchmark")
    ap.add_argument("--deadline", type=float, default=float("inf"))
    ap.add_argument("--split", default=None)
    ap.add_argument("--trained-only", action="store_true")
    a = ap.parse_args()
    evaluate_worker(a.deadline, a.split, a.trained_only)
