"""The durable job queue: committed before 202, leased, idempotent, exactly-once.

Jobs are unique on (repo, revision, policy digest): a duplicate delivery returns the existing
job. A worker claims a job with a lease; a worker that dies (kill -9) stops renewing, the lease
expires and another worker takes the job again. A verdict is recorded only by the holder of the
current lease token and only once (the verdict table's primary key is the job id), so a
resurrected stale worker cannot record a second verdict.

`JobQueue` holds every statement, written once for both back ends (`?` placeholders, the clock
and the claim's row lock as fragments); `SqliteQueue` (sqlite_queue.py: one host, the embedded
default) and `PostgresQueue` (pg_queue.py: several replicas on one database) supply connections
and transactions. queue.py picks one from `--db`.
"""

from __future__ import annotations

import abc
import os
import socket
import uuid
from collections.abc import Sequence
from contextlib import AbstractContextManager

from adapterscan.errors import UsageError
from adapterscan.integrations.server.db import (
    JOB_SELECT,
    JOB_VERDICT_SELECT,
    Db,
    Job,
    VerdictRow,
    job_and_verdict,
    job_from_row,
)
from adapterscan.integrations.server.schema import (
    LATEST,
    MIGRATIONS,
    VERSION_TABLE,
    legacy_version,
)


