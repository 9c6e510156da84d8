"""The queue's guarantees, the same tests on SQLite and on a real PostgreSQL server."""

from __future__ import annotations

import sqlite3
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest

from adapterscan.errors import UsageError
from adapterscan.integrations.server.base_queue import JobQueue, QueueFull
from adapterscan.integrations.server.queue import open_queue
from adapterscan.integrations.server.ratelimit import FailureLimiter
from adapterscan.integrations.server.schema import LATEST

SHA = "a" * 40
Opener = Callable[..., JobQueue]


@pytest.fixture(params=["sqlite", "postgres"])
def opener(request: pytest.FixtureRequest, tmp_path: Path) -> Opener:
    """Opens the same database each call (a reopen is a restart, or another replica)."""
    db = str(tmp_path / "q.db") if request.param == "sqlite" \
        else request.getfixturevalue("pg_url")
    opened: list[JobQueue] = []

    def open_(**kw: int) -> JobQueue:
        q = open_queue(db, **kw)
        opened.append(q)
        return q

    request.addfinalizer(lambda: [q.close() for q in opened])
    return open_


def _sql(q: JobQueue, statement: str) -> None:
    with q._tx() as db:
        db.execute(statement)


def test_enqueue_is_idempotent_and_durable(opener: Opener) -> None:
    q = opener()
    job, created = q.enqueue("o/r", SHA, "p", ref="refs/heads/main", origin="webhook")
    again, created2 = q.enqueue("o/r", SHA, "p", ref="refs/heads/main", origin="webhook")
    assert created and not created2 and again.id == job.id
    other, created3 = q.enqueue("o/r", SHA, "strict-policy", ref=None, origin="api")
    assert created3 and other.id != job.id
    reopened = opener()  # a restart sees every committed job
    assert reopened.counts()["queued"] == 2
    assert reopened.schema_version() == LATEST


def test_expired_lease_is_reclaimed_and_stale_worker_cannot_record(opener: Opener) -> None:
    q = opener()
    q.enqueue("o/r", SHA, "p", ref=None, origin="api")
    first = q.claim(lease_s=0.2)
    assert first is not None and q.claim(lease_s=10) is None  # leased: nobody else gets it
    assert first.claimed_by == q.owner and first.status == "running"
    time.sleep(0.3)
    second = q.claim(lease_s=10)
    assert second is not None and second.id == first.id and second.attempts == 2
    assert not q.renew(first, 10)  # the stale holder cannot extend the new lease either
    assert not q.record(first, decision="pass", exit_code=0, report_json=None,
                        attestation_json=None, error=None)
    assert q.record(second, decision="fail", exit_code=1, report_json=None,
                    attestation_json=None, error=None)
    assert not q.record(second, decision="fail", exit_code=1, report_json=None,
                        attestation_json=None, error=None)
    found = q.get(first.id)
    assert found is not None and found[1] is not None and found[1].decision == "fail"
    assert q.verdict_counts() == {"fail": 1}
    assert [v.decision for _, v in q.find("o/r", SHA) if v] == ["fail"]


def test_release_requeues_without_counting_the_attempt(opener: Opener) -> None:
    q = opener()
    q.enqueue("o/r", SHA, "p", ref=None, origin="api")
    job = q.claim(lease_s=60)
    assert job is not None and q.release(job)
    assert not q.release(job)  # only the lease holder, once
    again = q.claim(lease_s=60)
    assert again is not None and again.id == job.id and again.attempts == 1


def test_backpressure(opener: Opener) -> None:
    q = opener(max_pending=2)
    q.enqueue("o/a", SHA, "p", ref=None, origin="api")
    q.enqueue("o/b", SHA, "p", ref=None, origin="api")
    with pytest.raises(QueueFull):
        q.enqueue("o/c", SHA, "p", ref=None, origin="api")
    q.enqueue("o/a", SHA, "p", ref=None, origin="api")  # a duplicate is never refused


