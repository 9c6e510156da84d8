"""Weight statistics on a Llama-70B-shaped LoRA adapter: low-rank path vs forming ΔW densely.

Adapter: 80 layers × q/k/v/o, r = 64, hidden 8192, kv 1024, fp16 (500 MiB), written to a temp
folder. The low-rank analysis (`analyze_weights`) runs over every module. The dense reference —
ΔW = s·B·A in float32, then ‖ΔW‖_F and its singular values — is timed on one q_proj-shaped and
one k_proj-shaped module and extrapolated to 80 × (2 q/o-shaped + 2 k/v-shaped) modules: running
it on all 320 would take hours here. Environment: BENCH_WEIGHTS_LAYERS (default 80).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.rules.loader import load_ruleset
from adapterscan.static.weights.alignment import parse_header
from adapterscan.static.weights.analysis import WeightOptions, analyze_weights
from benchmarks.adapters import write_lora
from benchmarks.common import BenchTable

HIDDEN, KV, R = 8192, 1024, 64
SHAPES = {"q_proj": HIDDEN, "k_proj": KV, "v_proj": KV, "o_proj": HIDDEN}


def _write_adapter(folder: Path, layers: int) -> int:
    """Write the adapter tensor by tensor (never the whole file in memory); returns max bytes."""
    shapes = {m: (out, HIDDEN) for m, out in SHAPES.items()}
    return write_lora(folder, layers, shapes, lambda i: (np.float16, R), std=0.01)


def _dense_module(out: int, rng: np.random.Generator, svd: bool) -> tuple[float, float | None]:
    """Seconds to form ΔW and take ‖ΔW‖_F; and to take its singular values (float32)."""
    b = (rng.standard_normal((out, R), dtype=np.float32) * 0.01).astype(np.float16)
    a = (rng.standard_normal((R, HIDDEN), dtype=np.float32) * 0.01).astype(np.float16)
    t0 = time.perf_counter()
    dw = 2.0 * (b.astype(np.float32) @ a.astype(np.float32))
    float(np.linalg.norm(dw))
    t1 = time.perf_counter()
    if not svd:
        return t1 - t0, None
    np.linalg.svd(dw, compute_uv=False)
    return t1 - t0, time.perf_counter() - t1


def run() -> BenchTable:
    layers = int(os.environ.get("BENCH_WEIGHTS_LAYERS", "80"))
    with tempfile.TemporaryDirectory(prefix="bench_weights") as tmp:
        folder = Path(tmp)
        t0 = time.perf_counter()
        largest = _write_adapter(folder, layers)
        t_write = time.perf_counter() - t0
        size = (folder / "adapter_model.safetensors").stat().st_size
        rules = load_ruleset()
        header = parse_header(folder / "adapter_model.safetensors", "adapter_model.safetensors")
        cfg = json.loads((folder / "adapter_config.json").read_text())
        opts = WeightOptions(use_default_baseline=False)
        headers = {"adapter_model.safetensors": header}
        t0 = time.perf_counter()
        result = analyze_weights(folder, headers, cfg, Emitter(rules), opts)
        t_low = time.perf_counter() - t0
        del result
        tracemalloc.start()
        result = analyze_weights(folder, headers, cfg, Emitter(rules), opts)
        kept, peak = tracemalloc.get_traced_memory()  # kept: the returned result, still alive
        tracemalloc.stop()
    assert isinstance(result, dict)
    n_modules = len(result["modules"])  # type: ignore[arg-type]
    rng = np.random.default_rng(1)
    q_form, q_svd = _dense_module(HIDDEN, rng, os.environ.get("BENCH_WEIGHTS_DENSE_SVD_Q") == "1")
    k_form, k_svd = _dense_module(KV, rng, True)
    dense_form = layers * 2 * (q_form + k_form)
    mib = 1024 * 1024
    rows: list[tuple[str, str]] = [
        ("adapter", f"{layers} layers × 4 modules = {n_modules} modules, r={R}, fp16, "
                    f"{size / mib:.0f} MiB (written in {t_write:.1f} s)"),
        ("low-rank analyze_weights, all modules", f"{t_low:.2f} s "
                                                  f"({1000 * t_low / n_modules:.1f} ms/module)"),
        ("dense ΔW + ‖ΔW‖_F, q-shaped / k-shaped module (measured)",
         f"{q_form:.2f} s / {k_form:.3f} s"),
        (f"dense ΔW + ‖ΔW‖_F, all modules (extrapolated ×{2 * layers} each)",
         f"{dense_form:.0f} s"),
        ("**ratio low-rank / dense ΔW + ‖ΔW‖_F**", f"**{100 * t_low / dense_form:.2f} %**"),
        ("dense singular values, k-shaped module (measured, on top of forming ΔW)",
         f"{k_svd:.2f} s" if k_svd is not None else "not run"),
        ("dense singular values, q-shaped module (measured, on top of forming ΔW)",
         f"{q_svd:.1f} s" if q_svd is not None else
         "not run (minutes per module here; BENCH_WEIGHTS_DENSE_SVD_Q=1 runs it)"),
    ]
    if q_svd is not None and k_svd is not None:
        dense_svd = dense_form + layers * 2 * (q_svd + k_svd)
        rows += [("dense ΔW + SVD, all modules (extrapolated)", f"{dense_svd:.0f} s"),
                 ("ratio low-rank / dense ΔW + SVD", f"{100 * t_low / dense_svd:.3f} %")]
    rows += [
        ("peak traced memory during analyze_weights", f"{peak / mib:.2f} MiB"),
        ("of which the returned result (per-module records, grows with module count)",
         f"{kept / mib:.2f} MiB"),
        ("largest single tensor (stored)", f"{largest / mib:.2f} MiB"),
        ("peak / largest tensor", f"{peak / largest:.2f}×"),
        ("**peak working memory (peak − returned result) / largest tensor**",
         f"**{(peak - kept) / largest:.2f}×**"),
    ]
    load = os.getloadavg()
    notes = ("Low-rank timing: one run right after writing the file (page cache warm), one "
             "thread (no executor), factors mapped and reduced to float32 Grams summed in "
             "float64, float64 r×r algebra; kurtosis is the sampled-grid estimate "
             "(256×256 entries per module) because exact Khatri-Rao costs more than dense at "
             "r=64. Dense reference: float32 ΔW, `np.linalg.norm` and "
             "`np.linalg.svd(compute_uv=False)`, measured on one module of each shape and "
             "multiplied by the module count (not run on all modules). Peak memory: tracemalloc "
             "over a second run of analyze_weights, result records included. BLAS threads: "
             "whatever the environment sets (docs/weights.md gives the command used). Load "
             f"average at the end: {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f}.")
    return BenchTable(title="Weight statistics: low-rank vs dense (Llama-70B LoRA shapes)",
                      headers=("measure", "value"), rows=tuple(rows), notes=notes)
