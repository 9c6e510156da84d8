"""Scan many sources, locally (one process per item) or on a Ray cluster, with identical results.

Every item runs in its own process (a subprocess locally, a task on Ray) so a crash, a hang or a
memory blow-up in one scan never stops the batch, and a per-item timeout can kill it for real.
Results are JSON lines keyed by source; a rerun skips sources already in the output (resume).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from adapterscan._version import __version__
from adapterscan.errors import UsageError
from adapterscan.integrations.procworker import WorkerLost, WorkerProcess, WorkerStartError
from adapterscan.rules.model import RuleSet

Progress = Callable[["ItemResult"], None]


@dataclass(frozen=True)
class BatchOptions:
    """What each item's scan uses. Plain data: it travels to worker processes and Ray tasks."""

    base: str | None = None
    policy_file: str | None = None
    endpoint: str | None = None
    token: str | None = None
    timeout_s: float = 600.0
    workers: int = 1
    gpus_per_probe: float = 0.0


@dataclass(frozen=True)
class ItemResult:
    source: str
    status: str  # "ok" | "error" | "timeout"
    exit_code: int  # what `adapterscan scan` would have exited with (2 for error/timeout... 3)
    decision: str | None = None
    complete: bool = False
    revision: str | None = None
    rule_ids: tuple[str, ...] = ()
    files: dict[str, str | None] = field(default_factory=dict)
    error: str | None = None
    seconds: float = 0.0
    tool_version: str | None = __version__  # of the adapterscan that produced this line

    def comparable(self) -> dict[str, Any]:
        """Everything but the time taken: what must agree between engines."""
        d = asdict(self)
        d.pop("seconds")
        return d

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @staticmethod
    def from_json(line: str) -> ItemResult:
        d = json.loads(line)
        d["rule_ids"] = tuple(d.get("rule_ids", ()))
        d.setdefault("tool_version", None)  # lines written before the field existed
        return ItemResult(**d)


def read_sources(path: Path) -> list[str]:
    """One source per line; blank lines and # comments ignored; duplicates kept once."""
    try:
        lines = path.read_text("utf-8").splitlines()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read the batch input: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise UsageError(f"{path}: batch input is not UTF-8 text") from exc
    seen: dict[str, None] = {}
    for line in lines:
        text = line.split("#", 1)[0].strip()
        if text:
            seen.setdefault(text, None)
    return list(seen)


def done_sources(out: Path) -> set[str]:
    """Sources with a result line in `out` (resume). A torn last line is ignored, not fatal."""
    if not out.exists():
        return set()
    done = set()
    for line in out.read_text("utf-8").splitlines():
        try:
            done.add(ItemResult.from_json(line).source)
        except (ValueError, TypeError, KeyError):
            continue
    return done


def scan_item(source: str, options: BatchOptions, ruleset: RuleSet | None = None) -> ItemResult:
    """Scan one source in this process and summarise it; never raises."""
    from adapterscan.errors import FetchError
    from adapterscan.exit_codes import exit_code_for
    from adapterscan.fetch.hub_options import HubOptions
    from adapterscan.integrations.procworker import describe
    from adapterscan.pipeline import ScanOptions, scan
    from adapterscan.policy.policy import Policy, load_policy

    t0 = time.perf_counter()
    try:
        policy = load_policy(Path(options.policy_file)) if options.policy_file else Policy()
        report = scan(source, policy=policy, ruleset=ruleset, options=ScanOptions(
            base=options.base, hub=HubOptions(endpoint=options.endpoint, token=options.token)))
    except Exception as exc:  # one item's failure (or bug) must not stop the batch
        code = 3 if isinstance(exc, FetchError) else 2
        return ItemResult(source, "error", code, error=describe(exc),
                          seconds=time.perf_counter() - t0)
    return ItemResult(
        source=source, status="ok", exit_code=int(exit_code_for(report)),
        decision=report.verdict.decision.value, complete=report.complete,
        revision=report.subject.revision,
        rule_ids=tuple(sorted({f.rule_id for f in report.findings})),
        files={f.path: f.sha256 for f in report.subject.files},
        seconds=time.perf_counter() - t0)


def _handler(options: BatchOptions) -> Callable[[str], str]:
    """Runs in a worker process: scan each source sent to it, answer its result as JSON."""
    from adapterscan.rules.loader import load_ruleset

    # Imports and the rule set are paid once per worker, before the first item's clock starts.
    ruleset = load_ruleset()
    return lambda source: scan_item(source, options, ruleset).to_json()


