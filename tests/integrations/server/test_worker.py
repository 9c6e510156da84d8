"""The worker pool in this process, its scans in real worker processes."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapterscan.integrations.server.metrics import Metrics
from adapterscan.integrations.server.scanproc import ScanSetup
from adapterscan.integrations.server.sqlite_queue import SqliteQueue
from adapterscan.integrations.server.worker import WorkerConfig, WorkerPool
from adapterscan.policy.policy import Policy
from tests.hubserver import HubServer
from tests.integrations.server.service import adapter_files


def test_stopping_gives_the_jobs_in_flight_back_to_the_queue(
        tmp_path: Path, hub: HubServer, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf-home"))  # inherited by the scan process
    sha = hub.add_repo("acme/slow", adapter_files(0))
    hub.stall("acme/slow", 600.0)  # the scan is still fetching when the service stops
    queue = SqliteQueue(tmp_path / "q.db")
    job, _ = queue.enqueue("acme/slow", sha, "default", ref=None, origin="api")
    pool = WorkerPool(queue, ScanSetup(Policy(), endpoint=hub.url), workers=1,
                      config=WorkerConfig(lease_s=30.0), metrics=Metrics())
    pool.start()
    deadline = time.monotonic() + 60
    while (found := queue.get(job.id)) and found[0].status != "running":
        assert time.monotonic() < deadline, "the job was never claimed"
        time.sleep(0.05)
    pool.stop()
    found = queue.get(job.id)
    assert found is not None
    stopped, verdict = found
    # Queued again at once (not after its lease), the interrupted attempt not counted, and no
    # verdict: a stopping service is no failed scan.
    assert stopped.status == "queued" and stopped.attempts == 0 and verdict is None
    assert not any(t.is_alive() for t in pool._threads)


def test_scan_processes_that_cannot_start_are_reported_once_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        capfd: pytest.CaptureFixture[str]) -> None:
    from adapterscan.integrations.server import worker
    from tests.integrations.test_procworker import failing_factory

    monkeypatch.setattr(worker, "scan_handler", failing_factory)
    pool = WorkerPool(SqliteQueue(tmp_path / "q.db"), ScanSetup(Policy()), workers=2,
                      config=WorkerConfig(restart_backoff_s=0.05), metrics=Metrics())
    with caplog.at_level("DEBUG", logger="adapterscan.server"):
        pool.start()
        deadline = time.monotonic() + 60
        while sum("failed to start" in r.getMessage() for r in caplog.records) < 4:
            assert time.monotonic() < deadline, "no start failure was logged"
            time.sleep(0.05)
        assert pool.ready() == 0  # what /healthz shows meanwhile
        pool.stop()
    errors = [r.getMessage() for r in caplog.records if r.levelname == "ERROR"]
    assert len(errors) == 1 and "needs the probe extra" in errors[0], errors
    assert "Traceback" not in capfd.readouterr().err
