"""Runs the stages in order: fetch, static analysis, optional probe, verdict. Prints nothing."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from adapterscan._quiet import quiet
from adapterscan._version import __version__
from adapterscan.emit import Emitter
from adapterscan.errors import FetchError, UsageError
from adapterscan.extras import require_extra
from adapterscan.fetch.checks import SHA256_MISMATCH
from adapterscan.fetch.dispatch import make_fetcher
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.file_kinds import WEIGHTS_EXT, ends_with
from adapterscan.findings import JSONValue
from adapterscan.hashing import hash_files_async
from adapterscan.pipeline_checks import NOT_APPLICABLE
from adapterscan.policy.policy import Policy
from adapterscan.report import FileRecord, ScanReport, Subject
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.source import EntryType, FetchedSource, FetchLimits
from adapterscan.static.model import StaticResult
from adapterscan.static.options import StaticOptions, WeightOptions

if TYPE_CHECKING:  # base_model pulls in numpy (merged bases): kept off a scan's start
    from adapterscan.fetch.base_model import ResolvedBase
    from adapterscan.probe.merged import MergedModel
    from adapterscan.static.formats.model import AdapterFile

Progress = Callable[[str], None]
DEFAULT_MAX_FILE_BYTES = 4 * 1024**3


@dataclass(frozen=True)
class ScanOptions:
    static: StaticOptions = field(default_factory=StaticOptions)
    # Files over max_file_bytes are neither hashed nor analysed (the scan is then incomplete):
    # hashing a 50 GB sparse file takes minutes. 4 GiB matches AS414's threshold.
    fetch_limits: FetchLimits = field(
        default_factory=lambda: FetchLimits(max_file_bytes=DEFAULT_MAX_FILE_BYTES))
    hub: HubOptions = field(default_factory=HubOptions)
    # Behavioral probe: a base model ("auto": the one the adapter's config names, "reference", a
    # folder or a Hub id owner/name[@rev]); None skips the probe.
    base: str | None = None
    probe: Any = None  # adapterscan.probe.options.ProbeOptions; Any keeps torch out of imports
    # adapterscan.probe.session.BaseCache: reuse base measurements over many scans (caller-owned)
    probe_cache: Any = None


def scan(source: str | Path, *, options: ScanOptions | None = None, policy: Policy | None = None,
         ruleset: RuleSet | None = None, progress: Progress | None = None) -> ScanReport:
    """Scan an adapter folder or Hub repo and return the report (never raises on hostile input).

    Raises AdapterScanError subclasses only when the scan cannot start (unknown source, bad
    policy, unreachable Hub): the CLI maps those to exit 2 or 3.
    """
    opts = options or ScanOptions()
    if opts.base is not None:  # before any work; a worker without torch says so per item
        require_extra("probe", "the behavioral probe (a scan with a base model)")
    weights = opts.static.weights
    if weights.unaligned_dir is not None and weights.base_dir is None and opts.base is None:
        raise UsageError("--unaligned needs --base (the aligned model it is the twin of)")
    pol = policy or Policy()
    rules = pol.apply_to(ruleset or load_ruleset())
    emit = Emitter(rules)
    started = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    t0 = time.perf_counter()
    fetcher = make_fetcher(str(source), hub=opts.hub, limits=opts.fetch_limits)
    src = _set_aside_oversized(fetcher.fetch(emit), opts.fetch_limits.max_file_bytes, emit)
    timings["fetch"] = time.perf_counter() - t0
    _check_something_to_scan(src, emit)
    resolved: ResolvedBase | None = None
    if opts.base is not None:
        t0 = time.perf_counter()
        resolved = _resolve_base(opts.base, src, opts.hub, emit)
        timings["base"] = time.perf_counter() - t0
    if resolved is not None:
        opts = replace(opts, static=replace(
            opts.static, weights=_weight_options(resolved, opts.static.weights),
            delta=replace(opts.static.delta, base_name=_base_name(resolved),
                          base_revision=resolved.sha)))

    hashable = [e.path for e in src.entries if e.type is EntryType.FILE
                and e.path not in src.remote_only]
    # Two workers: the hashes (queued first), then the safetensors data scans, beside the
    # weight statistics on this thread. All three spend their time in hashlib, Hyperscan,
    # numpy or BLAS calls that release the GIL.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="scan") as pool:
        futures = hash_files_async(src.root, hashable, pool)
        # The static stage (numpy, BLAS, Hyperscan: ~0.2 s of imports) is imported while the
        # first file hashes: hashing is the floor of a scan, so it starts first.
        t0 = time.perf_counter()
        from threadpoolctl import threadpool_limits

        from adapterscan.static.interface import run_static

        timings["static.imports"] = time.perf_counter() - t0

        # One BLAS thread: the other core is hashing, and OpenBLAS threads that spin against
        # it made the weight statistics 40x slower on 2 cores (measured, docs/benchmarks).
        with threadpool_limits(limits=1, user_api="blas"):
            static = run_static(src, emit, opts.static, timings, progress, executor=pool)
        t0 = time.perf_counter()
        digests: dict[str, str] = {}
        for path, fut in futures.items():
            try:
                digests[path] = fut.result()
            except OSError as exc:
                emit.skip(path, f"cannot read for hashing: {exc.strerror or exc}")
        timings["hash_wait"] = time.perf_counter() - t0
    _check_expected(src, digests, emit)

    results: dict[str, JSONValue] = dict(static.results)
    if opts.base is not None and resolved is None:
        results["probe"] = None  # the base could not be resolved (a stage error says why)
    if resolved is not None:
        t0 = time.perf_counter()
        results["probe"] = _run_probe(src, static, resolved, opts, emit, progress)
        timings["probe"] = time.perf_counter() - t0

    subject = _subject(src, digests, static)
    verdict = pol.decide(emit.findings, emit.skipped, emit.errors)
    timings["total"] = time.perf_counter() - t_all
    return ScanReport(subject=subject, findings=emit.findings, verdict=verdict,
                      tool_version=__version__, ruleset_digest=rules.digest,
                      skipped=emit.skipped, errors=emit.errors, timings=timings,
                      results=results, base_model=opts.base,
                      base=resolved.to_json() if resolved is not None else None,
                      started_at=started)


def _resolve_base(spec: str, src: FetchedSource, hub: HubOptions,
                  emit: Emitter) -> ResolvedBase | None:
    """The base the probe and the weight comparison load; None (a stage error, the scan
    incomplete) when it cannot be found."""
    from adapterscan.fetch.base_model import resolve_base

    try:
        with quiet():
            return resolve_base(spec, src, hub, emit)
    except FetchError as exc:
        emit.error("base", exc.message + (f" (hint: {exc.hint})" if exc.hint else ""))
        return None


def _set_aside_oversized(src: FetchedSource, max_bytes: int, emit: Emitter) -> FetchedSource:
    """Files over the size limit are treated like files left on a remote: inventoried by name,
    never read or hashed, and reported as not analysed."""
    big = [e for e in src.entries if e.type is EntryType.FILE and e.size > max_bytes
           and e.path not in src.remote_only]
    for e in big:
        emit.skip(e.path, f"{e.size} bytes, over the {max_bytes}-byte --max-file-size limit: "
                  "not hashed or analysed")
    if not big:
        return src
    return dataclasses.replace(src, remote_only=src.remote_only | {e.path for e in big})


def _check_something_to_scan(src: FetchedSource, emit: Emitter) -> None:
    """A folder without any weights file is not an adapter: never report it clean."""
    if any(ends_with(e.path, WEIGHTS_EXT) for e in src.entries):
        return
    emit.skip(".", "no adapter weights found (no .safetensors, .gguf, .bin, .pt, ... file): "
              "nothing was analysed as an adapter")


def _base_name(base: ResolvedBase) -> str:
    """How a recovered adapter's config names the base (what `--base auto` reads back)."""
    from adapterscan.fetch.base_model import BUNDLED_NAMES

    return min(BUNDLED_NAMES) if base.bundled else base.repo or base.name


