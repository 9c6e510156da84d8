"""The job queue a `--db` names: PostgreSQL for a postgresql:// URL, else a SQLite file.

The statements and guarantees are in base_queue.py; the back ends import only that and db.py,
and this module imports a back end only when it is asked for (psycopg is an extra).
"""

from __future__ import annotations

from pathlib import Path

from adapterscan.extras import require_extra
from adapterscan.integrations.server.base_queue import JobQueue


def is_postgres(db: str) -> bool:
    return db.startswith(("postgresql://", "postgres://"))


def open_queue(db: str, *, max_pending: int = 10_000, pool_size: int = 10) -> JobQueue:
    """`--db`: a postgresql:// URL, or the path of a SQLite file. Creates or migrates the
    schema; raises UsageError when the database cannot be used."""
    if is_postgres(db):
        require_extra("postgres", "a postgresql:// queue")
        from adapterscan.integrations.server.pg_queue import PostgresQueue

        return PostgresQueue(db, max_pending=max_pending, pool_size=pool_size)
    from adapterscan.integrations.server.sqlite_queue import SqliteQueue

    return SqliteQueue(Path(db), max_pending=max_pending)

