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


OLD_SCHEMA = f"""CREATE TABLE jobs (id TEXT PRIMARY KEY, repo TEXT NOT NULL, revision TEXT NOT NULL,
  policy_digest TEXT NOT NULL, ref TEXT, origin TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_until REAL,
  created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (repo, revision, policy_digest));
INSERT INTO jobs (id, repo, revision, policy_digest, origin, status, created_at, updated_at)
  VALUES ('old', 'o/old', '{SHA}', 'p', 'webhook', 'queued', 1, 1);"""


def test_database_from_before_privacy_is_migrated_as_private(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "q.db") as db:
        db.executescript(OLD_SCHEMA)
    q = JobQueue(tmp_path / "q.db")
    found = q.get("old")
    assert found is not None and found[0].private is None  # unknown: treated as private
    assert q.count_private() == 1
    JobQueue(tmp_path / "q.db")  # a second open finds the column and leaves it
    q.enqueue("o/pub", SHA, "p", ref=None, origin="webhook", private=False)
    q.enqueue("o/priv", SHA, "p", ref=None, origin="webhook", private=True)
    assert q.count_private() == 2
    assert [j.repo for j, _ in q.recent(10, public_only=True)] == ["o/pub"]


def test_a_repo_made_private_hides_its_earlier_jobs_for_good(tmp_path: Path) -> None:
    q = JobQueue(tmp_path / "q.db")
    q.enqueue("o/r", SHA, "p", ref=None, origin="webhook", private=False)
    q.enqueue("o/other", SHA, "p", ref=None, origin="webhook", private=False)
    assert q.mark_private("o/r") == 1 and q.count_private() == 1
    again, created = q.enqueue("o/r", SHA, "p", ref=None, origin="webhook", private=False)
    assert not created and again.private is True  # a late "public" delivery changes nothing
    b, _ = q.enqueue("o/r", "b" * 40, "p", ref=None, origin="webhook", private=False)
    assert b.private is False  # a new commit delivered as public is public
