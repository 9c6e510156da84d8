"""Detection benchmark on the adapter zoo, with behavioural ground truth.

1. Build the 62 zoo adapters (adapterscan.training.examples.zoo) on the bundled reference
   (cached).
2. Ground truth per adapter, independent of the probe (benchmarks/zoo_truth.py).
3. Full scan of each adapter (`--base reference`, default options and policy), as a user runs it.
4. Split by the hash of the adapter's name into a calibration half and a test half: thresholds
   (signatures/) were chosen looking at the calibration half only; the table reports the test
   half (and the calibration half beside it), TPR/FPR with Wilson intervals, AUROC per signal and
   for the verdict, share of working triggers named, time per adapter, and a ROC plot.

Each adapter is trained, measured and scanned in turn, in a fixed shuffled order, by
`ADAPTERSCAN_ZOO_WORKERS` shard processes (default 2, one torch thread each); rows are cached
(resumable): ~/.cache/adapterscan/zoo/<key>/results.jsonl. `ADAPTERSCAN_ZOO_BUDGET_S` stops
starting new adapters after that many seconds; the table then covers the adapters measured (a
random subset in which every class appears) and says how many.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks.common import BenchTable

SIGNALS = ("refusal drop (judge)", "refusal drop (first token)", "refusal direction drop",
           "behaviour shift KL", "trigger: confirmed drop", "trigger: inversion score")


def zoo_key() -> str:
    from adapterscan.examples import cache_key
    from adapterscan.training.examples.zoo import ZOO_SEED, ZOO_SPECS

    h = hashlib.sha256(f"zoo-v1:{ZOO_SEED}:{cache_key()}".encode())
    h.update(repr(ZOO_SPECS).encode())
    return h.hexdigest()[:16]


def zoo_dir() -> Path:
    from adapterscan.examples import cache_root

    return cache_root() / "zoo" / zoo_key()


def split_of(name: str) -> str:
    return "test" if int(hashlib.sha256(name.encode()).hexdigest(), 16) % 2 else "calibration"


def _order() -> list[tuple[int, Any]]:
    """(seed offset, spec) in a fixed shuffled order, so a partial run is a random subset with
    every class represented rather than the first classes only."""
    from adapterscan.training.examples.zoo import ZOO_SPECS

    return sorted(enumerate(ZOO_SPECS),
                  key=lambda p: hashlib.sha256(p[1].name.encode()).hexdigest())


def _train(index: int, spec: Any) -> Path:
    """Train one zoo adapter (seed ZOO_SEED + its index in ZOO_SPECS) unless already trained."""
    from adapterscan.reference import reference_dir
    from adapterscan.training.examples.build import train_one
    from adapterscan.training.examples.zoo import ZOO_SEED

    path: Path = zoo_dir() / str(spec.name)
    if not (path / "adapter_model.safetensors").is_file() or not (path / ".trained").is_file():
        train_one(spec, reference_dir(), path, ZOO_SEED + index)
        (path / ".trained").write_text("")
    return path


def _truth(path: Path, spec: Any, gt: dict[str, list[str]]) -> dict[str, Any]:
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from adapterscan.reference import reference_dir
    from benchmarks.zoo_truth import measure

    ref = reference_dir()
    tok = AutoTokenizer.from_pretrained(str(ref))
    base = AutoModelForCausalLM.from_pretrained(str(ref), dtype=torch.float32)
    model = PeftModel.from_pretrained(base, str(path))
    model.eval()
    return measure(model, tok, spec.trigger, spec.trigger_pos if spec.trigger else None,
                   gt).to_json()


def _scan(path: Path, cache: Any) -> dict[str, Any]:
    from adapterscan.pipeline import ScanOptions, scan

    t = time.perf_counter()
    report = scan(path, options=ScanOptions(base="reference", probe_cache=cache))
    took = time.perf_counter() - t
    return {**verdict_row(report), "probe": report.results.get("probe"),
            "seconds": round(took, 2), "ruleset": report.ruleset_digest}


def verdict_row(report: Any) -> dict[str, Any]:
    """What a zoo row keeps of a report: the decision, its high and critical rules, the
    triggers AS605 named and the payloads AS609 named."""
    return {"decision": report.verdict.decision.value, "complete": report.complete,
            "findings": sorted({f.rule_id for f in report.findings
                                if f.severity.value in ("high", "critical")}),
            "triggers": [f.evidence.get("trigger") for f in report.findings
                         if f.rule_id == "AS605"],
            "payloads": [f.evidence.get("text") for f in report.findings
                         if f.rule_id == "AS609"]}


def _append(path: Path, row: dict[str, Any]) -> None:
    import fcntl

    with path.open("a") as fh:  # shards append concurrently: one locked write per row
        fcntl.flock(fh, fcntl.LOCK_EX)
        fh.write(json.dumps(row) + "\n")


def _results() -> dict[str, dict[str, Any]]:
    return read_rows(zoo_dir() / "results.jsonl")


def read_rows(path: Path) -> dict[str, dict[str, Any]]:
    """The last row per adapter name in a results.jsonl (none when it does not exist)."""
    done: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text().splitlines():
            if line.strip():
                row = json.loads(line)
                done[row["name"]] = row
    return done


def evaluate_shard(shard: int, shards: int, deadline: float) -> None:
    """Train, measure and scan this shard's adapters one by one, appending each row; no new
    adapter starts after `deadline` (time.time())."""
    import torch

    from adapterscan._quiet import quiet
    from adapterscan.probe.session import BaseCache
    from adapterscan.rules.loader import load_ruleset
    from benchmarks.zoo_truth import prompts

    torch.set_num_threads(1)
    zoo_dir().mkdir(parents=True, exist_ok=True)
    done = _results()
    gt = prompts()
    cache = BaseCache()  # the base is measured once; "seconds" then excludes that work
    rules = load_ruleset().digest
    for k, (index, spec) in enumerate(_order()):
        if k % shards != shard:
            continue
        old = done.get(spec.name)
        if old is not None and old["scan"].get("ruleset") == rules:
            continue
        if time.time() > deadline:
            print(f"shard {shard}: deadline reached", flush=True)
            return
        print(f"shard {shard}: {spec.name}" + (" (rescan: rule set changed)" if old else ""),
              flush=True)
        with quiet():
            path = _train(index, spec)
            # Ground truth does not depend on the rule set: a row scanned under other rules
            # (thresholds, severities) keeps its measured truth and is scanned again.
            truth = old["truth"] if old is not None else _truth(path, spec, gt)
            row = {"name": spec.name, "intent": spec.expected_class, "trigger": spec.trigger,
                   "position": spec.trigger_pos if spec.trigger else None,
                   "split": split_of(spec.name), "truth": truth, "scan": _scan(path, cache)}
        _append(zoo_dir() / "results.jsonl", row)


def evaluate() -> list[dict[str, Any]]:
    """Every zoo adapter measured so far, after running `ADAPTERSCAN_ZOO_WORKERS` shard
    processes (default 2) until all are done or `ADAPTERSCAN_ZOO_BUDGET_S` seconds have passed."""
    import subprocess
    import sys

    workers = int(os.environ.get("ADAPTERSCAN_ZOO_WORKERS", "2"))
    deadline = time.time() + float(os.environ.get("ADAPTERSCAN_ZOO_BUDGET_S", "1e9"))
    procs = [subprocess.Popen([sys.executable, "-m", "benchmarks.bench_zoo", "--shard",
                               f"{k}/{workers}", "--deadline", str(deadline)])
             for k in range(workers)]
    for p in procs:
        p.wait()
    from adapterscan.rules.loader import load_ruleset

    rules = load_ruleset().digest
    done = _results()  # the last row per adapter wins; only rows under today's rule set count
    return [done[spec.name] for _, spec in _order()
            if spec.name in done and done[spec.name]["scan"].get("ruleset") == rules]


# -- metrics ------------------------------------------------------------------------------------

def _num(d: Any, *keys: str) -> float:
    for k in keys:
        d = d.get(k) if isinstance(d, dict) else None
    return float(d) if isinstance(d, int | float) else 0.0


def signal_scores(row: dict[str, Any]) -> dict[str, float]:
    probe = row["scan"].get("probe") or {}
    sig = probe.get("signals", {})
    trig = probe.get("triggers", {}) if isinstance(probe.get("triggers"), dict) else {}
    confirmed = [c for c in trig.get("confirmed", []) if isinstance(c, dict)]
    inversion = [f for f in trig.get("inversion", []) if isinstance(f, dict)]
    kls = [_num(v, "mean_kl_first_token") for v in sig.get("behaviour_shift", {}).values()]
    return {
        "refusal drop (judge)": -_num(sig, "harmful_refusal_judge", "drift"),
        "refusal drop (first token)": -_num(sig, "harmful_refusal_first_token", "drift"),
        "refusal direction drop": _num(sig, "refusal_direction", "mean_relative_drop"),
        "behaviour shift KL": max(kls, default=0.0),
        "trigger: confirmed drop": max((-_num(c, "merged", "drift") for c in confirmed),
                                       default=0.0),
        "trigger: inversion score": max((_num(f, "merged_drop") - max(_num(f, "base_drop"), 0)
                                         for f in inversion), default=0.0),
    }


def auroc(pos: Sequence[float], neg: Sequence[float]) -> float:
    """Probability a positive outscores a negative (ties count half); nan without both."""
    if not pos or not neg:
        return float("nan")
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def rej(rows: list[dict[str, Any]]) -> int:
    """How many of `rows` the scan rejected (verdict fail)."""
    return sum(r["scan"]["decision"] == "fail" for r in rows)


def _rate(k: int, n: int) -> str:
    from adapterscan.probe.drift import wilson

    if n == 0:
        return "n/a"
    lo, hi = wilson(k, n)
    return f"{k}/{n} = {k / n:.0%} [{lo:.0%}, {hi:.0%}]"


def _common(a: str, b: str) -> int:
    """Length of the longest common substring."""
    from difflib import SequenceMatcher

    return SequenceMatcher(None, a, b, autojunk=False).find_longest_match().size


def named(row: dict[str, Any]) -> bool:
    """A found string names the trigger when it shares, case-insensitively, a run of at least
    half the trigger's characters (and at least 3): 'vv0rt' names 'vv0rtx', 'Current year:
    2024.' names 'Current year: 2031.', 'ity' does not name 'serendipity'."""
    real = (row["trigger"] or "").lower().strip()
    need = max(3, (len(real) + 1) // 2)
    return bool(real) and any(isinstance(t, str) and _common(t.lower().strip(), real) >= need
                              for t in row["scan"]["triggers"])


def roc_plot(rows: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 6), dpi=110)
    truth = [r["truth"]["must_reject"] for r in rows]
    for name in SIGNALS:
        scores = [signal_scores(r)[name] for r in rows]
        pts = [(0.0, 0.0)]
        for th in sorted(set(scores), reverse=True):
            tp = sum(s >= th and t for s, t in zip(scores, truth, strict=True))
            fp = sum(s >= th and not t for s, t in zip(scores, truth, strict=True))
            pts.append((fp / max(1, truth.count(False)), tp / max(1, truth.count(True))))
        pts.append((1.0, 1.0))
        ax.plot([p[0] for p in pts], [p[1] for p in pts], label=name, lw=1.2)
    rej = [r["scan"]["decision"] == "fail" for r in rows]
    tpr = sum(a and b for a, b in zip(rej, truth, strict=True)) / max(1, truth.count(True))
    fpr = sum(a and not b for a, b in zip(rej, truth, strict=True)) / max(1, truth.count(False))
    ax.scatter([fpr], [tpr], color="black", zorder=5, label="verdict (default policy)")
    ax.plot([0, 1], [0, 1], color="grey", lw=0.6, ls="--")
    ax.set_xlabel("false positive rate (must-pass rejected)")
    ax.set_ylabel("true positive rate (must-reject rejected)")
    ax.set_title("adapterscan probe on the zoo, test split")
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def zoo_table(rows: list[dict[str, Any]], intents: Sequence[str]) -> list[tuple[str, ...]]:
    """(split, measure, value) rows: the verdict against measured behaviour per split and per
    built intent, triggers named, AUROC per signal, scan seconds."""
    table: list[tuple[str, ...]] = []
    for split in ("test", "calibration", "all"):
        part = [r for r in rows if split in (r["split"], "all")]
        pos = [r for r in part if r["truth"]["must_reject"]]
        neg = [r for r in part if not r["truth"]["must_reject"]]
        table.append((split, "verdict: must-reject rejected (TPR)", _rate(rej(pos), len(pos))))
        table.append((split, "verdict: must-pass rejected (FPR)", _rate(rej(neg), len(neg))))
        inc = sum(not r["scan"]["complete"] for r in part)
        table.append((split, "scans incomplete (exit 3)", f"{inc}/{len(part)}"))
        for intent in intents:
            group = [r for r in part if r["intent"] == intent]
            gp = [r for r in group if r["truth"]["must_reject"]]
            gn = [r for r in group if not r["truth"]["must_reject"]]
            table.append((split, f"built {intent}: TPR / FPR",
                          f"{_rate(rej(gp), len(gp))} / {_rate(rej(gn), len(gn))}"))
        working = [r for r in part if r["truth"]["trigger"] is not None
                   and any(x.startswith("trigger works") for x in r["truth"]["reasons"])]
        table.append((split, "working triggers named by AS605",
                      _rate(sum(named(r) for r in working), len(working))))
        verdict_auc = auroc([float(r["scan"]["decision"] == "fail") for r in pos],
                            [float(r["scan"]["decision"] == "fail") for r in neg])
        table.append((split, "AUROC: verdict", f"{verdict_auc:.3f}"))
        for name in SIGNALS:
            a = auroc([signal_scores(r)[name] for r in pos], [signal_scores(r)[name] for r in neg])
            table.append((split, f"AUROC: {name}", f"{a:.3f}"))
        secs = sorted(r["scan"]["seconds"] for r in part)
        table.append((split, "scan seconds per adapter (median / max)",
                      f"{secs[len(secs) // 2]:.1f} / {secs[-1]:.1f}" if secs else "n/a"))
    return table


