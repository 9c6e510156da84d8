"""Runs the stages in order: fetch, static analysis, optional probe, verdict. Prints nothing."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapterscan._version import __version__
from adapterscan.emit import Emitter
from adapterscan.fetch.interface import EntryType, FetchedSource, FetchLimits
from adapterscan.fetch.source import HubOptions, make_fetcher
from adapterscan.findings import JSONValue
from adapterscan.hashing import hash_files_async
from adapterscan.policy.policy import Policy
from adapterscan.report import FileRecord, ScanReport, Subject
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.static.interface import StaticOptions, run_static
from adapterscan.static.model import StaticResult

Progress = Callable[[str], None]


@dataclass(frozen=True)
class ScanOptions:
    static: StaticOptions = field(default_factory=StaticOptions)
    fetch_limits: FetchLimits = field(default_factory=FetchLimits)
    hub: HubOptions = field(default_factory=HubOptions)
    # Behavioral probe: a base model ("reference", a folder or a Hub id); None skips the probe.
    base: str | None = None
    probe: Any = None  # adapterscan.probe.interface.ProbeOptions; Any keeps torch out of imports


def scan(source: str | Path, *, options: ScanOptions | None = None, policy: Policy | None = None,
         ruleset: RuleSet | None = None, progress: Progress | None = None) -> ScanReport:
    """Scan an adapter folder or Hub repo and return the report (never raises on hostile input).

    Raises AdapterScanError subclasses only when the scan cannot start (unknown source, bad
    policy, unreachable Hub): the CLI maps those to exit 2 or 3.
    """
    opts = options or ScanOptions()
    pol = policy or Policy()
    rules = pol.apply_to(ruleset or load_ruleset())
    emit = Emitter(rules)
    started = dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    fetcher = make_fetcher(str(source), hub=opts.hub, limits=opts.fetch_limits)
    src = fetcher.fetch(emit)
    timings["fetch"] = time.perf_counter() - t0

    hashable = [e.path for e in src.entries if e.type is EntryType.FILE
                and e.path not in src.remote_only and e.size <= opts.fetch_limits.max_file_bytes]
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="sha256") as pool:
        futures = hash_files_async(src.root, hashable, pool)
        static = run_static(src, emit, opts.static, timings, progress)
        t0 = time.perf_counter()
        digests: dict[str, str] = {}
        for path, fut in futures.items():
            try:
                digests[path] = fut.result()
            except OSError as exc:
                emit.skip(path, f"cannot read for hashing: {exc.strerror}")
        timings["hash_wait"] = time.perf_counter() - t0
    _check_expected(src, digests, emit)

    results: dict[str, JSONValue] = dict(static.results)
    if opts.base is not None:
        t0 = time.perf_counter()
        results["probe"] = _run_probe(src, static, opts, emit, progress)
        timings["probe"] = time.perf_counter() - t0

    subject = _subject(src, digests, static)
    verdict = pol.decide(emit.findings, emit.skipped, emit.errors)
    timings["total"] = time.perf_counter() - t_all
    return ScanReport(subject=subject, findings=emit.findings, verdict=verdict,
                      tool_version=__version__, ruleset_digest=rules.digest,
                      skipped=emit.skipped, errors=emit.errors, timings=timings,
                      results=results, base_model=opts.base, started_at=started)


def _check_expected(src: FetchedSource, digests: dict[str, str], emit: Emitter) -> None:
    for path, expected in src.expected_sha256.items():
        got = digests.get(path)
        if got is not None and got != expected:
            emit.emit("integrity.sha256_mismatch",
                      f"bytes on disk do not match the sha256 the origin announced for {path}",
                      file=path, evidence={"expected": expected, "actual": got})


def _subject(src: FetchedSource, digests: dict[str, str], static: StaticResult) -> Subject:
    files = []
    for e in src.entries:
        item = static.inventory.get(e.path)
        kind = item.file_class.value if item else e.type.value
        sha = digests.get(e.path) or src.expected_sha256.get(e.path)
        files.append(FileRecord(path=e.path, size=e.size, sha256=sha, kind=kind))
    return Subject(source=src.source, kind=src.kind, files=tuple(files), revision=src.revision,
                   endpoint=src.endpoint, repo=src.repo)


def _run_probe(src: FetchedSource, static: StaticResult, opts: ScanOptions, emit: Emitter,
               progress: Progress | None) -> JSONValue:
    # Imported here: torch, transformers and peft cost seconds and only the probe needs them.
    from adapterscan.probe.interface import run_probe

    try:
        return run_probe(src, static, opts.base or "reference", emit, opts.probe, progress)
    except Exception as exc:  # the probe failing makes the scan incomplete, not clean
        emit.error("probe", f"{type(exc).__name__}: {exc}")
        return None
