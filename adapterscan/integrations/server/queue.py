"""A durable job queue in SQLite (WAL): committed before 202, leased, idempotent, exactly-once.

Jobs are unique on (repo, revision, policy digest): a duplicate delivery returns the existing
job. A worker claims a job with a lease; a worker that dies (kill -9) stops renewing, the lease
expires and another worker takes the job again. A verdict is recorded only by the holder of the
current lease token and only once (the verdict table's primary key is the job id), so a
resurrected stale worker cannot record a second verdict.

Each job records whether its repo is private (1), public (0) or unknown (NULL: treated as private
by the access rules in access.py; databases from before the column get it with NULL everywhere).
"""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  repo TEXT NOT NULL,
  revision TEXT NOT NULL,
  policy_digest TEXT NOT NULL,
  ref TEXT,
  origin TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done')),
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_token TEXT,
  lease_until REAL,
  created_at REAL NOT NULL,
  updated_at REAL NOT NULL,
  private INTEGER,  -- access control: 1 private, 0 public, NULL unknown (treated as private)
  UNIQUE (repo, revision, policy_digest)
);
CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at);
CREATE TABLE IF NOT EXISTS verdicts (
  job_id TEXT PRIMARY KEY REFERENCES jobs(id),
  decision TEXT NOT NULL,
  exit_code INTEGER NOT NULL,
  report_json TEXT,
  attestation_json TEXT,
  error TEXT,
  recorded_at REAL NOT NULL
);
"""


class QueueFull(Exception):
    """More jobs are waiting than the queue accepts (the API answers 429)."""


@dataclass(frozen=True)
class Job:
    id: str
    repo: str
    revision: str
    policy_digest: str
    ref: str | None
    origin: str
    status: str
    attempts: int
    lease_token: str | None
    created_at: float
    updated_at: float
    private: bool | None = None  # None: unknown, which access.py treats as private


@dataclass(frozen=True)
class VerdictRow:
    job_id: str
    decision: str
    exit_code: int
    report_json: str | None
    attestation_json: str | None
    error: str | None
    recorded_at: float


_JOB_COLS = ("id, repo, revision, policy_digest, ref, origin, status, attempts, lease_token, "
             "created_at, updated_at, private")


def _job(row: tuple[object, ...]) -> Job:
    *cols, private = row
    return Job(*cols, private=None if private is None else bool(private))  # type: ignore[arg-type,misc]


class JobQueue:
    def __init__(self, path: Path, *, max_pending: int = 10_000, max_attempts: int = 3) -> None:
        self.path = path
        self.max_pending = max_pending
        self.max_attempts = max_attempts
        self._local = threading.local()
        self._conn().executescript(SCHEMA)  # executescript manages its own transaction
        self._migrate()

    def _migrate(self) -> None:
        """Access control: databases written before privacy was recorded get the column, NULL
        (unknown, so treated as private) on every existing job."""
        with self._tx() as db:
            cols = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            if "private" not in cols:
                db.execute("ALTER TABLE jobs ADD COLUMN private INTEGER")

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None,
                                   check_same_thread=True)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")  # a 202 means the job survives a crash
            conn.execute("PRAGMA busy_timeout=30000")
            self._local.conn = conn
        return conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        db = self._conn()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def enqueue(self, repo: str, revision: str, policy_digest: str, *, ref: str | None,
                origin: str, private: bool | None = None) -> tuple[Job, bool]:
        """Commit a job (or find the existing one); returns (job, created). `private` is
        stored with a new job only: an existing job becomes private through mark_private."""
        now = time.time()
        with self._tx() as db:
            row = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE repo=? AND revision=? AND "
                             "policy_digest=?", (repo, revision, policy_digest)).fetchone()
            if row:
                return _job(row), False
            pending = db.execute("SELECT COUNT(*) FROM jobs WHERE status != 'done'").fetchone()
            if pending[0] >= self.max_pending:
                raise QueueFull(f"{pending[0]} jobs pending")
            job_id = uuid.uuid4().hex
            db.execute("INSERT INTO jobs (id, repo, revision, policy_digest, ref, origin, "
                       "status, created_at, updated_at, private) "
                       "VALUES (?,?,?,?,?,?, 'queued', ?, ?, ?)",
                       (job_id, repo, revision, policy_digest, ref, origin, now, now,
                        None if private is None else int(private)))
            row = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        return _job(row), True

    def claim(self, lease_s: float) -> Job | None:
        """Take the oldest queued job, or one whose lease expired (its worker died)."""
        now = time.time()
        token = uuid.uuid4().hex
        with self._tx() as db:
            row = db.execute(
                "SELECT id FROM jobs WHERE status='queued' OR (status='running' AND "
                "lease_until < ?) ORDER BY created_at LIMIT 1", (now,)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE jobs SET status='running', lease_token=?, lease_until=?, "
                       "attempts=attempts+1, updated_at=? WHERE id=?",
                       (token, now + lease_s, now, row[0]))
            job = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE id=?", (row[0],)).fetchone()
        return _job(job)

    def renew(self, job: Job, lease_s: float) -> bool:
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET lease_until=? WHERE id=? AND lease_token=? AND "
                             "status='running'", (time.time() + lease_s, job.id, job.lease_token))
            return cur.rowcount == 1

    def record(self, job: Job, *, decision: str, exit_code: int, report_json: str | None,
               attestation_json: str | None, error: str | None) -> bool:
        """Record the verdict if `job` still holds the lease; False means someone else did."""
        now = time.time()
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET status='done', lease_token=NULL, lease_until=NULL, "
                             "updated_at=? WHERE id=? AND lease_token=? AND status='running'",
                             (now, job.id, job.lease_token))
            if cur.rowcount != 1:
                return False
            db.execute("INSERT INTO verdicts VALUES (?,?,?,?,?,?,?)",
                       (job.id, decision, exit_code, report_json, attestation_json, error, now))
        return True

    def get(self, job_id: str) -> tuple[Job, VerdictRow | None] | None:
        db = self._conn()
        row = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE id=?", (job_id,)).fetchone()
        if row is None:
            return None
        v = db.execute("SELECT * FROM verdicts WHERE job_id=?", (job_id,)).fetchone()
        return _job(row), (VerdictRow(*v) if v else None)

    def find(self, repo: str, revision: str) -> list[tuple[Job, VerdictRow | None]]:
        db = self._conn()
        rows = db.execute(f"SELECT {_JOB_COLS} FROM jobs WHERE repo=? AND revision=? "
                          "ORDER BY created_at DESC", (repo, revision)).fetchall()
        out = []
        for row in rows:
            v = db.execute("SELECT * FROM verdicts WHERE job_id=?", (row[0],)).fetchone()
            out.append((_job(row), VerdictRow(*v) if v else None))
        return out

    def mark_private(self, repo: str) -> int:
        """Access control: the repo is private now; hide every job of it. Never the reverse: a
        late or replayed delivery must not make a private repo's reports public again."""
        with self._tx() as db:
            cur = db.execute("UPDATE jobs SET private=1 WHERE repo=? AND "
                             "(private IS NULL OR private=0)", (repo,))
            return cur.rowcount

    def count_private(self) -> int:
        """Access control: jobs of private repos or of unknown privacy."""
        row = self._conn().execute(
            "SELECT COUNT(*) FROM jobs WHERE private IS NULL OR private != 0").fetchone()
        return int(row[0])

    def recent(self, limit: int = 100, *, public_only: bool = False
               ) -> list[tuple[Job, VerdictRow | None]]:
        db = self._conn()
        where = "WHERE private=0 " if public_only else ""  # access control: anonymous readers
        rows = db.execute(f"SELECT {_JOB_COLS} FROM jobs {where}ORDER BY created_at DESC "
                          "LIMIT ?", (limit,)).fetchall()
        out = []
        for row in rows:
            v = db.execute("SELECT * FROM verdicts WHERE job_id=?", (row[0],)).fetchone()
            out.append((_job(row), VerdictRow(*v) if v else None))
        return out

    def counts(self) -> dict[str, int]:
        db = self._conn()
        rows = db.execute("SELECT status, COUNT(*) FROM jobs GROUP BY status").fetchall()
        out = {"queued": 0, "running": 0, "done": 0}
        out.update({str(s): int(n) for s, n in rows})
        return out

    def verdict_counts(self) -> dict[str, int]:
        db = self._conn()
        rows = db.execute("SELECT decision, COUNT(*) FROM verdicts GROUP BY decision").fetchall()
        return {str(d): int(n) for d, n in rows}
