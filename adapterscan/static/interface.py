"""The static stage: inventory, safetensors, pickles, adapter_config, weight statistics.

Each analyzer is a function taking the files it needs and an Emitter; none of them raises on
hostile input (they emit findings) and any unexpected exception is recorded as a stage error for
that file, which makes the scan incomplete rather than clean.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from pathlib import Path

from adapterscan.emit import Emitter, Recorder
from adapterscan.findings import JSONValue
from adapterscan.source import FetchedSource
from adapterscan.static.config import adapter_config
from adapterscan.static.formats.gguf import GgufFile
from adapterscan.static.formats.gguf_scan import scan_gguf_file
from adapterscan.static.formats.metadata import check_metadata
from adapterscan.static.formats.model import AdapterModel
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.formats.torch_archive import read_torch_tables
from adapterscan.static.inventory import inventory
from adapterscan.static.layout import SafetensorsHeader, TensorTable
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import FileClass, StaticResult
from adapterscan.static.options import StaticOptions
from adapterscan.static.pickle import ops as pickle_ops
from adapterscan.static.safetensors import checks as safetensors_checks
from adapterscan.static.safetensors import data as safetensors_data
from adapterscan.static.safetensors import header as safetensors_header
from adapterscan.static.weights import analysis as weights
from adapterscan.static.weights.trigger_tokens import TokenCandidate

Progress = Callable[[str], None]


def _guarded(emit: Emitter, stage: str, path: str | None, fn: Callable[..., object],
             *args: object) -> object:
    try:
        return fn(*args)
    except MemoryError:
        emit.error(stage, "ran out of memory", path)
    except Exception as exc:  # an analyzer bug must make the scan incomplete, never clean
        emit.error(stage, f"internal error {type(exc).__name__}: {exc}", path)
    return None


@dataclass(frozen=True)
class _DataScan:
    path: str
    result: Future[tuple[Recorder, float]]


def _measure(path: Path, header: SafetensorsHeader, limits: StaticLimits,
             anywhere: bool) -> tuple[Recorder, float]:
    t0 = time.perf_counter()
    rec = safetensors_data.measure_tensor_data(path, header, limits, anywhere)
    return rec, time.perf_counter() - t0


def _data_scan(rel: str, path: Path, header: SafetensorsHeader, limits: StaticLimits,
               anywhere: bool, executor: Executor | None) -> _DataScan:
    """The tensor-data scan (non-finite values, signatures) of one data section."""
    job: Future[tuple[Recorder, float]]
    if executor is not None:
        job = executor.submit(_measure, path, header, limits, anywhere)
    else:
        job = Future()
        try:
            job.set_result(_measure(path, header, limits, anywhere))
        except Exception as exc:  # reported like a worker's failure, below
            job.set_exception(exc)
    return _DataScan(rel, job)


def run_static(src: FetchedSource, emit: Emitter, options: StaticOptions,
               timings: dict[str, float], progress: Progress | None = None,
               executor: Executor | None = None) -> StaticResult:
    """The static stage. With an `executor`, each safetensors data scan and each module's factor
    statistics run there (mostly numpy, BLAS and Hyperscan, which release the GIL) as its
    workers free up; findings are emitted on this thread in a fixed order (data scans replayed
    after the weights, file by file), so a report never depends on timing."""
    limits = options.limits
    t0 = time.perf_counter()
    inv = inventory.build_inventory(src, emit, limits)
    timings["static.inventory"] = time.perf_counter() - t0

    headers: dict[str, SafetensorsHeader] = {}
    scans: list[_DataScan] = []
    anywhere = bool(emit.param(safetensors_checks.EMBEDDED_MAGIC, "search_anywhere"))
    t0 = time.perf_counter()
    for item in inv.of_class(FileClass.SAFETENSORS):
        if item.path in src.remote_only:
            continue
        if progress:
            progress(f"safetensors {item.path}")
        path = src.root / item.path
        header = _guarded(emit, "safetensors", item.path, safetensors_header.read_header_file,
                          path, item.path, emit, limits)
        if isinstance(header, SafetensorsHeader):
            headers[item.path] = header
            if limits.scan_tensor_data:
                scans.append(_data_scan(item.path, path, header, limits, anywhere, executor))
    timings["static.safetensors"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    ggufs: dict[str, GgufFile] = {}
    for item in inv.of_class(FileClass.GGUF):
        if item.path in src.remote_only:
            continue
        if progress:
            progress(f"gguf {item.path}")
        gguf = _guarded(emit, "gguf", item.path, scan_gguf_file, src.root / item.path,
                        item.path, emit, limits)
        if isinstance(gguf, GgufFile):
            ggufs[item.path] = gguf
    timings["static.gguf"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    proven: set[str] = set()  # pickles shown to hold only tensors and allowlisted containers
    for item in inv.of_class(FileClass.PICKLE, FileClass.ZIP):
        if item.path in src.remote_only:
            continue
        if progress:
            progress(f"pickle {item.path}")
        path = src.root / item.path
        if _guarded(emit, "pickle", item.path, pickle_ops.analyze_pickle_file,
                    path, item.path, emit, limits) is True:
            proven.add(item.path)
    inventory.pickle_only_weights(inv, emit, proven)
    # PEFT `.bin` weights join the safetensors tables: config checks and statistics read both.
    local = [i.path for i in inv.items if i.path not in src.remote_only]
    bins = _guarded(emit, "pickle", None, read_torch_tables, src.root, local, headers, emit,
                    limits)
    tables: dict[str, TensorTable] = dict(headers)
    if isinstance(bins, dict):
        tables.update(bins)
        for rel, table in sorted(bins.items()):
            for section in table.storage_sections() if limits.scan_tensor_data else ():
                scans.append(_data_scan(rel, src.root / rel, section, limits, anywhere,
                                        executor))
    timings["static.pickle"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    config = _guarded(emit, "adapter_config", "adapter_config.json",
                      adapter_config.analyze_adapter_config, src.root, inv, tables, emit, limits)
    cfg: Mapping[str, JSONValue] | None = None
    configs: Mapping[str, Mapping[str, JSONValue]] = {}
    prompt_files: frozenset[str] = frozenset()
    results: dict[str, JSONValue] = {}
    if isinstance(config, adapter_config.AdapterConfigResult):
        cfg, configs, prompt_files = config.config, config.configs, config.prompt_files
        results["adapter_config"] = config.summary
    timings["static.adapter_config"] = time.perf_counter() - t0

    if src.full_checkpoint:  # a whole model: what changed against its base, not an adapter
        found = _checkpoint(src, headers, emit, options, results, timings, progress, executor)
        _replay_data_scans(scans, emit, timings)
        return StaticResult(inventory=inv, headers=headers, adapter_config=cfg, results=results,
                            trigger_candidates=found)

    t0 = time.perf_counter()
    model = _guarded(emit, "formats", None, read_adapters, src.root, tables, ggufs, configs)
    if isinstance(model, AdapterModel):
        results["adapters"] = [f.summary() for f in model.files]  # type: ignore[misc]
        _guarded(emit, "formats", None, check_metadata, model, configs, emit)
    timings["static.formats"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    if progress:
        progress("weight statistics")
    analysed = None
    if isinstance(model, AdapterModel):
        analysed = _guarded(emit, "weights", None, weights.weight_analysis, src.root, tables,
                            cfg, emit, options.weights, model, executor, prompt_files)
    triggers: tuple[TokenCandidate, ...] = ()
    if isinstance(analysed, tuple):
        stats, triggers = analysed
        if stats is not None:
            results["weights"] = stats
    timings["static.weights"] = time.perf_counter() - t0
    _replay_data_scans(scans, emit, timings)
    return StaticResult(inventory=inv, headers=headers, adapter_config=cfg, results=results,
                        adapter=model if isinstance(model, AdapterModel) else None,
                        trigger_candidates=triggers)


def _checkpoint(src: FetchedSource, headers: Mapping[str, SafetensorsHeader], emit: Emitter,
                options: StaticOptions, results: dict[str, JSONValue],
                timings: dict[str, float], progress: Progress | None,
                executor: Executor | None) -> tuple[TokenCandidate, ...]:
    """The delta scan of a full checkpoint against options.weights.base_dir; without a base,
    a skip that says how to get one (its weights are otherwise not analysed)."""
    if options.weights.base_dir is None:
        emit.skip(".", "a full model checkpoint (config.json and weights, no "
                  "adapter_config.json): its weights are analysed only as a delta against its "
                  "base; pass --base auto or --base FOLDER")
        return ()
    from adapterscan.static.delta.analysis import DeltaResult, analyze_checkpoint

    t0 = time.perf_counter()
    if progress:
        progress("delta against the base")
    done = _guarded(emit, "delta", None, analyze_checkpoint, src.root, headers, emit, options,
                    executor, progress)
    timings["static.delta"] = time.perf_counter() - t0
    if not isinstance(done, DeltaResult):
        return ()
    results.update(done.results)
    return done.triggers


def _replay_data_scans(scans: list[_DataScan], emit: Emitter,
                       timings: dict[str, float]) -> None:
    """Wait for the data scans and report what they found; a failed one is a stage error."""
    t0 = time.perf_counter()
    spent = 0.0
    for scan in scans:
        try:
            rec, seconds = scan.result.result()
        except MemoryError:
            emit.error("safetensors", "ran out of memory", scan.path)
            continue
        except Exception as exc:  # an analyzer bug must make the scan incomplete, never clean
            emit.error("safetensors", f"internal error {type(exc).__name__}: {exc}", scan.path)
            continue
        rec.replay(emit)
        spent += seconds
    timings["static.tensor_data"] = spent
    timings["static.tensor_data_wait"] = time.perf_counter() - t0
