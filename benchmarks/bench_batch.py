"""Batch throughput, local engine vs Ray engine, on the same 100 generated adapters."""

from __future__ import annotations

import resource
import tempfile
import time
from pathlib import Path

from adapterscan.integrations.batch import BatchOptions, run_batch
from benchmarks.common import BenchTable
from tests.factories import write_adapter

N = 100


def _cpu_children() -> float:
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def run() -> BenchTable:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        # r=16 on q/k/v/o of a 4-layer, hidden-1024 model: ~2 MB per adapter.
        sources = [str(write_adapter(root / f"a{i}", seed=i, layers=4, hidden=1024, r=16,
                                     modules=("q_proj", "k_proj", "v_proj", "o_proj")))
                   for i in range(N)]
        size = sum(f.stat().st_size for f in root.rglob("*") if f.is_file()) / N
        per_engine = {}
        for engine in ("local", "ray"):
            out = root / f"{engine}.jsonl"
            c0, t0 = _cpu_children(), time.perf_counter()
            results = run_batch(sources, out, engine=engine,
                                options=BatchOptions(workers=2, timeout_s=300))
            wall = time.perf_counter() - t0
            cpu = _cpu_children() - c0
            per_engine[engine] = {r.source: r.comparable() for r in results}
            item_s = sum(r.seconds for r in results) / len(results)
            rows.append((engine, str(len(results)), f"{wall:.1f}", f"{len(results) / wall:.1f}",
                         f"{item_s * 1000:.0f}",
                         f"{cpu / len(results) * 1000:.0f}" if engine == "local" else "n/a"))
        same = per_engine["local"] == per_engine["ray"]
    return BenchTable(
        title=f"Batch: {N} adapters ({size / 1e6:.1f} MB each), 2 workers",
        headers=("engine", "items", "wall s", "items/s", "scan ms/item (in worker)",
                 "CPU ms/item (worker processes)"),
        rows=tuple(rows),
        notes=f"Results identical item for item between engines: {same}. Ray's wall time "
              "includes starting and stopping a local Ray instance; the local engine's "
              "includes starting its worker processes.")
