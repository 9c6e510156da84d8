"""`python -m benchmarks.fuzz [seeds] [--runs N] [NAME ...]`: build the seed corpora (seeds), or
fuzz the named harnesses (all by default) for N executions each (ADAPTERSCAN_FUZZ_RUNS, default
100,000) and print the table."""

from __future__ import annotations

import argparse

from benchmarks.fuzz import runner, seeds
from benchmarks.fuzz.table import table


def main() -> int:
    ap = argparse.ArgumentParser(prog="python -m benchmarks.fuzz")
    ap.add_argument("names", nargs="*", help=f"harnesses ({', '.join(seeds.HARNESSES)})")
    ap.add_argument("--runs", type=int, default=runner.default_runs())
    args = ap.parse_args()
    if args.names == ["seeds"]:
        seeds.build(runner.workdir())
        print(f"seeds written under {runner.workdir()}")
        return 0
    names = tuple(args.names) or seeds.HARNESSES
    results = runner.run_all(names, args.runs)
    print(table(results, args.runs).markdown())
    return 0 if all(r.clean for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
