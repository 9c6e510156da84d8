"""Admission service on SQLite and on PostgreSQL, one and three replicas: deliveries accepted per
second, admissions per second end to end, webhook-to-verdict latency (static scans)."""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from pathlib import Path

import httpx

from benchmarks.common import BenchTable
from tests.hubserver import HubServer
from tests.integrations.server.service import SECRET, Service, adapter_files, delivery

N = 150
ROUNDS = 3
_LATENCY = ("SELECT j.created_at, v.recorded_at FROM jobs j JOIN verdicts v "
            "ON v.job_id = j.id")


def _latencies(db: str | Path) -> list[float]:
    """From the job's commit (before its 202) to its verdict, both stamped by the database."""
    if isinstance(db, Path):
        import sqlite3

        with sqlite3.connect(db) as conn:
            rows = conn.execute(_LATENCY).fetchall()
    else:
        import psycopg

        with psycopg.connect(db) as pg:
            rows = pg.execute(_LATENCY).fetchall()
    return sorted(r - c for c, r in rows)


Result = tuple[float, float, float, float]  # accepted/s, admissions/s, p50 s, p99 s


def _measure(tmp: Path, hub: HubServer, shas: dict[str, str], db: str | Path,
             replicas: int, workers: int) -> Result:
    services = [Service(tmp, hub, db=db, args=("--workers", str(workers), "--lease", "30"))
                for _ in range(replicas)]
    for svc in services:
        svc.launch()
    try:
        for svc in services:  # every scan process started before the clock starts
            svc.wait_ready()
            while httpx.get(f"{svc.url}/healthz").json()["scan_processes"]["ready"] < workers:
                time.sleep(0.1)
        items = list(shas.items())
        t0 = time.perf_counter()
        # One keep-alive client, as a sender of webhooks is: a new client per request would
        # measure the client's set-up (an SSL context each), not the service.
        with ThreadPoolExecutor(max_workers=8) as pool, httpx.Client(
                timeout=60, limits=httpx.Limits(max_connections=8 * replicas)) as client:
            answers = list(pool.map(lambda i: client.post(
                f"{services[i % replicas].url}/hooks/huggingface",
                json=delivery(*items[i], private=False), headers={"X-Webhook-Secret": SECRET}),
                range(len(items))))
        accept = time.perf_counter() - t0
        assert all(a.status_code == 202 for a in answers)
        while httpx.get(f"{services[0].url}/healthz").json()["jobs"]["done"] < len(items):
            time.sleep(0.05)
        wall = time.perf_counter() - t0
    finally:
        for svc in services:
            svc.stop()
    lat = _latencies(db)
    assert len(lat) == len(items)
    p = statistics.quantiles(lat, n=100)
    return len(items) / accept, len(items) / wall, p[49], p[98]


# (queue, replicas, scan processes per replica): one replica with six processes as well, to
# tell what three replicas add from what more scan processes add.
CONFIGS = (("sqlite", 1, 2), ("postgres", 1, 2), ("sqlite", 1, 6), ("postgres", 1, 6),
           ("sqlite", 3, 2), ("postgres", 3, 2))


def run() -> BenchTable:
    from tests.pgserver import PostgresServer

    results: dict[tuple[str, int, int], list[Result]] = {c: [] for c in CONFIGS}
    load = [os.getloadavg()[0]]
    with ExitStack() as stack:
        tmp = Path(stack.enter_context(tempfile.TemporaryDirectory()))
        hub = stack.enter_context(HubServer())
        pg = stack.enter_context(PostgresServer(durable=True))
        # Rounds interleave the configurations, so that other load on the machine falls on
        # each of them alike; the table shows each one's median round.
        for r in range(ROUNDS):
            for backend, replicas, workers in CONFIGS:
                name = f"{backend}-{replicas}x{workers}-{r}"
                # Fresh repos for each run: no run finds another's scans in the Hub cache.
                shas = {f"bench/{name}-{i}": hub.add_repo(f"bench/{name}-{i}", adapter_files(i))
                        for i in range(N)}
                run_dir = tmp / name
                run_dir.mkdir()
                db: str | Path = (run_dir / "admissions.db" if backend == "sqlite"
                                  else pg.database(name.replace("-", "_")))
                results[(backend, replicas, workers)].append(
                    _measure(run_dir, hub, shas, db, replicas, workers))
    load.append(os.getloadavg()[0])
    rows = []
    for (backend, replicas, workers), runs in results.items():
        med = [statistics.median(col) for col in zip(*runs, strict=True)]
        rows.append(("SQLite" if backend == "sqlite" else "PostgreSQL", str(replicas),
                     str(replicas * workers), f"{med[0]:.0f}", f"{med[1]:.1f}", f"{med[2]:.2f}",
                     f"{med[3]:.2f}"))
    return BenchTable(
        title=f"Admission service: {N} webhook deliveries, static scans, SQLite and PostgreSQL",
        headers=("queue", "replicas", "scan processes", "deliveries accepted/s",
                 "admissions/s", "p50 latency (s)", "p99 latency (s)"),
        rows=tuple(rows),
        notes=f"{N} deliveries of distinct commits, sent all at once by 8 client threads over "
              "keep-alive connections, spread "
              "round-robin over the replicas, on one "
              "machine together with the local Hub server and the PostgreSQL server (default "
              "settings: fsync on, synchronous commit; SQLite in WAL with synchronous=FULL). "
              "*Deliveries accepted/s*: deliveries over the time until the last 202, while scans "
              "already run. *Admissions/s*: deliveries over the time until the last verdict. "
              "Latency is from the job's commit (before the 202) to its recorded verdict, both "
              "stamped by the database, so it includes queueing. Three replicas on one SQLite "
              "file share one host's disk; on PostgreSQL they may run anywhere. Each value is "
              f"the median of {ROUNDS} interleaved rounds; the machine's 1-minute load average "
              f"was {load[0]:.1f} before and {load[1]:.1f} after (other jobs share it).")