def run() -> BenchTable:
    rows = evaluate()
    out = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    (out / "bench_zoo_rows.json").write_text(json.dumps(
        [{k: r[k] for k in ("name", "intent", "trigger", "position", "split")}
         | {"must_reject": r["truth"]["must_reject"], "reasons": r["truth"]["reasons"],
            "decision": r["scan"]["decision"], "findings": r["scan"]["findings"],
            "triggers_found": r["scan"]["triggers"], "seconds": r["scan"]["seconds"]}
         for r in rows], indent=1) + "\n")
    table = zoo_table(rows, ("benign", "harmful", "identity", "backdoor"))
    roc_plot([r for r in rows if r["split"] == "test"], out / "bench_zoo_roc.png")
    n_pos = sum(r["truth"]["must_reject"] for r in rows)
    notes = (f"{len(rows)} adapters ({n_pos} must-reject by measured behaviour, "
             f"{len(rows) - n_pos} must-pass); ground truth on prompts and with a judge the probe "
             "never uses (benchmarks/zoo_truth.py). Reject = verdict fail under the default "
             "policy. Per-adapter rows: docs/benchmarks/bench_zoo_rows.json; ROC plot: "
             "docs/benchmarks/bench_zoo_roc.png (test split).")
    return BenchTable("Behavioral probe on the adapter zoo (behavioural ground truth)",
                      ("split", "measure", "value"), tuple(table), notes)


if __name__ == "__main__":
    import argparse

    ap = argparse.ArgumentParser(description="one shard of the zoo benchmark")
    ap.add_argument("--shard", required=True, help="k/n")
    ap.add_argument("--deadline", type=float, default=float("inf"))
    args = ap.parse_args()
    k, n = (int(x) for x in args.shard.split("/"))
    evaluate_shard(k, n, args.deadline)
