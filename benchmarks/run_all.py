"""Run every benchmark and write docs/benchmarks.md: `python -m benchmarks.run_all [names...]`."""

from __future__ import annotations

import datetime as dt
import importlib
import sys
from pathlib import Path

from benchmarks.common import BenchTable, machine

BENCHMARKS = (
    "benchmarks.bench_static",
    "benchmarks.bench_weights",
    "benchmarks.bench_bank",
    "benchmarks.bench_probe",
    "benchmarks.bench_zoo",
    "benchmarks.bench_zoo_v3",
    "benchmarks.bench_triggers",
    "benchmarks.bench_hub",
    "benchmarks.bench_server",
    "benchmarks.bench_access",
    "benchmarks.bench_batch",
    "benchmarks.bench_real",
    "benchmarks.bench_payloads",
    "benchmarks.bench_peft_oracle",
    "benchmarks.bench_delta",
    "benchmarks.bench_reference_v3",
    "benchmarks.bench_fuzz",
    "benchmarks.study_soft_trigger",
)


def main(argv: list[str]) -> int:
    wanted = [b for b in BENCHMARKS if not argv or any(a in b for a in argv)]
    out = Path(__file__).resolve().parent.parent / "docs" / "benchmarks"
    out.mkdir(parents=True, exist_ok=True)
    for name in wanted:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError:
            print(f"skip {name}: not present")
            continue
        print(f"running {name} ...", flush=True)
        table: BenchTable = module.run()
        stamp = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
        text = (f"{table.markdown()}\nMeasured {stamp} on: {machine()}.\n"
                f"Reproduce: `python -m benchmarks.run_all {name.rsplit('.', 1)[1]}`\n")
        (out / f"{name.rsplit('.', 1)[1]}.md").write_text(text)
        print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
