"""The secondary rows of bench_static: header triage of a 10 GB sparse file, and full in-process
scans of a kohya SDXL LoRA (every module analysed) and of a GGUF LoRA."""

from __future__ import annotations

import json
import statistics
import struct
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.hashing import sha256_file
from adapterscan.pipeline import scan
from adapterscan.rules.model import RuleSet
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors import header as safetensors_header


def _best(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
        if best > 20:  # a stage this slow dominates anyway; keep the benchmark bounded
            break
    return best


def triage(root: Path, rules: RuleSet) -> list[float]:
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


def format_rows(tmp: Path, rules: RuleSet) -> tuple[list[tuple[str, ...]], list[str]]:
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




def triage_row(root: Path, rules: RuleSet) -> tuple[str, ...]:
    times = triage(root, rules)
    return ("header triage, 10 GB sparse file (median of 20)",
            f"{statistics.median(times) * 1e3:.2f} ms", f"max {max(times) * 1e3:.2f} ms",
            "target < 50 ms")
