"""Scans run in worker processes under a time limit, on both queue back ends.

A scan that hangs (its Hub stops answering mid-fetch, for longer than the limit and than the Hub
client's own timeouts) is killed at the limit; a scan whose process dies (SIGKILL from outside,
as the kernel's OOM killer would) is recorded at once. Both become `error` verdicts (exit 3),
the service keeps answering meanwhile, and the slot scans the next job in a fresh process.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.hubserver import HubServer
from tests.integrations.server.service import (
    READ,
    SECRET,
    Service,
    adapter_files,
    delivery,
    wait_done,
)

LIMIT_S = 4


def _deliver(svc: Service, repo: str, sha: str) -> str:
    answer = httpx.post(f"{svc.url}/hooks/huggingface", json=delivery(repo, sha, private=False),
                        headers={"X-Webhook-Secret": SECRET}, timeout=10)
    assert answer.status_code == 202, answer.text
    return str(answer.json()["jobs"][0]["id"])


def _wait_running(svc: Service, job: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        body = httpx.get(f"{svc.url}/v1/admissions/{job}", headers=READ, timeout=5).json()
        if body["status"] == "running":
            return
        time.sleep(0.1)
    raise AssertionError(f"job {job} never started")


def _lost(svc: Service) -> dict[str, int]:
    text = httpx.get(f"{svc.url}/metrics", headers=READ, timeout=5).text
    return {line.split('"')[1]: int(float(line.rsplit(" ", 1)[1])) for line in text.splitlines()
            if line.startswith("adapterscan_scan_processes_lost_total{")}


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
def test_hung_and_crashed_scans_become_errors_and_free_their_slot(
        backend: str, tmp_path: Path, hub: HubServer, request: pytest.FixtureRequest) -> None:
    db = request.getfixturevalue("pg_url") if backend == "postgres" else None
    shas = {r: hub.add_repo(r, adapter_files(i))
            for i, r in enumerate(("acme/hang", "acme/crash", "acme/fine"))}
    hub.stall("acme/hang", 600.0)  # every request about this repo waits ten minutes
    hub.stall("acme/crash", 600.0)
    # The Hub client must not give up before the limit does: the limit is what is tested.
    svc = Service(tmp_path, hub, db=db, args=("--workers", "1", "--scan-timeout", str(LIMIT_S)),
                  env={"HF_HUB_ETAG_TIMEOUT": "600", "HF_HUB_DOWNLOAD_TIMEOUT": "600"})
    svc.start()
    try:
        hang = _deliver(svc, "acme/hang", shas["acme/hang"])
        _wait_running(svc, hang)
        t0 = time.monotonic()
        while time.monotonic() - t0 < LIMIT_S / 2:  # the service answers while its scan hangs
            assert httpx.get(f"{svc.url}/healthz", timeout=5).json()["jobs"]["running"] == 1
        hung: dict[str, Any] = wait_done(svc.url, {hang}, timeout=60)[hang]
        assert hung["verdict"]["decision"] == "error" and hung["verdict"]["exit_code"] == 3
        assert f"no result within {LIMIT_S} s" in hung["verdict"]["error"]
        assert hung["report"] is None and hung["attestation"] is None

        crash = _deliver(svc, "acme/crash", shas["acme/crash"])
        _wait_running(svc, crash)
        procs = svc.scan_processes()
        assert len(procs) == 1, procs  # --workers 1: one scan process
        os.kill(procs[0], signal.SIGKILL)
        crashed = wait_done(svc.url, {crash}, timeout=60)[crash]
        assert crashed["verdict"]["decision"] == "error" and crashed["verdict"]["exit_code"] == 3
        assert "died (signal SIGKILL)" in crashed["verdict"]["error"]

        fine = _deliver(svc, "acme/fine", shas["acme/fine"])
        done = wait_done(svc.url, {fine}, timeout=60)[fine]
        assert done["verdict"]["decision"] in ("pass", "warn")
        assert done["report"]["subject"]["revision"] == shas["acme/fine"]
        fresh = svc.scan_processes()
        assert fresh and fresh != procs  # a fresh process took the slot
        health = httpx.get(f"{svc.url}/healthz", timeout=5).json()
        assert health["scan_processes"] == {"ready": 1, "of": 1}
        assert _lost(svc) == {"died": 1, "timeout": 1}
    finally:
        svc.stop()
    # uvicorn shuts down gracefully on SIGTERM, then re-raises it.
    assert svc.proc is not None and svc.proc.returncode in (0, -signal.SIGTERM)
    assert not [p for p in fresh if _running(p)]  # a stopped service leaves no scan behind


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"
