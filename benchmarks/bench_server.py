"""Admission service: admissions per second (static scans) and webhook-to-verdict latency."""

from __future__ import annotations

import sqlite3
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.common import BenchTable
from tests.hubserver import HubServer
from tests.integrations.server.service import SECRET, Service, adapter_files, delivery

N = 100


def run() -> BenchTable:
    with tempfile.TemporaryDirectory() as tmp, HubServer() as hub:
        shas = {f"bench/lora-{i}": hub.add_repo(f"bench/lora-{i}", adapter_files(i))
                for i in range(N)}
        svc = Service(Path(tmp), hub)
        svc.start()
        try:
            t0 = time.perf_counter()
            with ThreadPoolExecutor(max_workers=8) as pool:
                answers = list(pool.map(lambda rs: httpx.post(
                    f"{svc.url}/hooks/huggingface", json=delivery(*rs),
                    headers={"X-Webhook-Secret": SECRET}, timeout=30), shas.items()))
            accept = time.perf_counter() - t0
            assert all(a.status_code == 202 for a in answers)
            while True:
                done = httpx.get(f"{svc.url}/healthz").json()["jobs"]["done"]
                if done == N:
                    break
                time.sleep(0.1)
            wall = time.perf_counter() - t0
        finally:
            svc.stop()
        with sqlite3.connect(svc.db) as db:
            lat = sorted(r - c for c, r in db.execute(
                "SELECT j.created_at, v.recorded_at FROM jobs j JOIN verdicts v "
                "ON v.job_id = j.id"))
    p = statistics.quantiles(lat, n=100)
    return BenchTable(
        title=f"Admission service: {N} webhook deliveries, 2 scan workers, static scans",
        headers=("deliveries", "accept all (s)", "admissions/s", "p50 latency (s)",
                 "p99 latency (s)"),
        rows=((str(N), f"{accept:.2f}", f"{N / wall:.1f}", f"{p[49]:.2f}", f"{p[98]:.2f}"),),
        notes="Latency is from the job's commit (before the 202) to its recorded verdict, read "
              "from the queue's database; deliveries arrive all at once, so it includes "
              "queueing. Each scan fetches the repo from a local Hub-compatible server.")
