"""The fuzzing table: one row per harness, with the bounds each input ran under."""

from __future__ import annotations

from collections.abc import Sequence

from benchmarks.common import BenchTable
from benchmarks.fuzz.engine import MEMORY_BOUND, TIME_BOUND_S
from benchmarks.fuzz.runner import FuzzResult

HEADERS = ("harness", "executions", "edges (cov)", "features (ft)", "lines (files reached)",
           "corpus", "seconds",
           "crashes", "hangs", "memory blow-ups", "slowest input (s CPU)", "peak RSS (MiB)")


def row(r: FuzzResult) -> tuple[str, ...]:
    died = ("" if r.exit_code == 0 else " (stopped at the time limit)" if r.exit_code == -9
            else f" (exit {r.exit_code})")
    pct = f"{r.lines}/{r.lines_of} ({100 * r.lines / r.lines_of:.0f}%), {r.files} files" \
        if r.lines_of else "not measured"
    return (r.name, f"{r.executions:,}", str(r.edges), str(r.features), pct, str(r.corpus),
            f"{r.seconds:.0f}", f"{r.crash_count}{died}", str(r.hangs), str(r.memory_errors),
            f"{r.slowest_s:.3f}", f"{r.peak_rss_mib:.0f}")


def table(results: Sequence[FuzzResult], runs: int) -> BenchTable:
    crashes = [f"- {r.name}: {c}" for r in results for c in r.crashes]
    notes = (
        f"Each harness ran in its own process under atheris (libFuzzer), one at a time, for the "
        f"executions shown (the target is {runs:,}), from seeds built by the tests' fixture "
        f"builders, with a dictionary of format tokens. Bounds on every input: RLIMIT_AS at the "
        f"harness's start-up footprint plus {MEMORY_BOUND >> 20} MiB (a MemoryError counts as a "
        f"blow-up) and {TIME_BOUND_S:g} s of CPU (an overrun counts as a hang). A crash is any "
        "exception other than the harness's documented error types, or a broken round-trip "
        "against the reference safetensors / gguf readers. Coverage: libFuzzer's count of the "
        "edges (`cov`) and features (`ft`) of adapterscan's own bytecode that the corpus "
        "reached, and the adapterscan lines the kept corpus executes when replayed once under "
        "sys.settrace, of the executable lines of the files it reaches (lines.py).")
    notes += (
        "\n\nCommands: `python -m benchmarks.fuzz seeds` builds the seeds and dictionaries under "
        ".fuzz/ (never committed); `python -m benchmarks.fuzz --runs N NAME...` fuzzes some "
        "harnesses and prints this table; `python -m benchmarks.run_all bench_fuzz` writes it "
        "(ADAPTERSCAN_FUZZ_RUNS, ADAPTERSCAN_FUZZ_HARNESSES, ADAPTERSCAN_FUZZ_DIR). Crashing, "
        "hanging and slowest inputs are kept under .fuzz/crashes/NAME.")
    short = [r.name for r in results if r.executions < runs]
    if short:
        notes += (f"\n\nUnder the {runs:,}-execution target: {', '.join(short)} (the run was cut "
                  "short for CPU time; the executions column is what ran).")
    if crashes:
        notes += "\n\nDistinct escapes:\n" + "\n".join(crashes)
    return BenchTable("Coverage-guided fuzzing of the parsers", HEADERS,
                      tuple(row(r) for r in results), notes)