class QueueFull(Exception):
    """More jobs are waiting than the queue accepts (the API answers 429)."""


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class JobQueue(abc.ABC):
    """Every statement of the queue; subclasses give connections, transactions and dialect."""

    #: SQL for "now" in epoch seconds. PostgreSQL uses the database's clock, so replicas on
    #: hosts whose clocks disagree still agree on when a lease expires.
    NOW: str
    #: What the claim's sub-select adds to take a row no other claimer holds.
    SKIP_LOCKED: str

    def __init__(self, *, max_pending: int = 10_000, max_attempts: int = 3) -> None:
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self.owner = replica_name()

    # -- what a back end provides ------------------------------------------------------------

    @abc.abstractmethod
    def _tx(self) -> AbstractContextManager[Db]:
        """A write transaction: committed on exit, rolled back on an exception."""

    @abc.abstractmethod
    def _read(self) -> AbstractContextManager[Db]:
        """A connection for one consistent read statement."""

    @abc.abstractmethod
    def _lock_schema(self, db: Db) -> None:
        """Serialise migrations between processes starting at once."""

    @abc.abstractmethod
    def _tables(self, db: Db) -> set[str]: ...

    @abc.abstractmethod
    def _columns(self, db: Db, table: str) -> set[str]: ...

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections."""

    # -- schema ------------------------------------------------------------------------------

    def _migrate(self) -> None:
        """Create the schema or bring it to LATEST; refuse a database newer than this code."""
        with self._tx() as db:
            self._lock_schema(db)
            if "schema_version" in self._tables(db):
                row = db.execute("SELECT MAX(version) FROM schema_version").fetchone()
                current = int(row[0] or 0)
            else:
                current = legacy_version(self._tables(db), self._columns(db, "jobs"))
                db.execute(VERSION_TABLE)
            if current > LATEST:
                raise UsageError(f"the queue's schema is version {current}, newer than this "
                                 f"adapterscan knows ({LATEST})",
                                 hint="run the same or a newer adapterscan on this database")
            for version, statements in MIGRATIONS:
                if version > current:
                    for sql in statements:
                        db.execute(sql)
            if current < LATEST:
                db.execute("DELETE FROM schema_version")
                db.execute("INSERT INTO schema_version (version) VALUES (?)", (LATEST,))

    def schema_version(self) -> int:
        with self._read() as db:
            return int(db.execute("SELECT MAX(version) FROM schema_version").fetchone()[0])

    # -- jobs --------------------------------------------------------------------------------

    def enqueue(self, repo: str, revision: str, policy_digest: str, *, ref: str | None,
                origin: str, private: bool | None = None) -> tuple[Job, bool]:
        """Commit a job (or find the existing one); returns (job, created). `private` is
        stored with a new job only: an existing job becomes private through mark_private."""
        find = f"SELECT {JOB_SELECT} FROM jobs WHERE repo=? AND revision=? AND policy_digest=?"
        key = (repo, revision, policy_digest)
        with self._tx() as db:
            row = db.execute(find, key).fetchone()
            if row:
                return job_from_row(row), False  # a duplicate is never refused, even when full
            pending = db.execute("SELECT COUNT(*) FROM jobs WHERE status IN "
                                 "('queued', 'running')").fetchone()[0]
            if pending >= self.max_pending:
                raise QueueFull(f"{pending} jobs pending")
            # Another replica may insert the same key between the look-up and here: the unique
            # constraint decides, and the loser returns the winner's job.
            row = db.execute(
                "INSERT INTO jobs (id, repo, revision, policy_digest, ref, origin, status, "
                f"created_at, updated_at, private) VALUES (?,?,?,?,?,?, 'queued', {self.NOW}, "
                f"{self.NOW}, ?) ON CONFLICT (repo, revision, policy_digest) DO NOTHING "
                f"RETURNING {JOB_SELECT}",
                (uuid.uuid4().hex, *key, ref, origin,
                 None if private is None else int(private))).fetchone()
            if row is not None:
                return job_from_row(row), True
            return job_from_row(db.execute(find, key).fetchone()), False

    def claim(self, lease_s: float) -> Job | None:
        """Take the oldest queued job, or one whose lease expired (its worker died)."""
        with self._tx() as db:
            row = db.execute(
                f"UPDATE jobs SET status='running', lease_token=?, lease_until={self.NOW} + ?, "
                f"attempts=attempts+1, updated_at={self.NOW}, claimed_by=? WHERE id = ("
                "SELECT id FROM jobs WHERE status='queued' OR (status='running' AND "
                f"lease_until < {self.NOW}) ORDER BY created_at LIMIT 1 {self.SKIP_LOCKED}) "
                f"RETURNING {JOB_SELECT}", (uuid.uuid4().hex, lease_s, self.owner)).fetchone()
        return None if row is None else job_from_row(row)

    def renew(self, job: Job, lease_s: float) -> bool:
        with self._tx() as db:
            cur = db.execute(f"UPDATE jobs SET lease_until={self.NOW} + ? WHERE id=? AND "
                             "lease_token=? AND status='running'",
                             (lease_s, job.id, job.lease_token))
            return cur.rowcount == 1

    def release(self, job: Job) -> bool:
        """Give a job back unfinished (the service is stopping): queued again at once, and the
        interrupted attempt does not count against it."""
        with self._tx() as db:
            cur = db.execute(f"UPDATE jobs SET status='queued', lease_token=NULL, "
                             f"lease_until=NULL, attempts=attempts-1, updated_at={self.NOW} "
                             "WHERE id=? AND lease_token=? AND status='running'",
                             (job.id, job.lease_token))
            return cur.rowcount == 1

    def record(self, job: Job, *, decision: str, exit_code: int, report_json: str | None,
               attestation_json: str | None, error: str | None) -> bool:
        """Record the verdict if `job` still holds the lease; False means someone else did."""
        with self._tx() as db:
            cur = db.execute(f"UPDATE jobs SET status='done', lease_token=NULL, "
                             f"lease_until=NULL, updated_at={self.NOW} WHERE id=? AND "
                             "lease_token=? AND status='running'", (job.id, job.lease_token))
            if cur.rowcount != 1:
                return False
            db.execute("INSERT INTO verdicts (job_id, decision, exit_code, report_json, "
                       f"attestation_json, error, recorded_at) VALUES (?,?,?,?,?,?,{self.NOW})",
                       (job.id, decision, exit_code, report_json, attestation_json, error))
        return True

    # -- failed credentials (ratelimit.py) ---------------------------------------------------

    def add_failure(self, client: str, window_s: float) -> None:
        """Count a failed credential of `client`, and forget everyone's expired ones."""
        with self._tx() as db:
            db.execute(f"DELETE FROM auth_failures WHERE at <= {self.NOW} - ?", (window_s,))
            db.execute(f"INSERT INTO auth_failures (client, at) VALUES (?, {self.NOW})",
                       (client,))

    def failure_wait(self, client: str, max_failures: int, window_s: float) -> float:
        """Seconds until the oldest of `client`'s last `max_failures` failures leaves the
        window; 0 when it has fewer than that in the window."""
        with self._read() as db:
            n, oldest, now = db.execute(
                f"SELECT COUNT(*), MIN(at), {self.NOW} FROM (SELECT at FROM auth_failures "
                f"WHERE client=? AND at > {self.NOW} - ? ORDER BY at DESC LIMIT ?) recent",
                (client, window_s, max_failures)).fetchone()
        if n < max_failures:
            return 0.0
        return max(float(oldest) + window_s - float(now), 0.001)

    # -- reads -------------------------------------------------------------------------------

    def _pairs(self, where: str, params: Sequence[object], tail: str = ""
               ) -> list[tuple[Job, VerdictRow | None]]:
        with self._read() as db:
            rows = db.execute(f"SELECT {JOB_VERDICT_SELECT} FROM jobs j LEFT JOIN verdicts v "
                              f"ON v.job_id = j.id {where} ORDER BY j.created_at DESC {tail}",
                              params).fetchall()
        return [job_and_verdict(r) for r in rows]

    def get(self, job_id: str) -> tuple[Job, VerdictRow | None] | None:
        found = self._pairs("WHERE j.id=?", (job_id,))
        return found[0] if found else None

    def find(self, repo: str, revision: str) -> list[tuple[Job, VerdictRow | None]]:
        return self._pairs("WHERE j.repo=? AND j.revision=?", (repo, revision))

    def recent(self, limit: int = 100, *, public_only: bool = False
               ) -> list[tuple[Job, VerdictRow | None]]:
        where = "WHERE j.private=0" if public_only else ""  # access control: anonymous readers
        return self._pairs(where, (limit,), "LIMIT ?")

    def mark_private(self, repo: str) -> int:
        """Access control: the repo is private now; hide every job of it. Never the reverse: a
        late or replayed delivery must not make a private repo's reports public again."""
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET private=1 WHERE repo=? AND "
                             "(private IS NULL OR private=0)", (repo,))
            return cur.rowcount

    def count_private(self) -> int:
        """Access control: jobs of private repos or of unknown privacy."""
        with self._read() as db:
            row = db.execute("SELECT COUNT(*) FROM jobs WHERE private IS NULL OR private != 0"
                             ).fetchone()
        return int(row[0])

    def counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = {"queued": 0, "running": 0, "done": 0}
        out.update({str(s): int(n) for s, n in rows})
        return out

    def verdict_counts(self) -> dict[str, int]:
        with self._read() as db:
            rows = db.execute("SELECT decision, COUNT(*) FROM verdicts GROUP BY decision"
                              ).fetchall()
        return {str(d): int(n) for d, n in rows}
