"""Scan workers: claim a job, renew its lease while scanning, record one signed verdict."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from adapterscan.integrations.server.metrics import Metrics
from adapterscan.integrations.server.queue import Job, JobQueue
from adapterscan.report import ScanReport

log = logging.getLogger("adapterscan.server")

Scanner = Callable[[Job], ScanReport]
Signer = Callable[[ScanReport], str]
Notifier = Callable[[dict[str, object]], None]


@dataclass(frozen=True)
class WorkerConfig:
    lease_s: float = 60.0
    poll_s: float = 0.2
    max_attempts: int = 3


class WorkerPool:
    def __init__(self, queue: JobQueue, scanner: Scanner, *, workers: int, config: WorkerConfig,
                 metrics: Metrics, signer: Signer | None = None,
                 notifier: Notifier | None = None) -> None:
        self.queue = queue
        self.scanner = scanner
        self.signer = signer
        self.notifier = notifier
        self.config = config
        self.metrics = metrics
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._loop, name=f"scan-worker-{i}",
                                          daemon=True) for i in range(workers)]

    def start(self) -> None:
        for t in self._threads:
            t.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                job = self.queue.claim(self.config.lease_s)
            except Exception:
                log.exception("claiming a job failed")
                job = None
            if job is None:
                self._stop.wait(self.config.poll_s)
                continue
            self.process(job)

    def process(self, job: Job) -> None:
        if job.attempts > self.config.max_attempts:
            # A job that killed its worker every time: record that, do not loop forever.
            self._record(job, "error", 3, None, None,
                         f"gave up after {job.attempts - 1} attempts (worker died each time)", 0.0)
            return
        done = threading.Event()
        renewer = threading.Thread(target=self._renew, args=(job, done), daemon=True)
        renewer.start()
        t0 = time.perf_counter()
        try:
            report = self.scanner(job)
        except Exception as exc:
            done.set()
            log.warning("scan of %s@%s failed: %s", job.repo, job.revision, exc)
            diag = exc.diagnostics() if hasattr(exc, "diagnostics") else f"{exc}"
            self._record(job, "error", 3, None, None, str(diag), time.perf_counter() - t0)
            return
        done.set()
        from adapterscan.cli.exit_codes import exit_code_for

        attestation = None
        error = None
        if self.signer is not None:
            try:
                attestation = self.signer(report)
            except Exception as exc:  # unsigned verdicts are recorded as errors, not passes
                error = f"signing failed: {exc}"
        decision = report.verdict.decision.value if error is None else "error"
        self._record(job, decision, int(exit_code_for(report)), report.to_json(indent=None),
                     attestation, error, time.perf_counter() - t0)

    def _renew(self, job: Job, done: threading.Event) -> None:
        while not done.wait(self.config.lease_s / 3):
            if not self.queue.renew(job, self.config.lease_s):
                return

    def _record(self, job: Job, decision: str, code: int, report: str | None,
                attestation: str | None, error: str | None, seconds: float) -> None:
        if not self.queue.record(job, decision=decision, exit_code=code, report_json=report,
                                 attestation_json=attestation, error=error):
            log.info("job %s was finished by another worker; dropping this result", job.id)
            return
        self.metrics.scan_done(decision, seconds)
        if self.notifier is not None:
            try:
                self.notifier({"job": job.id, "repo": job.repo, "revision": job.revision,
                               "decision": decision, "exit_code": code,
                               "attestation": json.loads(attestation) if attestation else None})
            except Exception as exc:
                log.warning("notification for job %s failed: %s", job.id, exc)
