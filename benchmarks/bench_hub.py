"""Hub fetcher: bytes transferred to reject hostile headers; scan time vs a plain download.

Everything runs against tests/hubserver.py on 127.0.0.1 (no other address is contacted).
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_DISABLE_XET", "1")
os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"

from huggingface_hub import hf_hub_download

from adapterscan.emit import Emitter
from adapterscan.fetch.hub import HubFetcher
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.pipeline import ScanOptions, scan
from adapterscan.rules.loader import load_ruleset
from adapterscan.source import FetchLimits
from benchmarks.common import BenchTable
from tests import factories
from tests.hubserver import HubServer

MIB = 1024 * 1024
HOSTILE_BODY = 64 * MIB
CLEAN_LAYERS = 32  # r=16 q/k/v/o on hidden 1024: 16 MiB of float32 weights
REPEATS = 5


MODULES = ("q_proj", "k_proj", "v_proj", "o_proj")


def _card() -> dict[str, bytes]:
    cfg = factories.adapter_config(r=16, lora_alpha=32, target_modules=list(MODULES))
    return {"adapter_config.json": json.dumps(cfg).encode(),
            "README.md": b"---\nbase_model: org/base\n---\n# bench\n"}


def _hostile_cases() -> list[tuple[str, bytes]]:
    body = b"\0" * HOSTILE_BODY
    offsets = {"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 10**12]}}
    return [
        ("declared header length 2**40", factories.raw_safetensors(b"{}", body,
                                                                   header_len=2**40)),
        ("header not JSON (1 KiB)", factories.raw_safetensors(b"{" + b"x" * 1023, body)),
        ("offsets outside the file", factories.raw_safetensors(offsets, body)),
    ]


def _time(fn: object) -> float:
    t0 = time.perf_counter()
    fn()  # type: ignore[operator]
    return time.perf_counter() - t0


def run() -> BenchTable:
    rows: list[tuple[str, ...]] = []
    with HubServer() as hub, tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        os.environ["HF_HOME"] = str(base / "hf_home")
        for i, (label, weights) in enumerate(_hostile_cases()):
            repo = f"bench/hostile{i}"
            files = {**_card(), "adapter_model.safetensors": weights}
            hub.add_repo(repo, files)
            size = sum(len(v) for v in files.values())
            hub.bytes_sent.clear()
            opts = HubOptions(endpoint=hub.url, cache_dir=base / f"h{i}")
            report = scan(f"hf://{repo}", options=ScanOptions(hub=opts))
            sent = sum(hub.bytes_sent.values())
            rejected = "AS102" in {f.rule_id for f in report.findings}
            rows.append((f"reject hostile header: {label}", f"{size / MIB:.1f} MiB",
                         f"{hub.sent(repo, 'adapter_model.safetensors')} B of weights, "
                         f"{sent} B in all", f"{100 * sent / size:.5f}%",
                         f"{report.verdict.decision.value}, AS102={rejected}"))

        tensors = factories.lora_tensors(layers=CLEAN_LAYERS, hidden=1024, r=16, modules=MODULES)
        files = {**_card(), "adapter_model.safetensors": factories.safetensors_bytes(tensors)}
        sha = hub.add_repo("bench/clean", files)
        size = sum(len(v) for v in files.values())
        fetches, downloads = [], []
        rules = load_ruleset()
        for k in range(REPEATS):
            opts = HubOptions(endpoint=hub.url, cache_dir=base / f"c{k}")
            fetcher = HubFetcher("bench/clean", sha, opts, FetchLimits())
            fetches.append(_time(lambda f=fetcher: f.fetch(Emitter(rules))))
            cache = base / f"d{k}"
            downloads.append(_time(lambda c=cache: [
                hf_hub_download("bench/clean", p, revision=sha, endpoint=hub.url, token=False,
                                cache_dir=c) for p in files]))
        f, d = statistics.median(fetches), statistics.median(downloads)
        report = scan(f"hf://bench/clean@{sha}",
                      options=ScanOptions(hub=HubOptions(endpoint=hub.url, cache_dir=base / "s")))
        t = report.timings
        static = sum(v for k, v in t.items() if k.startswith("static."))
        mib = f"{size / MIB:.1f} MiB"
        rows.append(("plain hf_hub_download of the same files", mib, f"{d:.3f} s", "1.00x", ""))
        rows.append(("fetch stage: pin, list, triage headers, download, verify", mib,
                     f"{f:.3f} s", f"{f / d:.2f}x download", ""))
        rows.append(("whole scan (one run)", mib, f"{t['total']:.3f} s",
                     f"{t['total'] / d:.2f}x download",
                     f"{report.verdict.decision.value}; fetch {t['fetch']:.2f} s, "
                     f"static {static:.2f} s"))
    return BenchTable(
        title="Hub fetcher (local Hub-compatible server on 127.0.0.1)",
        headers=("case", "repo size", "transferred / time", "share of repo / ratio", "verdict"),
        rows=tuple(rows),
        notes=("Hostile rows: bytes the server sent for the whole scan (headers read with Range "
               "requests; target < 0.1% of the repo). Download and fetch rows: median of "
               f"{REPEATS} runs, each with a fresh cache. The whole-scan row adds the static "
               "analyzers of this build (weight statistics dominate); it is one run."),
    )
