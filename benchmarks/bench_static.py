"""Static scan of a 200 MB adapter folder vs sha256 of the same bytes; 10 GB sparse header triage;
full scans of a kohya SDXL LoRA (every module analysed) and of a GGUF LoRA.

Targets (issue 2): full static scan / sha256 <= 1.3 in the same run; triage < 50 ms.
"""

from __future__ import annotations

import json
import statistics
import struct
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.errors import RuleError
from adapterscan.hashing import sha256_file
from adapterscan.pipeline import scan
from adapterscan.policy.policy import Policy
from adapterscan.rules.catalog import known_checks
from adapterscan.rules.loader import default_signatures_dir, load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors import data as safetensors_data
from adapterscan.static.safetensors import header as safetensors_header
from benchmarks.common import BenchTable

HIDDEN, RANK, LAYERS = 4096, 64, 25  # 25 layers x 8 tensors x 1 MiB = 200 MiB
MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def _folder(root: Path) -> Path:
    """A Llama-shaped LoRA adapter: fp32 layers, then fp16 layers at twice the rank (1 MiB each)."""
    from tests.factories import adapter_config, safetensors_bytes

    rng = np.random.default_rng(0)
    tensors: dict[str, np.ndarray] = {}
    for i in range(LAYERS):
        dtype, r = (np.float32, RANK) if i % 2 == 0 else (np.float16, RANK * 2)
        for m in MODULES:
            p = f"base_model.model.model.layers.{i}.self_attn.{m}"
            tensors[f"{p}.lora_A.weight"] = rng.normal(0, 0.02, (r, HIDDEN)).astype(dtype)
            tensors[f"{p}.lora_B.weight"] = rng.normal(0, 0.02, (HIDDEN, r)).astype(dtype)
    root.mkdir(parents=True, exist_ok=True)
    cfg = adapter_config(r=RANK, lora_alpha=2 * RANK, target_modules=list(MODULES))
    (root / "adapter_config.json").write_text(json.dumps(cfg, indent=2))
    (root / "adapter_model.safetensors").write_bytes(safetensors_bytes(tensors))
    return root


def _best(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if best > 20:  # a stage this slow dominates anyway; keep the benchmark bounded
            break
    return best


def _ruleset() -> tuple[RuleSet, str]:
    """The full rule set; while other analyzers are half-written, the loadable subset."""
    try:
        return load_ruleset(), "full rule set"
    except RuleError:
        import tomllib

        root = default_signatures_dir()
        checks = {tomllib.loads(p.read_text())["check"] for p in (root / "rules").glob("*.toml")}
        return (load_ruleset(root, checks=frozenset(checks & known_checks())),
                "rules present in signatures/ (some analyzers' rules still missing)")


def _triage(root: Path, rules: RuleSet) -> list[float]:
    size = 10 * 1024**3
    hb = json.dumps({"__metadata__": {"format": "pt"},
                     "w": {"dtype": "F16", "shape": [size // 2],
                           "data_offsets": [0, size]}}, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    path = root / "sparse.safetensors"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hb)) + hb)
        fh.truncate(8 + len(hb) + size)
    times = []
    for _ in range(20):
        emit = Emitter(rules)
        t0 = time.perf_counter()
        header = safetensors_header.read_header_file(path, path.name, emit, StaticLimits())
        times.append(time.perf_counter() - t0)
        assert header is not None and header.tensors[0].end == size
    path.unlink()
    return times


# The formats rows (issue 14): a kohya SDXL LoRA as sd-scripts writes it (UNet + both text
# encoders, dim 32, fp16) and a llama.cpp GGUF LoRA of a Llama-3-8B-shaped model (r 16, f16).
SDXL_RANK = 32
GGUF_LAYERS, GGUF_RANK = 32, 16
GGUF_SHAPES = {"self_attn.q_proj": (4096, 4096), "self_attn.k_proj": (1024, 4096),
               "self_attn.v_proj": (1024, 4096), "self_attn.o_proj": (4096, 4096),
               "mlp.gate_proj": (14336, 4096), "mlp.up_proj": (14336, 4096),
               "mlp.down_proj": (4096, 14336)}


def _sdxl(root: Path) -> Path:
    from tests.static.factories_formats import (
        KOHYA_META,
        kohya_from_shapes,
        sdxl_kohya_shapes,
        write_st,
    )

    tensors = kohya_from_shapes(sdxl_kohya_shapes(), SDXL_RANK, SDXL_RANK / 2)
    return write_st(root, "sdxl_style.safetensors", tensors, KOHYA_META)


def _gguf(root: Path) -> Path:
    from tests.static.factories_formats import write_gguf

    rng = np.random.default_rng(0)
    factors = {f"model.layers.{i}.{m}": (
        rng.normal(0, 0.02, (GGUF_RANK, inp)).astype(np.float32),
        rng.normal(0, 0.005, (out, GGUF_RANK)).astype(np.float32))
        for i in range(GGUF_LAYERS) for m, (out, inp) in GGUF_SHAPES.items()}
    write_gguf(root / "adapter.gguf", factors, alpha=32.0, n_head=32, n_kv_head=8,
               dtype=np.float16)
    return root


