"""Probe benchmark: time per adapter (first-token path vs full probe) and detection per class.

Runs over the labelled example adapters (`adapterscan.training.examples.build.build_examples`)
against the bundled reference model. An adapter counts as rejected when the probe emits a finding
at or above the default policy's fail_on (high).
"""

from __future__ import annotations

import os
import time
from collections import defaultdict
from pathlib import Path

from benchmarks.common import BenchTable


def _ruleset() -> object:
    from adapterscan.errors import RuleError
    from adapterscan.rules.loader import load_ruleset

    try:
        return load_ruleset()
    except RuleError:
        # Other stages' rules still in progress: the probe's own rules are enough here.
        import tomllib

        from adapterscan.rules.loader import _rule_from_table, default_signatures_dir
        from adapterscan.rules.model import RuleSet

        rules = [_rule_from_table(tomllib.loads(p.read_text("utf-8")))
                 for p in sorted((default_signatures_dir() / "rules").glob("AS6*.toml"))]
        return RuleSet(rules=tuple(rules), digest="bench")


def _probe(path: Path, opts: object) -> tuple[float, list[str], object]:
    from adapterscan.emit import Emitter
    from adapterscan.fetch.base_model import local_base
    from adapterscan.fetch.local import LocalFetcher
    from adapterscan.findings import Severity
    from adapterscan.probe.interface import run_probe
    from adapterscan.static.model import Inventory, StaticResult

    emit = Emitter(_ruleset())  # type: ignore[arg-type]
    src = LocalFetcher(path).fetch(emit)
    t = time.perf_counter()
    result = run_probe(src, StaticResult(inventory=Inventory(items=())),
                       local_base("reference"), emit, opts, None)  # type: ignore[arg-type]
    took = time.perf_counter() - t
    high = [f"{f.rule_id}" for f in emit.findings if f.severity >= Severity.HIGH]
    return took, high, result


def run() -> BenchTable:
    import torch

    from adapterscan.examples import load_examples
    from adapterscan.probe.options import ProbeOptions
    from adapterscan.training.examples.build import build_examples

    torch.set_num_threads(1)
    # ADAPTERSCAN_EXAMPLES_DIR: reuse a folder of built examples instead of the default cache.
    where = os.environ.get("ADAPTERSCAN_EXAMPLES_DIR")
    examples = (load_examples(Path(where)) if where else None) or build_examples()
    fast = ProbeOptions(generate=False, trigger_search=False, threads=1)
    full = ProbeOptions(threads=1)
    _probe(examples[0].path, fast)  # warm-up: imports and first load are not per-adapter costs
    rows: list[tuple[str, ...]] = []
    per_class: dict[str, list[bool]] = defaultdict(list)
    t_fast: list[float] = []
    t_full: list[float] = []
    for ex in examples:
        tf, high_fast, _ = _probe(ex.path, fast)
        tg, high, result = _probe(ex.path, full)
        t_fast.append(tf)
        t_full.append(tg)
        rejected = bool(high)
        per_class[ex.expected_class].append(rejected)
        timings = result.get("timings", {}) if isinstance(result, dict) else {}
        gen = sum(v for k, v in timings.items() if k.endswith("_generate"))
        trig = timings.get("trigger_search", 0.0)
        rows.append((ex.name, ex.expected_class, "reject" if rejected else "pass",
                     ",".join(sorted(set(high))) or "-", ",".join(sorted(set(high_fast))) or "-",
                     f"{tf:.2f}", f"{tg:.2f}", f"{gen:.2f}", f"{trig:.2f}"))
    summary = []
    for cls, flags in sorted(per_class.items()):
        rate = sum(flags) / len(flags)
        what = "FP rate" if cls == "benign" else "TP rate"
        summary.append(f"{cls}: {what} {rate:.0%} ({sum(flags)}/{len(flags)})")
    notes = ("Per class: " + "; ".join(summary) + ".\n\n"
             "Mean probe time per adapter: first-token path only "
             f"{sum(t_fast) / len(t_fast):.2f} s, "
             f"full probe (first token + generation + direction + trigger search) "
             f"{sum(t_full) / len(t_full):.2f} s (one thread, base load included, "
             "imports excluded). Reject = any finding of severity >= high.")
    return BenchTable(
        title="Behavioral probe: detection and time per example adapter (reference base)",
        headers=("adapter", "expected", "verdict (full)", "high findings (full)",
                 "high findings (first-token only)", "first-token s", "full s", "generation s",
                 "trigger search s"),
        rows=tuple(rows), notes=notes)
