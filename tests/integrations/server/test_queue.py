from __future__ import annotations

import time
from pathlib import Path

import pytest

from adapterscan.integrations.server.queue import JobQueue, QueueFull

SHA = "a" * 40


def test_enqueue_is_idempotent_and_durable(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.db")
    job, created = q.enqueue("o/r", SHA, "p", ref="refs/heads/main", origin="webhook")
    again, created2 = q.enqueue("o/r", SHA, "p", ref="refs/heads/main", origin="webhook")
    assert created and not created2 and again.id == job.id
    other, created3 = q.enqueue("o/r", SHA, "strict-policy", ref=None, origin="api")
    assert created3 and other.id != job.id
    reopened = JobQueue(tmp_path / "q.db")  # a restart sees every committed job
    assert reopened.counts()["queued"] == 2


def test_expired_lease_is_reclaimed_and_stale_worker_cannot_record(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.db")
    q.enqueue("o/r", SHA, "p", ref=None, origin="api")
    first = q.claim(lease_s=0.05)
    assert first is not None and q.claim(lease_s=10) is None  # leased: nobody else gets it
    time.sleep(0.1)
    second = q.claim(lease_s=10)
    assert second is not None and second.id == first.id and second.attempts == 2
    assert not q.record(first, decision="pass", exit_code=0, report_json=None,
                        attestation_json=None, error=None)
    assert q.record(second, decision="fail", exit_code=1, report_json=None,
                    attestation_json=None, error=None)
    assert not q.record(second, decision="fail", exit_code=1, report_json=None,
                        attestation_json=None, error=None)
    found = q.get(first.id)
    assert found is not None and found[1] is not None and found[1].decision == "fail"
    assert q.verdict_counts() == {"fail": 1}


def test_backpressure(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.db", max_pending=2)
    q.enqueue("o/a", SHA, "p", ref=None, origin="api")
    q.enqueue("o/b", SHA, "p", ref=None, origin="api")
    with pytest.raises(QueueFull):
        q.enqueue("o/c", SHA, "p", ref=None, origin="api")
    q.enqueue("o/a", SHA, "p", ref=None, origin="api")  # a duplicate is never refused