def test_concurrent_claimers_on_several_connections_take_each_job_once(opener: Opener) -> None:
    """Three queue objects (three replicas' pools) and twelve threads drain 60 jobs: every job
    is claimed exactly once (SKIP LOCKED on PostgreSQL, the write lock on SQLite)."""
    replicas = [opener(), opener(), opener()]
    for i in range(60):
        replicas[i % 3].enqueue(f"o/r{i}", SHA, "p", ref=None, origin="api")
    claimed: Counter[str] = Counter()
    lock = threading.Lock()

    def drain(q: JobQueue) -> None:
        while (job := q.claim(lease_s=60)) is not None:
            with lock:
                claimed[job.id] += 1
            assert q.record(job, decision="pass", exit_code=0, report_json=None,
                            attestation_json=None, error=None)

    threads = [threading.Thread(target=drain, args=(replicas[i % 3],)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(claimed) == 60 and set(claimed.values()) == {1}
    assert replicas[0].counts() == {"queued": 0, "running": 0, "done": 60}


def test_concurrent_duplicate_deliveries_make_one_job(opener: Opener) -> None:
    replicas = [opener(), opener()]
    results: list[tuple[str, bool]] = []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    def deliver(q: JobQueue) -> None:
        barrier.wait()
        job, created = q.enqueue("o/same", SHA, "p", ref=None, origin="webhook")
        with lock:
            results.append((job.id, created))

    threads = [threading.Thread(target=deliver, args=(replicas[i % 2],)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(results) == 8 and len({j for j, _ in results}) == 1
    assert sum(created for _, created in results) == 1


def test_older_schema_is_migrated_and_a_newer_one_refused(opener: Opener) -> None:
    q = opener()
    q.enqueue("o/r", SHA, "p", ref=None, origin="api")
    _sql(q, "ALTER TABLE jobs DROP COLUMN claimed_by")  # as written by schema version 2
    _sql(q, "UPDATE schema_version SET version = 2")
    again = opener()
    assert again.schema_version() == LATEST
    job = again.claim(lease_s=60)
    assert job is not None and job.claimed_by == again.owner
    _sql(again, f"UPDATE schema_version SET version = {LATEST + 1}")
    with pytest.raises(UsageError, match="newer than this adapterscan"):
        opener()


OLD_SCHEMA = f"""CREATE TABLE jobs (id TEXT PRIMARY KEY, repo TEXT NOT NULL, revision TEXT NOT NULL,
  policy_digest TEXT NOT NULL, ref TEXT, origin TEXT NOT NULL, status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0, lease_token TEXT, lease_until REAL,
  created_at REAL NOT NULL, updated_at REAL NOT NULL, UNIQUE (repo, revision, policy_digest));
CREATE TABLE verdicts (job_id TEXT PRIMARY KEY REFERENCES jobs(id), decision TEXT NOT NULL,
  exit_code INTEGER NOT NULL, report_json TEXT, attestation_json TEXT, error TEXT,
  recorded_at REAL NOT NULL);
INSERT INTO jobs (id, repo, revision, policy_digest, origin, status, created_at, updated_at)
  VALUES ('old', 'o/old', '{SHA}', 'p', 'webhook', 'queued', 1, 1);"""


def test_sqlite_database_from_before_privacy_and_versions_is_migrated_as_private(
        tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "q.db") as db:
        db.executescript(OLD_SCHEMA)
    q = open_queue(str(tmp_path / "q.db"))
    assert q.schema_version() == LATEST
    found = q.get("old")
    assert found is not None and found[0].private is None  # unknown: treated as private
    assert q.count_private() == 1
    open_queue(str(tmp_path / "q.db"))  # a second open finds the schema current and leaves it
    q.enqueue("o/pub", SHA, "p", ref=None, origin="webhook", private=False)
    q.enqueue("o/priv", SHA, "p", ref=None, origin="webhook", private=True)
    assert q.count_private() == 2
    assert [j.repo for j, _ in q.recent(10, public_only=True)] == ["o/pub"]
    claimed = q.claim(lease_s=60)
    assert claimed is not None and claimed.id == "old"  # the oldest first


def test_a_repo_made_private_hides_its_earlier_jobs_for_good(opener: Opener) -> None:
    q = opener()
    q.enqueue("o/r", SHA, "p", ref=None, origin="webhook", private=False)
    q.enqueue("o/other", SHA, "p", ref=None, origin="webhook", private=False)
    assert q.mark_private("o/r") == 1 and q.count_private() == 1
    again, created = q.enqueue("o/r", SHA, "p", ref=None, origin="webhook", private=False)
    assert not created and again.private is True  # a late "public" delivery changes nothing
    b, _ = q.enqueue("o/r", "b" * 40, "p", ref=None, origin="webhook", private=False)
    assert b.private is False  # a new commit delivered as public is public
    assert {(j.repo, j.revision) for j, _ in q.recent(10, public_only=True)} == {
        ("o/other", SHA), ("o/r", "b" * 40)}


def test_postgresql_without_psycopg_is_a_usage_error_naming_the_extra(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if it were not installed
    monkeypatch.delitem(sys.modules, "adapterscan.integrations.server.pg_queue", raising=False)
    with pytest.raises(UsageError, match=r"adapterscan\[postgres\]"):
        open_queue("postgresql://u:pw@127.0.0.1:1/db")


def test_failure_limits_count_per_address_in_a_window_shared_by_replicas(opener: Opener) -> None:
    one, two = opener(), opener()  # two replicas on one database
    first, second = FailureLimiter(one, 3, 1.0), FailureLimiter(two, 3, 1.0)
    for _ in range(2):
        first.fail("a")
    assert first.retry_after("a") == 0 and second.retry_after("a") == 0
    second.fail("a")  # the third failure, at another replica
    assert 0 < first.retry_after("a") <= 1.0 and 0 < second.retry_after("a") <= 1.0
    assert first.retry_after("b") == 0  # per address
    time.sleep(1.2)  # every failure left the window
    assert first.retry_after("a") == 0 and second.retry_after("a") == 0
    first.fail("b")  # a new failure also deletes the expired ones: the table stays small
    with one._read() as db:
        assert db.execute("SELECT client FROM auth_failures").fetchall() == [("b",)]
