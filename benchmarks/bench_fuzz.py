"""Coverage-guided fuzzing of every parser (issue 25): `python -m benchmarks.run_all bench_fuzz`.

Runs each harness (ADAPTERSCAN_FUZZ_HARNESSES, comma-separated, to run a few; "none" to only
table what has run) for ADAPTERSCAN_FUZZ_RUNS executions (default 100,000; at most
ADAPTERSCAN_FUZZ_TIMEOUT_S seconds each when set), one at a time, and
tables the last result of every harness under the work folder (ADAPTERSCAN_FUZZ_DIR, default
.fuzz/).
"""

from __future__ import annotations

import os

from benchmarks.common import BenchTable
from benchmarks.fuzz import runner, seeds
from benchmarks.fuzz.table import table


def run() -> BenchTable:
    wanted = os.environ.get("ADAPTERSCAN_FUZZ_HARNESSES")
    names = tuple(n for n in wanted.split(",") if n != "none") if wanted else seeds.HARNESSES
    limit = os.environ.get("ADAPTERSCAN_FUZZ_TIMEOUT_S")  # per harness, when CPU time is short
    if names:
        runner.run_all(names, runner.default_runs(), timeout_s=float(limit) if limit else None)
    runner.add_missing_lines(runner.workdir(), seeds.HARNESSES)
    # The table measures against the target, whatever this invocation asked for.
    return table(runner.saved_results(runner.workdir(), seeds.HARNESSES), runner.DEFAULT_RUNS)
