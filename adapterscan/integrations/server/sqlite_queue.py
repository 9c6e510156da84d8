"""The queue in SQLite (WAL, synchronous=FULL): the embedded default, one host.

Writers are serialised by BEGIN IMMEDIATE, so the claim needs no row lock of its own.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from adapterscan.integrations.server.base_queue import JobQueue
from adapterscan.integrations.server.db import Db


class SqliteQueue(JobQueue):
    NOW = "((julianday('now') - 2440587.5) * 86400.0)"
    SKIP_LOCKED = ""

    def __init__(self, path: Path, *, max_pending: int = 10_000, max_attempts: int = 3) -> None:
        super().__init__(max_pending=max_pending, max_attempts=max_attempts)
        self.path = path
        self._local = threading.local()  # sqlite3 connections stay in the thread that made them
        self._write_lock = threading.Lock()
        self._migrate()

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
    def _tx(self) -> Iterator[Db]:
        db = self._conn()
        # Writers of this process queue on a lock: SQLite's own busy handler would make them
        # sleep and retry, which under concurrent deliveries costs more than the writes.
        with self._write_lock:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @contextmanager
    def _read(self) -> Iterator[Db]:
        yield self._conn()

    def _lock_schema(self, db: Db) -> None:
        """BEGIN IMMEDIATE already holds the database's write lock."""

    def _tables(self, db: Db) -> set[str]:
        return {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
                .fetchall()}

    def _columns(self, db: Db, table: str) -> set[str]:
        return {r[1] for r in db.execute(f"PRAGMA table_info({table})").fetchall()}

    def close(self) -> None:
        """Nothing to release: each thread's connection closes with the thread, and no write is
        left open between statements."""