def _format_rows(tmp: Path, rules: RuleSet) -> tuple[list[tuple[str, ...]], list[str]]:
    rows: list[tuple[str, ...]] = []
    notes: list[str] = []
    for label, build in (("kohya SDXL LoRA, dim 32 fp16", _sdxl),
                         ("GGUF LoRA, Llama-3-8B shapes r 16 f16", _gguf)):
        folder = build(tmp / label.split()[0])
        files = sorted(p for p in folder.iterdir() if p.is_file())
        total = sum(p.stat().st_size for p in files)
        for p in files:
            sha256_file(p)
        t_sha = _best(lambda files=files: [sha256_file(p) for p in files])
        t_scan = _best(lambda folder=folder: scan(folder, ruleset=rules))
        report = scan(folder, ruleset=rules)
        weights = report.results.get("weights")
        modules = len(weights["modules"]) if isinstance(weights, dict) and isinstance(
            weights.get("modules"), list) else 0
        mb = total / 1e6
        rows.append((f"full static scan, {label} ({mb:.0f} MB, {modules} modules analysed)",
                     f"{t_scan * 1e3:.0f} ms", f"{mb / t_scan:.0f} MB/s",
                     f"{t_scan / t_sha:.2f}"))
        stages = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in report.timings.items()
                           if k.startswith("static."))
        notes.append(f"{label}: {report.verdict.decision.value}, complete={report.complete}, "
                     f"{len(report.findings)} findings; sha256 {t_sha * 1e3:.0f} ms; {stages}.")
    return rows, notes


def run() -> BenchTable:
    rules, rules_note = _ruleset()
    with tempfile.TemporaryDirectory(prefix="bench-static-") as tmp:
        folder = _folder(Path(tmp) / "adapter")
        files = sorted(p for p in folder.iterdir() if p.is_file())
        total = sum(p.stat().st_size for p in files)
        for p in files:  # warm the page cache so both sides read from memory
            sha256_file(p)
        t_sha = _best(lambda: [sha256_file(p) for p in files])
        t_scan = _best(lambda: scan(folder, ruleset=rules))
        no_anywhere = Policy(params={"AS233": {"search_anywhere": False}})
        t_scan_starts = _best(lambda: scan(folder, ruleset=rules, policy=no_anywhere))
        report = scan(folder, ruleset=rules)
        st_file = folder / "adapter_model.safetensors"

        def analyzer_only(anywhere: bool) -> None:
            r = rules.with_params({"AS233": {"search_anywhere": anywhere}})
            emit = Emitter(r)
            h = safetensors_header.read_header_file(st_file, st_file.name, emit, StaticLimits())
            assert h is not None
            safetensors_data.scan_tensor_data(st_file, h, emit, StaticLimits())

        t_st = _best(lambda: analyzer_only(True))
        t_st_starts = _best(lambda: analyzer_only(False))
        triage = _triage(Path(tmp), rules)
        format_rows, format_notes = _format_rows(Path(tmp), rules)
    mb = total / 1e6
    rows = (
        ("sha256 of all files (hashlib, 4 MiB reads)", f"{t_sha * 1e3:.0f} ms",
         f"{mb / t_sha:.0f} MB/s", "1.00"),
        ("full static scan, pipeline.scan (default rules)", f"{t_scan * 1e3:.0f} ms",
         f"{mb / t_scan:.0f} MB/s", f"{t_scan / t_sha:.2f}"),
        ("full static scan, AS233 search_anywhere=false", f"{t_scan_starts * 1e3:.0f} ms",
         f"{mb / t_scan_starts:.0f} MB/s", f"{t_scan_starts / t_sha:.2f}"),
        ("safetensors analyzer alone (header + data)", f"{t_st * 1e3:.0f} ms",
         f"{mb / t_st:.0f} MB/s", f"{t_st / t_sha:.2f}"),
        ("safetensors analyzer alone, search_anywhere=false", f"{t_st_starts * 1e3:.0f} ms",
         f"{mb / t_st_starts:.0f} MB/s", f"{t_st_starts / t_sha:.2f}"),
        ("header triage, 10 GB sparse file (median of 20)",
         f"{statistics.median(triage) * 1e3:.2f} ms", f"max {max(triage) * 1e3:.2f} ms",
         "target < 50 ms"),
        *format_rows,
    )
    stage_errors = len(report.errors)
    stages = ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in report.timings.items()
                       if k.startswith("static.") or k == "hash_wait")
    notes = (f"Folder: {len(files)} files, {total / 2**20:.0f} MiB ({LAYERS} layers x "
             f"{len(MODULES)} modules, fp32 r={RANK} and fp16 r={2 * RANK}, hidden {HIDDEN}). "
             f"Best of 3, page cache warm; the pipeline hashes in a background thread while the "
             f"analyzers run. Ratio target <= 1.3. Rules: {rules_note}. Stage errors in the "
             f"scan (analyzers not yet implemented count here): {stage_errors}. "
             f"Findings: {len(report.findings)}. Stage timings of one default scan: {stages}. "
             + " ".join(format_notes))
    return BenchTable(title="Static analysis vs sha256", headers=("what", "time", "throughput",
                                                                   "ratio to sha256"),
                      rows=rows, notes=notes)