def _weight_options(base: ResolvedBase, weights: WeightOptions) -> WeightOptions:
    """The one place the weight comparison is pointed at the resolved base's folder (with the
    bundled reference's unaligned twin for the Safe-LoRA check), unless the caller chose one."""
    if weights.base_dir is not None:
        return weights
    unaligned = weights.unaligned_dir
    if base.bundled and unaligned is None:
        from adapterscan.reference import reference_dir

        unaligned = reference_dir(unaligned=True)
    return replace(weights, base_dir=base.folder, unaligned_dir=unaligned)


def _check_expected(src: FetchedSource, digests: dict[str, str], emit: Emitter) -> None:
    for path, expected in src.expected_sha256.items():
        got = digests.get(path)
        if got is not None and got != expected:
            emit.emit(SHA256_MISMATCH,
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


def _diffusion_only(static: StaticResult) -> list[AdapterFile]:
    """The adapter files, when every one that holds modules is a diffusion-model LoRA."""
    from adapterscan.static.formats.model import Family

    files = [f for f in (static.adapter.files if static.adapter else ()) if f.modules]
    return files if files and all(f.family is Family.DIFFUSION for f in files) else []


def _run_probe(src: FetchedSource, static: StaticResult, base: ResolvedBase, opts: ScanOptions,
               emit: Emitter, progress: Progress | None) -> JSONValue:
    merged: MergedModel | None = None  # None: the adapter in src, merged into the base
    if src.full_checkpoint:
        delta = static.results.get("delta")
        if not (isinstance(delta, dict) and delta.get("matched") is True):
            # The delta stage could not match the checkpoint to this base and said why (a
            # stage error: the scan is incomplete); its outputs mean nothing against it.
            return None
        if delta.get("base_dir") != str(base.folder):  # a caller-chosen WeightOptions.base_dir
            emit.error("probe", f"the checkpoint was matched against {delta.get('base_dir')}, "
                       f"not the probe's base {base.label}: not probed")
            return None
        from adapterscan.probe.merged import CheckpointLoad

        merged = CheckpointLoad(src.root)
    diffusion = _diffusion_only(static)
    if diffusion:  # evidence that nothing was measured, never a probe pass
        components = sorted({m.component or "?" for f in diffusion for m in f.modules})
        reason = (f"behavioral probe does not apply: {diffusion[0].path} is a "
                  f"{diffusion[0].format.value} LoRA for a diffusion model "
                  f"({', '.join(components)})")
        emit.emit(NOT_APPLICABLE, reason, file=diffusion[0].path,
                  evidence={"files": list[JSONValue]([f.path for f in diffusion]),
                            "components": list[JSONValue](components), "base": base.label})
        return {"applies": False, "reason": reason}
    # Imported here: torch, transformers and peft cost seconds and only the probe needs them.
    from adapterscan.probe.interface import run_probe

    try:
        with quiet():  # transformers / peft warnings about our own use of them
            return run_probe(src, static, base, emit, opts.probe, progress, opts.probe_cache,
                             merged)
    except Exception as exc:  # the probe failing makes the scan incomplete, not clean
        emit.error("probe", f"{type(exc).__name__}: {exc}")
        return None
