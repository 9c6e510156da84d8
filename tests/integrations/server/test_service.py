"""The admission service as a real process: durability under concurrent deliveries and kill -9."""

from __future__ import annotations

import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.hubserver import HubServer
from tests.integrations.server.service import (
    SECRET,
    Service,
    adapter_files,
    delivery,
    slow_scans,
    wait_done,
)

N_REPOS = 20


@pytest.mark.slow
def test_concurrent_deliveries_kill9_restart_exactly_one_verdict(tmp_path: Path,
                                                                  hub: HubServer) -> None:
    shas = {f"acme/lora-{i}": hub.add_repo(f"acme/lora-{i}", adapter_files(i))
            for i in range(N_REPOS)}
    slow_scans(hub)  # scans take long enough that the kill lands while some are in flight
    svc = Service(tmp_path, hub)
    svc.start()
    try:
        # 200 concurrent deliveries: every repo delivered 10 times (duplicates must dedupe).
        deliveries = [(r, s) for r, s in shas.items() for _ in range(10)]
        with ThreadPoolExecutor(max_workers=16) as pool:
            answers = list(pool.map(lambda rs: httpx.post(
                f"{svc.url}/hooks/huggingface", json=delivery(*rs),
                headers={"X-Webhook-Secret": SECRET}, timeout=30), deliveries))
        assert all(a.status_code == 202 for a in answers)
        jobs = {j["id"] for a in answers for j in a.json()["jobs"]}
        assert len(jobs) == N_REPOS  # one job per (repo, sha)
        # Kill -9 while some verdicts are recorded and others are in flight.
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            done = httpx.get(f"{svc.url}/healthz", timeout=5).json()["jobs"]["done"]
            if done >= 3:
                break
            time.sleep(0.05)
        svc.kill9()
        svc.start()
        results = wait_done(svc.url, jobs, timeout=240)
    finally:
        svc.stop()
    with sqlite3.connect(svc.db) as db:
        per_job = dict(db.execute("SELECT job_id, COUNT(*) FROM verdicts GROUP BY job_id"))
        attempts = [a for (a,) in db.execute("SELECT attempts FROM jobs")]
    assert set(per_job) == jobs and set(per_job.values()) == {1}
    assert any(a >= 2 for a in attempts), "no job was in flight at the kill"
    assert {r["verdict"]["decision"] for r in results.values()} <= {"pass", "warn"}
    some = next(iter(results.values()))
    assert some["report"]["subject"]["revision"] == shas[some["repo"]]
