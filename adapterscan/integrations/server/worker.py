"""Scan workers: claim a job, renew its lease while a scan process works on it, record one verdict.

Each worker thread owns one long-lived scan process (procworker). The thread only waits: the scan
runs in the process, under a time limit. A scan that runs past it is killed and recorded as an
`error` verdict, as is one whose process dies; the thread starts a fresh process and goes on.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from adapterscan.integrations.procworker import WorkerLost, WorkerProcess, WorkerStartError
from adapterscan.integrations.server.base_queue import JobQueue
from adapterscan.integrations.server.db import Job
from adapterscan.integrations.server.metrics import Metrics
from adapterscan.integrations.server.scanproc import (
    ScanOutcome,
    ScanSetup,
    scan_handler,
    scan_request,
)

log = logging.getLogger("adapterscan.server")

Notifier = Callable[[dict[str, object]], None]


@dataclass(frozen=True)
class WorkerConfig:
    lease_s: float = 60.0
    poll_s: float = 0.2
    max_attempts: int = 3
    scan_timeout_s: float = 600.0  # a scan still running then is killed: an `error` verdict
    restart_backoff_s: float = 5.0  # wait before trying again when a scan process cannot start


def _lost(lost: WorkerLost, timeout_s: float) -> str:
    if lost.timed_out:
        return f"no result within {timeout_s:g} s: the scan was killed at its time limit"
    code = lost.exitcode
    how = (f"signal {signal.Signals(-code).name}" if code is not None and code < 0
           else f"exit code {code}")
    return f"the scan process died ({how}) before it answered"


class WorkerPool:
    def __init__(self, queue: JobQueue, setup: ScanSetup, *, workers: int,
                 config: WorkerConfig, metrics: Metrics,
                 notifier: Notifier | None = None) -> None:
        self.queue = queue
        self.setup = setup
        self.notifier = notifier
        self.config = config
        self.metrics = metrics
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._procs: dict[int, WorkerProcess] = {}
        self._start_errors: set[str] = set()
        self._threads = [threading.Thread(target=self._loop, args=(i,), name=f"scan-worker-{i}",
                                          daemon=True) for i in range(workers)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        """Stop claiming, kill the scans in flight (their jobs are given back to the queue at
        once, for another replica or the next start) and wait for the threads."""
        self._stop.set()
        with self._lock:
            for proc in self._procs.values():
                proc.kill()
        for t in self._threads:
            t.join(timeout)

    def ready(self) -> int:
        """Scan processes started and alive (for /healthz): below `workers` while they start,
        or when they cannot."""
        with self._lock:
            return sum(p.ready and p.alive() for p in self._procs.values())

    def _spawn(self, slot: int) -> WorkerProcess | None:
        try:
            proc = WorkerProcess(scan_handler, self.setup)
            with self._lock:  # registered before its set-up, so that stop() can cut that short
                self._procs[slot] = proc
                if self._stop.is_set():
                    proc.kill()
            proc.wait_ready()
        except (WorkerStartError, OSError) as exc:  # OSError: no process could be made at all
            if not self._stop.is_set():
                with self._lock:  # each reason once at error level, not every slot every retry
                    first = str(exc) not in self._start_errors
                    self._start_errors.add(str(exc))
                log.log(logging.ERROR if first else logging.DEBUG,
                        "scan worker %d: %s; retrying every %g s", slot, exc,
                        self.config.restart_backoff_s)
                self._stop.wait(self.config.restart_backoff_s)
            return None
        return proc

    def _loop(self, slot: int) -> None:
        proc: WorkerProcess | None = None
        while not self._stop.is_set():
            if proc is None or not proc.alive():
                if proc is not None:  # died while idle: no job was lost with it
                    proc.close(kill=True)
                proc = self._spawn(slot)
                continue
            try:
                job = self.queue.claim(self.config.lease_s)
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is None:
                self._stop.wait(self.config.poll_s)
                continue
            try:
                proc = self.process(job, proc)
            except Exception:  # e.g. the database went away: the lease expires, a retry follows
                log.exception("job %s could not be finished; it will be retried", job.id)
        if proc is not None:
            proc.close(kill=True)

    def process(self, job: Job, proc: WorkerProcess) -> WorkerProcess | None:
        """Scan `job` in `proc` and record its verdict; returns the process, None if lost."""
        if job.attempts > self.config.max_attempts:
            # A job whose service process died every time: record that, do not loop forever.
            self._record(job, ScanOutcome.failed(
                f"gave up after {job.attempts - 1} attempts (the worker died each time)"), 0.0)
            return proc
        done = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(job, done), daemon=True)
        renewer.start()
        t0 = time.perf_counter()
        kept: WorkerProcess | None = proc
        try:
            outcome = ScanOutcome.from_json(
                proc.run(scan_request(job.repo, job.revision), self.config.scan_timeout_s))
        except WorkerLost as lost:
            kept = None
            if self._stop.is_set():  # killed by stop(): not the scan's fault
                done.set()
                self.queue.release(job)
                return None
            self.metrics.scan_lost("timeout" if lost.timed_out else "died")
            outcome = ScanOutcome.failed(_lost(lost, self.config.scan_timeout_s))
        finally:
            done.set()
        if outcome.error:
            log.warning("scan of %s@%s failed: %s", job.repo, job.revision, outcome.error)
        self._record(job, outcome, time.perf_counter() - t0)
        return kept

    def _renew(self, job: Job, done: threading.Event) -> None:
        while not done.wait(self.config.lease_s / 3):
            try:
                if not self.queue.renew(job, self.config.lease_s):
                    return  # someone else holds it now: our result will not be recorded
            except Exception:  # a database hiccup: try again at the next tick
                log.exception("renewing the lease of job %s failed", job.id)

    def _record(self, job: Job, outcome: ScanOutcome, seconds: float) -> None:
        if not self.queue.record(job, decision=outcome.decision, exit_code=outcome.exit_code,
                                 report_json=outcome.report_json,
                                 attestation_json=outcome.attestation_json,
                                 error=outcome.error):
            log.info("job %s was finished by another worker; dropping this result", job.id)
            return
        self.metrics.scan_done(outcome.decision, seconds)
        if self.notifier is not None:
            attestation = outcome.attestation_json
            try:
                self.notifier({"job": job.id, "repo": job.repo, "revision": job.revision,
                               "decision": outcome.decision, "exit_code": outcome.exit_code,
                               "attestation": json.loads(attestation) if attestation else None})
            except Exception as exc:
                log.warning("notification for job %s failed: %s", job.id, exc)
