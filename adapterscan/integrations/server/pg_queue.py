"""The queue in PostgreSQL (psycopg 3, a connection pool): several service replicas, one queue.

The statements are JobQueue's; here they get `%s` placeholders, the database's clock for leases
and `FOR UPDATE SKIP LOCKED` on the claim, so replicas claiming at once take different jobs
without waiting on each other. Connections are autocommit; writes run in explicit transactions.
Commits are synchronous (the server's default), so a 202 still means the job is on disk.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg_pool import ConnectionPool, PoolTimeout

from adapterscan.errors import UsageError
from adapterscan.integrations.server.base_queue import JobQueue
from adapterscan.integrations.server.db import Cursor, Db

_SCHEMA_LOCK = 0x6164_7363_616E  # pg_advisory_xact_lock key: one migration at a time


def describe(url: str) -> str:
    """user@host:port/dbname of a connection URL, never its password (for messages)."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(url)
    except psycopg.ProgrammingError:
        return "an unparsable postgresql:// URL"
    return (f"{info.get('user', '')}{'@' if info.get('user') else ''}{info.get('host', '')}"
            f":{info.get('port', 5432)}/{info.get('dbname', '')}")


class _Pg:
    """psycopg's connection with the `?` placeholders the shared statements use (none of the
    statements contains a literal `?` or `%`)."""

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self._conn = conn

    def execute(self, sql: str, params: Sequence[object] = (), /) -> Cursor:
        return self._conn.execute(sql.replace("?", "%s"), params)


class PostgresQueue(JobQueue):
    NOW = "EXTRACT(EPOCH FROM now())::float8"
    SKIP_LOCKED = "FOR UPDATE SKIP LOCKED"

    def __init__(self, url: str, *, max_pending: int = 10_000, max_attempts: int = 3,
                 pool_size: int = 10, connect_timeout_s: float = 15.0) -> None:
        super().__init__(max_pending=max_pending, max_attempts=max_attempts)
        self.where = describe(url)
        try:  # one plain connection first: a refused one or a bad login fails now, with why
            psycopg.connect(url, connect_timeout=max(1, round(connect_timeout_s))).close()
        except psycopg.Error as exc:
            # libpq's message names host and port, never the password; one line of it.
            reason = " ".join(str(exc).split()) or type(exc).__name__
            raise UsageError(f"cannot connect to the PostgreSQL queue at {self.where}: "
                             f"{reason}") from exc
        self._pool: ConnectionPool[psycopg.Connection[Any]] = ConnectionPool(
            url, min_size=1, max_size=max(2, pool_size), kwargs={"autocommit": True},
            open=False, name="adapterscan-queue")
        try:
            self._pool.open(wait=True, timeout=connect_timeout_s)
            self._migrate()
        except PoolTimeout as exc:
            self._pool.close()
            raise UsageError(f"cannot connect to the PostgreSQL queue at {self.where} within "
                             f"{connect_timeout_s:g} s") from exc
        except psycopg.Error as exc:
            self._pool.close()
            raise UsageError(f"the PostgreSQL queue at {self.where} cannot be used: "
                             f"{str(exc).strip()}") from exc

    @contextmanager
    def _tx(self) -> Iterator[Db]:
        with self._pool.connection() as conn, conn.transaction():
            yield _Pg(conn)

    @contextmanager
    def _read(self) -> Iterator[Db]:
        with self._pool.connection() as conn:
            yield _Pg(conn)

    def _lock_schema(self, db: Db) -> None:
        db.execute("SELECT pg_advisory_xact_lock(?)", (_SCHEMA_LOCK,))

    def _tables(self, db: Db) -> set[str]:
        return {r[0] for r in db.execute("SELECT table_name FROM information_schema.tables "
                                         "WHERE table_schema = current_schema()").fetchall()}

    def _columns(self, db: Db, table: str) -> set[str]:
        return {r[0] for r in db.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = "
            "current_schema() AND table_name = ?", (table,)).fetchall()}

    def close(self) -> None:
        self._pool.close()
