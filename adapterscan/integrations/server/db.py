"""What both queue back ends share below the statements: the rows (a job, its verdict), how a
row of the shared SELECTs becomes them, and the connection the statements need.

A job is unique on (repo, revision, policy digest). `private` is 1 (a private repo), 0 (public)
or NULL (unknown: treated as private by the access rules in access.py; databases from before
the column get it with NULL everywhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol


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
    claimed_by: str | None = None  # host:pid of the replica that holds (or last held) the lease


@dataclass(frozen=True)
class VerdictRow:
    job_id: str
    decision: str
    exit_code: int
    report_json: str | None
    attestation_json: str | None
    error: str | None
    recorded_at: float


class Cursor(Protocol):
    @property
    def rowcount(self) -> int: ...
    def fetchone(self) -> Any: ...
    def fetchall(self) -> list[Any]: ...


class Db(Protocol):
    """What the statements need of a connection: sqlite3's, or psycopg's behind a shim."""

    def execute(self, sql: str, params: Sequence[object] = ..., /) -> Cursor: ...


JOB_COLUMNS = ("id", "repo", "revision", "policy_digest", "ref", "origin", "status", "attempts",
               "lease_token", "created_at", "updated_at", "private", "claimed_by")
JOB_SELECT = ", ".join(JOB_COLUMNS)
#: The columns of `jobs j LEFT JOIN verdicts v`, in the order job_and_verdict reads them.
JOB_VERDICT_SELECT = (", ".join(f"j.{c}" for c in JOB_COLUMNS) + ", v.job_id, v.decision, "
                      "v.exit_code, v.report_json, v.attestation_json, v.error, v.recorded_at")
_N = len(JOB_COLUMNS)


def job_from_row(row: Sequence[Any]) -> Job:
    """A row that starts with JOB_COLUMNS."""
    cols = list(row[:_N])
    private = cols[11]
    cols[11] = None if private is None else bool(private)
    return Job(*cols)


def job_and_verdict(row: Sequence[Any]) -> tuple[Job, VerdictRow | None]:
    """A row of jobs LEFT JOIN verdicts."""
    verdict = row[_N:]
    return job_from_row(row), (VerdictRow(*verdict) if verdict[0] is not None else None)
