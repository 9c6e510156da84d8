"""Run one harness under atheris (libFuzzer) with the invariants every input must keep.

`python -m benchmarks.fuzz.engine NAME WORKDIR RUNS [SECONDS]` fuzzes the harness
`benchmarks.fuzz.h_NAME` for RUNS executions (or SECONDS, whichever ends first), starting from
WORKDIR/seeds/NAME with the dictionary WORKDIR/NAME.dict, and keeps WORKDIR/stats/NAME.json
current. Each input must:
  - raise nothing but the harness's documented error types (anything else is a crash);
  - stay under RLIMIT_AS (the start-up footprint plus MEMORY_BOUND) and finish within
    TIME_BOUND_S of CPU time (a MemoryError or an overrun is recorded, not fatal);
  - keep the harness's own invariants (round-trips), which it asserts.
A crash does not stop the run: its first input per signature is saved under WORKDIR/crashes/NAME
and the count goes on, so the table says how many distinct escapes there were.

Nothing from adapterscan is imported before atheris instruments it: the coverage libFuzzer
reports is of adapterscan's own bytecode.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import resource
import signal
import sys
import time
import traceback
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

MEMORY_BOUND = 512 * 1024 * 1024
TIME_BOUND_S = 2.0
_FLUSH_EVERY = 2000


class Hang(BaseException):
    """Raised by the CPU timer; a BaseException so that no `except Exception` in a parser can
    swallow it."""


def _on_timer(signum: int, frame: FrameType | None) -> None:
    raise Hang


def _vm_size() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    return 0


def _signature(tb: TracebackType | None, exc: BaseException) -> str:
    """The exception type and the innermost adapterscan frame: one bug, one signature."""
    where = "?"
    for frame, line in traceback.walk_tb(tb):
        path = frame.f_code.co_filename
        if "/adapterscan/" in path or "/benchmarks/fuzz/" in path:
            where = f"{path.split('/adapterscan/')[-1].split('/benchmarks/')[-1]}:{line}"
    return f"{type(exc).__name__} at {where}"


class Stats:
    def __init__(self, name: str, workdir: Path, runs: int) -> None:
        self.path = workdir / "stats" / f"{name}.json"
        self.crash_dir = workdir / "crashes" / name
        self.runs = runs
        self.executions = 0
        self.crashes: dict[str, dict[str, Any]] = {}
        self.crash_count = 0
        self.hangs = 0
        self.memory_errors = 0
        self.slowest_s = 0.0
        self.slowest_input = ""
        self.rejected = 0  # inputs that left with a documented error
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.crash_dir.mkdir(parents=True, exist_ok=True)

    def save_input(self, kind: str, data: bytes) -> str:
        path = self.crash_dir / f"{kind}-{hashlib.sha1(data).hexdigest()[:16]}"
        path.write_bytes(data)
        return str(path)

    def crash(self, exc: BaseException, data: bytes) -> None:
        self.crash_count += 1
        sig = _signature(exc.__traceback__, exc)
        if sig not in self.crashes:
            self.crashes[sig] = {"signature": sig, "message": str(exc)[:300],
                                 "input": self.save_input("crash", data), "count": 0}
        self.crashes[sig]["count"] += 1
        self.flush()

    def flush(self) -> None:
        doc = {"executions": self.executions, "crash_count": self.crash_count,
               "crashes": list(self.crashes.values()), "hangs": self.hangs,
               "memory_errors": self.memory_errors, "slowest_s": self.slowest_s,
               "slowest_input": self.slowest_input, "rejected": self.rejected,
               "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
               "time_bound_s": TIME_BOUND_S, "memory_bound_mib": MEMORY_BOUND >> 20}
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc, indent=1))
        tmp.replace(self.path)


def scratch_dir(name: str, workdir: Path) -> Path:
    """Where a harness writes each input: tmpfs when there is one (a disk's open and write
    cost more than most of the parsers), else under the work folder."""
    shm = Path("/dev/shm")
    if shm.is_dir() and os.access(shm, os.W_OK):
        tag = hashlib.sha1(str(workdir.resolve()).encode()).hexdigest()[:8]
        return shm / f"adapterscan-fuzz-{os.getuid()}-{tag}" / name
    return workdir / "scratch" / name


def main(argv: list[str]) -> None:
    import atheris  # type: ignore[import-untyped]

    name, workdir, runs = argv[0], Path(argv[1]), int(argv[2])
    max_time_s = int(argv[3]) if len(argv) > 3 else 0  # 0: no limit but the executions
    with atheris.instrument_imports(include=["adapterscan"]):
        harness = importlib.import_module(f"benchmarks.fuzz.h_{name}")
    target = harness.prepare(scratch_dir(name, workdir), workdir / "assets")
    allowed: tuple[type[BaseException], ...] = harness.ALLOWED
    stats = Stats(name, workdir, runs)
    limit = _vm_size() + MEMORY_BOUND
    resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    signal.signal(signal.SIGPROF, _on_timer)

    def one(data: bytes) -> None:
        stats.executions += 1
        t0 = time.process_time()
        signal.setitimer(signal.ITIMER_PROF, TIME_BOUND_S)
        try:
            target(data)
        except allowed:
            stats.rejected += 1
        except Hang:
            stats.hangs += 1
            stats.save_input("hang", data)
        except MemoryError:
            stats.memory_errors += 1
            stats.save_input("oom", data)
        except Exception as exc:  # every other escape is what the fuzzer is looking for
            stats.crash(exc, data)
        finally:
            signal.setitimer(signal.ITIMER_PROF, 0)
        spent = time.process_time() - t0
        if spent > stats.slowest_s:
            stats.slowest_s = spent
            stats.slowest_input = stats.save_input("slowest", data)
        if stats.executions % _FLUSH_EVERY == 0 or stats.executions >= runs:
            stats.flush()

    corpus = workdir / "corpus" / name
    corpus.mkdir(parents=True, exist_ok=True)
    args = [sys.argv[0], str(corpus), str(workdir / "seeds" / name), f"-runs={runs}",
            f"-max_len={harness.MAX_LEN}", "-timeout=120", "-rss_limit_mb=0",
            "-print_final_stats=1", f"-artifact_prefix={stats.crash_dir}/"]
    if max_time_s:
        args.append(f"-max_total_time={max_time_s}")
    if (workdir / f"{name}.dict").is_file():
        args.append(f"-dict={workdir / f'{name}.dict'}")
    stats.flush()
    atheris.Setup(args, one)
    atheris.Fuzz()


if __name__ == "__main__":
    main(sys.argv[1:])
