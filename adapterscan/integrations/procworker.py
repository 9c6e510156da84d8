"""One long-lived spawned process that runs one item at a time and can be killed on a time limit.

The batch engine and the admission service scan in these: a crash, a hang or a memory blow-up in
one scan kills only its process, and a time limit kills it for real (a thread cannot be stopped).
Imports and set-up (the rule set, a signing key) are paid once per process, not per item.

`factory(setup)` runs in the child and returns the handler that turns each request string into a
response string; both must be importable module-level functions (the spawn start method pickles
them by reference) and `setup` plain data.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import signal
import sys
from collections.abc import Callable
from typing import Any

Handler = Callable[[str], str]
Factory = Callable[[Any], Handler]

_PR_SET_PDEATHSIG = 1


class WorkerLost(Exception):
    """The item got no answer: it ran past its time limit (killed) or its process died."""

    def __init__(self, *, timed_out: bool, exitcode: int | None) -> None:
        self.timed_out = timed_out
        self.exitcode = exitcode
        super().__init__("timed out" if timed_out else f"the process died (exit {exitcode})")


def _die_with_parent() -> None:
    """Linux: if the parent is killed (kill -9 of a service replica), take this process down too,
    so a hung scan does not outlive the process that was waiting for it."""
    if sys.platform.startswith("linux"):
        # Not fatal when unavailable: the process then exits at the pipe's EOF.
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    parent = mp.parent_process()
    if parent is not None and os.getppid() != parent.pid:  # it died before the line above
        os._exit(0)


def _serve(conn: Any, factory: Factory, setup: Any) -> None:
    _die_with_parent()
    handle = factory(setup)
    conn.send("ready")
    while True:
        try:
            item = conn.recv()
        except EOFError:  # the parent went away
            return
        if item is None:
            return
        conn.send(handle(item))


class WorkerProcess:
    """A spawned child serving `factory(setup)`; replaced by the caller once it is lost."""

    def __init__(self, factory: Factory, setup: Any) -> None:
        """Start the process; wait_ready() waits for its set-up (kill() may interrupt it)."""
        ctx = mp.get_context("spawn")  # no inherited threads, locks or database connections
        self.conn, child = ctx.Pipe()
        self.proc = ctx.Process(target=_serve, args=(child, factory, setup), daemon=True)
        self.proc.start()
        child.close()
        self.ready = False

    @classmethod
    def started(cls, factory: Factory, setup: Any) -> WorkerProcess:
        worker = cls(factory, setup)
        worker.wait_ready()
        return worker

    def wait_ready(self, timeout_s: float = 120.0) -> None:
        """Raises RuntimeError (and closes this worker) when set-up failed, timed out or the
        process was killed meanwhile."""
        try:
            ready = self.conn.poll(timeout_s) and self.conn.recv() == "ready"
        except (EOFError, OSError):
            ready = False
        if not ready:
            self.close(kill=True)
            raise RuntimeError(f"a worker process failed to start (exit {self.proc.exitcode})")
        self.ready = True

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.is_alive()

    def run(self, item: str, timeout_s: float) -> str:
        """The handler's answer to `item`. Raises WorkerLost when the time limit passed (the
        process is killed) or the process died; either way this worker is then closed."""
        try:
            self.conn.send(item)
            if self.conn.poll(timeout_s):
                answer: str = self.conn.recv()
                return answer
            timed_out = True
        except (EOFError, OSError):
            timed_out = False
        self.close(kill=True)
        raise WorkerLost(timed_out=timed_out, exitcode=self.proc.exitcode)

    def kill(self) -> None:
        """Kill the process from any thread; the thread waiting in run() gets WorkerLost."""
        if self.proc.is_alive():
            self.proc.kill()

    def close(self, *, kill: bool = False) -> None:
        """Stop the process: politely (finish, then exit) or at once. Safe to call twice."""
        if not kill and self.proc.is_alive():
            try:
                self.conn.send(None)
                self.proc.join(5)
            except OSError:
                pass
        if self.proc.is_alive():
            self.proc.kill()
        self.proc.join(5)
        self.conn.close()
