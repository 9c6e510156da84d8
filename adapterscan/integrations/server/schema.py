"""The queue's schema as numbered migrations, the same statements on SQLite and PostgreSQL.

The service applies the missing ones at start, in one transaction (PostgreSQL: under an advisory
lock, so replicas starting together migrate once), and records the version reached in
`schema_version`. A database of a newer version than this code knows is refused, not guessed at.

Types are chosen to mean the same on both back ends: DOUBLE PRECISION (SQLite: REAL affinity) for
epoch seconds, INTEGER 0/1/NULL for `private` so that one set of statements serves both.
"""

from __future__ import annotations

MIGRATIONS: tuple[tuple[int, tuple[str, ...]], ...] = (
    (1, ("""CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  repo TEXT NOT NULL,
  revision TEXT NOT NULL,
  policy_digest TEXT NOT NULL,
  ref TEXT,
  origin TEXT NOT NULL,
  status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done')),
  attempts INTEGER NOT NULL DEFAULT 0,
  lease_token TEXT,
  lease_until DOUBLE PRECISION,
  created_at DOUBLE PRECISION NOT NULL,
  updated_at DOUBLE PRECISION NOT NULL,
  UNIQUE (repo, revision, policy_digest))""",
         "CREATE INDEX IF NOT EXISTS jobs_status ON jobs (status, created_at)",
         """CREATE TABLE IF NOT EXISTS verdicts (
  job_id TEXT PRIMARY KEY REFERENCES jobs(id),
  decision TEXT NOT NULL,
  exit_code INTEGER NOT NULL,
  report_json TEXT,
  attestation_json TEXT,
  error TEXT,
  recorded_at DOUBLE PRECISION NOT NULL)""")),
    # Access control: 1 private, 0 public, NULL unknown (treated as private): jobs from before
    # the column are all unknown.
    (2, ("ALTER TABLE jobs ADD COLUMN private INTEGER",)),
    # Which replica (host:pid) holds a job's lease: operators see who is scanning what.
    (3, ("ALTER TABLE jobs ADD COLUMN claimed_by TEXT",)),
    # Failed credentials per client address (ratelimit.py), in the database so that every
    # replica on it counts every failure; rows older than the window are deleted as new come.
    (4, ("CREATE TABLE IF NOT EXISTS auth_failures (client TEXT NOT NULL, "
         "at DOUBLE PRECISION NOT NULL)",
         "CREATE INDEX IF NOT EXISTS auth_failures_client ON auth_failures (client, at)",
         "CREATE INDEX IF NOT EXISTS auth_failures_at ON auth_failures (at)")),
)

LATEST = MIGRATIONS[-1][0]

VERSION_TABLE = "CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)"


def legacy_version(tables: set[str], job_columns: set[str]) -> int:
    """The version of a SQLite database written before versioning: none, or 1, or 2 (which
    added `private`). PostgreSQL queues were versioned from the start."""
    if "jobs" not in tables:
        return 0
    return 2 if "private" in job_columns else 1
