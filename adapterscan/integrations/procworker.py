"""One long-lived spawned process that runs one item at a time and can be killed on a time limit.

The batch engine and the admission service scan in these: a crash, a hang or a memory blow-up in
one scan kills only its process, and a time limit kills it for real (a thread cannot be stopped).
Imports and set-up (the rule set, a signing key) are paid once per process, not per item.

`factory(setup)` runs in the child and returns the handler that turns each request string into a
response string; both must be importable module-level functions (the spawn start method pickles
them by reference) and `setup` plain data. `answers()` runs a list of items on several of these
processes at once.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing as mp
import os
import queue
import signal
import sys
import threading
from collections.abc import Callable, Generator, Sequence
from typing import Any

from adapterscan.errors import AdapterScanError

Handler = Callable[[str], str]
Factory = Callable[[Any], Handler]

_PR_SET_PDEATHSIG = 1
_READY = "ready"
_FAILED = "failed"


def describe(exc: BaseException) -> str:
    """One exception as a user reads it: our errors explain themselves, others by type."""
    if isinstance(exc, AdapterScanError):
        return exc.diagnostics()
    return f"{type(exc).__name__}: {exc}"


class WorkerStartError(RuntimeError):
    """The process did not get ready: its set-up failed (the reason comes from the child), it
    did not answer in time, or it was killed meanwhile."""


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
    try:
        handle = factory(setup)
    except Exception as exc:
        # Told to the parent, which reports it once: a traceback printed by each child process
        # would reach the user's terminal once per worker (a missing package, a bad set-up).
        conn.send((_FAILED, describe(exc)))
        return
    conn.send(_READY)
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
        """Raises WorkerStartError (and closes this worker) when set-up failed, timed out or the
        process was killed meanwhile."""
        try:
            answer = self.conn.recv() if self.conn.poll(timeout_s) else None
        except (EOFError, OSError):
            answer = None
        if answer != _READY:
            self.close(kill=True)
            why = (answer[1] if isinstance(answer, tuple) and answer[0] == _FAILED
                   else f"exit {self.proc.exitcode}")
            raise WorkerStartError(f"a worker process failed to start: {why}")
        self.ready = True

    @property
    def pid(self) -> int | None:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.is_alive()

    def run(self, item: str, timeout_s: float | None) -> str:
        """The handler's answer to `item` (None: no time limit). Raises WorkerLost when the time
        limit passed (the process is killed) or the process died; either way this worker is
        then closed."""
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


def answers(factory: Factory, setup: Any, items: Sequence[str], *, workers: int,
            timeout_s: float | None = None
            ) -> Generator[tuple[int, str | Exception], None, None]:
    """(index, answer) for every item of `items`, as each is answered, from `workers` processes
    serving `factory(setup)`, each driven by a thread of this process. An item whose process
    could not start (WorkerStartError), ran past `timeout_s` or died (WorkerLost) gets the
    exception instead of an answer, and the next item gets a fresh process: a dead process
    never leaves the caller waiting. Leaving the loop early (or close()) kills the processes
    still running."""
    todo: queue.SimpleQueue[int] = queue.SimpleQueue()
    for i in range(len(items)):
        todo.put(i)
    done: queue.SimpleQueue[tuple[int, str | Exception]] = queue.SimpleQueue()
    stop = threading.Event()
    lock = threading.Lock()  # a process starts before the stop or not at all
    started: list[WorkerProcess] = []  # every process started, for the early-exit kill

    def start() -> WorkerProcess | None:
        with lock:
            if stop.is_set():
                return None
            started.append(WorkerProcess(factory, setup))
            return started[-1]

    def drive() -> None:
        worker: WorkerProcess | None = None
        while not stop.is_set():
            try:
                i = todo.get_nowait()
            except queue.Empty:
                break
            try:
                if worker is None:
                    if (worker := start()) is None:
                        break
                    worker.wait_ready()
                done.put((i, worker.run(items[i], timeout_s)))
            except Exception as exc:  # every item gets one put, or the caller would wait forever
                if worker is not None:
                    worker.close(kill=True)
                worker = None
                done.put((i, exc))
        if worker is not None:
            worker.close()

    threads = [threading.Thread(target=drive, daemon=True)
               for _ in range(max(1, min(workers, len(items))))]
    for t in threads:
        t.start()
    left = len(items)
    try:
        while left:
            answer = done.get()
            left -= 1
            yield answer
    finally:
        with lock:
            stop.set()
            unfinished: list[WorkerProcess] = list(started) if left else []
        for w in unfinished:  # the caller left early: what still runs is not wanted
            w.kill()
        for t in threads:
            t.join()