def run_local(sources: Iterable[str], options: BatchOptions) -> Iterator[ItemResult]:
    """Scan in `options.workers` long-lived processes (imports are paid once per worker)."""
    import queue
    import threading

    todo: queue.Queue[str | None] = queue.Queue()
    done: queue.Queue[ItemResult] = queue.Queue()
    items = list(sources)
    for s in items:
        todo.put(s)
    n = max(1, min(options.workers, len(items)))
    for _ in range(n):
        todo.put(None)

    def drive() -> None:
        worker: WorkerProcess | None = None
        while (source := todo.get()) is not None:
            t0 = time.perf_counter()
            try:
                worker = worker or WorkerProcess.started(_handler, options)
                result = ItemResult.from_json(worker.run(source, options.timeout_s))
            except (WorkerStartError, OSError) as exc:  # this item is not scanned; go on
                result = ItemResult(source, "error", 2, error=str(exc),
                                    seconds=time.perf_counter() - t0)
            except WorkerLost as lost:
                worker = None
                result = ItemResult(
                    source, "timeout" if lost.timed_out else "error", 3,
                    seconds=time.perf_counter() - t0,
                    error=f"no result within {options.timeout_s:g} s; the scan was killed"
                    if lost.timed_out else "the scan process died")
            done.put(result)
        if worker is not None:
            worker.close()

    threads = [threading.Thread(target=drive, daemon=True) for _ in range(n)]
    for t in threads:
        t.start()
    for _ in items:
        yield done.get()
    for t in threads:
        t.join()


def run_ray(sources: Iterable[str], options: BatchOptions, address: str | None) -> \
        Iterator[ItemResult]:
    import ray

    started_here = not ray.is_initialized()
    if started_here:
        # Ray reports usage statistics to its vendor unless told not to; a scanner of private
        # registries does not, unless the user set the variable themselves.
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if address:
            ray.init(address=address, logging_level=logging.ERROR, log_to_driver=False)
        else:
            ray.init(num_cpus=max(1, options.workers), include_dashboard=False,
                     logging_level=logging.ERROR, log_to_driver=False)
    try:
        gpus = options.gpus_per_probe if options.base else 0.0
        task = ray.remote(num_cpus=1, num_gpus=gpus, max_retries=0)(scan_item)
        from adapterscan.rules.loader import load_ruleset

        # Validated once here and shared through the object store, not re-read per task.
        rules = ray.put(load_ruleset())
        pending = {task.remote(s, options, rules): (s, time.monotonic())  # type: ignore[call-arg]
                   for s in sources}
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1, timeout=1.0)
            now = time.monotonic()
            for ref in ready:
                source, _t = pending.pop(ref)
                try:
                    yield ray.get(ref)
                except Exception as exc:  # worker died: the item fails, the batch goes on
                    yield ItemResult(source, "error", 3, error=f"ray task failed: {exc}")
            for ref, (source, t0) in list(pending.items()):
                if now - t0 > options.timeout_s:
                    ray.cancel(ref, force=True)
                    pending.pop(ref)
                    yield ItemResult(source, "timeout", 3, error=f"no result within "
                                     f"{options.timeout_s:g} s; the task was cancelled",
                                     seconds=now - t0)
    finally:
        if started_here:
            ray.shutdown()


def run_batch(sources: list[str], out: Path, *, engine: str, options: BatchOptions,
              address: str | None = None, progress: Progress | None = None) -> list[ItemResult]:
    """Scan every source not yet in `out`, appending one JSON line per finished item."""
    if engine not in ("local", "ray"):
        raise UsageError(f"unknown engine {engine!r}; use local or ray")
    done = done_sources(out)
    todo = [s for s in sources if s not in done]
    results: list[ItemResult] = []
    it = run_local(todo, options) if engine == "local" else run_ray(todo, options, address)
    out.parent.mkdir(parents=True, exist_ok=True)
    with out.open("a", encoding="utf-8") as fh:
        for result in it:
            fh.write(result.to_json() + "\n")
            fh.flush()
            os.fsync(fh.fileno())  # a crash loses at most the item in flight
            results.append(result)
            if progress:
                progress(result)
    return results
