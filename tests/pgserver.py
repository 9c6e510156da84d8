"""A throwaway PostgreSQL cluster for tests and benchmarks: Debian's binaries, a temp dir,
127.0.0.1 on a free port, the socket in the temp dir.

initdb refuses to run as root: as root the cluster is made and run by the `postgres` user (the
one Debian's package creates). `./dev test` installs the package when it is missing.

    with PostgresServer() as pg:
        url = pg.database("queue")   # postgresql://postgres@127.0.0.1:PORT/queue
"""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from types import TracebackType

import pytest


def pg_bindir() -> Path | None:
    """The newest installed server's binaries (Debian keeps them off PATH), else PATH's."""
    versions = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                      key=lambda p: int(p.parent.parent.name) if p.parent.parent.name.isdigit()
                      else 0)
    if versions:
        return versions[-1].parent
    initdb = shutil.which("initdb")
    return Path(initdb).resolve().parent if initdb else None


def postgres_or_skip() -> Path:
    bindir = pg_bindir()
    problem = None
    if bindir is None:
        problem = "PostgreSQL's server binaries (initdb, pg_ctl) are not installed"
    elif os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            problem = "running as root, and there is no postgres user to run initdb as"
    try:
        import psycopg  # noqa: F401
    except ImportError:
        problem = "psycopg is not installed (pip install 'adapterscan[postgres]')"
    if problem:
        if os.environ.get("CI"):
            raise AssertionError(f"CI must run the PostgreSQL tests: {problem}")
        pytest.skip(problem)
    assert bindir is not None
    return bindir


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class PostgresServer:
    """`durable=False` (tests) turns fsync off: the tests kill service replicas, never the
    database. Benchmarks run with the server's defaults."""

    def __init__(self, *, durable: bool = False) -> None:
        self.bindir = postgres_or_skip()
        self.durable = durable
        self.port = _free_port()
        # Not under pytest's tmp dirs: those are root-only, and the server runs as postgres.
        self.dir = Path(tempfile.mkdtemp(prefix="adapterscan-pg-"))
        self._as: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.dir, user.pw_uid, user.pw_gid)
            self._as = ["runuser", "-u", "postgres", "--"]

    def _run(self, *cmd: str) -> None:
        done = subprocess.run([*self._as, *cmd], capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stdout}{done.stderr}")

    def __enter__(self) -> PostgresServer:
        data = self.dir / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
                  "-E", "UTF8", "--no-sync")
        opts = f"-c listen_addresses=127.0.0.1 -p {self.port} -c unix_socket_directories={self.dir}"
        if not self.durable:
            opts += " -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.dir / "log"),
                      "-w", "-t", "60", "-o", opts, "start")
        except RuntimeError as exc:
            log = self.dir / "log"
            shutil.rmtree(self.dir, ignore_errors=True)
            raise RuntimeError(f"{exc}\n{log.read_text() if log.exists() else ''}") from None
        return self

    def url(self, dbname: str = "postgres") -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/{dbname}"

    def database(self, name: str) -> str:
        """Create an empty database; returns its URL."""
        import psycopg
        from psycopg import sql

        with psycopg.connect(self.url(), autocommit=True) as conn:
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        return self.url(name)

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.dir / "data"), "-m",
                      "immediate", "-w", "stop")
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)
