"""Run harnesses one at a time, each in its own process, and collect what each one reached."""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from benchmarks.fuzz import seeds
from benchmarks.fuzz.engine import scratch_dir

DEFAULT_RUNS = 100_000
ROOT = Path(__file__).resolve().parents[2]
# libFuzzer's last status line: "#100000 DONE cov: 1234 ft: 5678 corp: 90/12Kb ..."
_DONE = re.compile(r"#(\d+)\s+DONE\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_STATUS = re.compile(r"#(\d+)\s+\w+\s+cov: (\d+) ft: (\d+) corp: (\d+)/")
_TIME = re.compile(r"Done (\d+) runs in (\d+) second")


@dataclass(frozen=True)
class FuzzResult:
    name: str
    executions: int
    edges: int  # libFuzzer `cov`: instrumented edges of adapterscan's bytecode reached
    features: int  # libFuzzer `ft`
    corpus: int
    seconds: float
    crashes: tuple[str, ...]  # one line per distinct signature
    crash_count: int
    hangs: int
    memory_errors: int
    slowest_s: float
    peak_rss_mib: float
    exit_code: int
    log_tail: str
    lines: int = 0  # adapterscan lines the kept corpus executes (lines.py), in the files
    lines_of: int = 0  # it reached, of this many executable lines
    files: int = 0

    @property
    def clean(self) -> bool:
        return (self.exit_code == 0 and not self.crash_count and not self.hangs
                and not self.memory_errors)


def default_runs() -> int:
    return int(os.environ.get("ADAPTERSCAN_FUZZ_RUNS", DEFAULT_RUNS))


def workdir() -> Path:
    return Path(os.environ.get("ADAPTERSCAN_FUZZ_DIR", ROOT / ".fuzz"))


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "MALLOC_ARENA_MAX": "2"}


def with_lines(result: FuzzResult, work: Path) -> FuzzResult:
    """The result with the line coverage of its harness's kept corpus (replayed once)."""
    proc = subprocess.run([sys.executable, "-m", "benchmarks.fuzz.lines", result.name,
                           str(work)], cwd=ROOT, env=_env(), capture_output=True, text=True)
    if proc.returncode != 0:
        return result
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    return dataclasses.replace(result, lines=doc["lines"], lines_of=doc["of"],
                               files=doc["files"])


def _save(result: FuzzResult, work: Path) -> None:
    saved = work / "results" / f"{result.name}.json"
    saved.parent.mkdir(parents=True, exist_ok=True)
    saved.write_text(json.dumps(dataclasses.asdict(result), indent=1))


def run_one(name: str, runs: int, work: Path, timeout_s: float | None = None,
            lines: bool = True, max_time_s: int = 0) -> FuzzResult:
    env = _env()
    stats_path = work / "stats" / f"{name}.json"
    stats_path.unlink(missing_ok=True)
    # Every run starts from the seeds alone, so its coverage is its own.
    shutil.rmtree(work / "corpus" / name, ignore_errors=True)
    shutil.rmtree(work / "crashes" / name, ignore_errors=True)
    try:
        proc = subprocess.run([sys.executable, "-m", "benchmarks.fuzz.engine", name, str(work),
                               str(runs), str(max_time_s)], cwd=ROOT, env=env,
                              capture_output=True, text=True, timeout=timeout_s)
        log, code = proc.stderr + proc.stdout, proc.returncode
    except subprocess.TimeoutExpired as exc:
        err = exc.stderr or b""
        log = err.decode(errors="replace") if isinstance(err, bytes) else err
        code = -9
    shutil.rmtree(scratch_dir(name, work), ignore_errors=True)
    result = _result(name, log, code, stats_path)
    if lines:
        result = with_lines(result, work)
    _save(result, work)
    return result


def add_missing_lines(work: Path, names: tuple[str, ...]) -> None:
    """Line coverage for saved results that have none yet (runs from before lines.py)."""
    for r in saved_results(work, names):
        if not r.lines and (work / "corpus" / r.name).is_dir():
            _save(with_lines(r, work), work)


def saved_results(work: Path, names: tuple[str, ...]) -> list[FuzzResult]:
    """The last result of each harness in `names` that has run under `work`."""
    out = []
    for name in names:
        path = work / "results" / f"{name}.json"
        if path.is_file():
            doc = json.loads(path.read_text())
            out.append(FuzzResult(**{**doc, "crashes": tuple(doc["crashes"])}))
    return out


def _result(name: str, log: str, code: int, stats_path: Path) -> FuzzResult:
    stats = json.loads(stats_path.read_text()) if stats_path.is_file() else {}
    found = _DONE.findall(log) or _STATUS.findall(log)
    done, cov, ft, corp = found[-1] if found else ("0", "0", "0", "0")
    took = _TIME.findall(log)
    crashes = tuple(f"{c['signature']} ×{c['count']}: {c['message'][:120]} ({c['input']})"
                    for c in stats.get("crashes", []))
    return FuzzResult(
        # The stats file is flushed every few thousand inputs; libFuzzer's last line is exact.
        name=name, executions=max(int(stats.get("executions", 0)), int(done)), edges=int(cov),
        features=int(ft), corpus=int(corp), seconds=float(took[-1][1]) if took else 0.0,
        crashes=crashes, crash_count=int(stats.get("crash_count", 0)),
        hangs=int(stats.get("hangs", 0)), memory_errors=int(stats.get("memory_errors", 0)),
        slowest_s=float(stats.get("slowest_s", 0.0)),
        peak_rss_mib=float(stats.get("peak_rss_mib", 0.0)), exit_code=code,
        log_tail=log[-3000:])


def run_all(names: tuple[str, ...], runs: int, work: Path | None = None,
            timeout_s: float | None = None, workers: int = 1,
            lines: bool = True, max_time_s: int = 0) -> list[FuzzResult]:
    """Seeds first (one command's worth), then the harnesses: one at a time unless `workers`
    says otherwise (the CI smoke runs a few at once; a measured run never does)."""
    work = work or workdir()
    seeds.build(work, names)
    with ThreadPoolExecutor(workers) as pool:  # threads only wait on the harness processes
        return list(pool.map(lambda n: run_one(n, runs, work, timeout_s, lines, max_time_s),
                             names))
