"""Prometheus text exposition of the service's counters (no client library needed)."""

from __future__ import annotations

import threading
from collections import Counter

BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


class Metrics:
    """Per-app counters; owned by the app, never module-global."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, int]] = Counter()
        self.verdicts: Counter[str] = Counter()
        self.denials: Counter[tuple[str, str]] = Counter()
        self.lost: Counter[str] = Counter()
        self._hist = [0] * (len(BUCKETS) + 1)
        self._sum = 0.0

    def request(self, route: str, status: int) -> None:
        with self._lock:
            self.requests[(route, status)] += 1

    def denied(self, route: str, reason: str) -> None:
        with self._lock:
            self.denials[(route, reason)] += 1

    def scan_lost(self, reason: str) -> None:
        """A scan process killed at its time limit ("timeout") or dead ("died")."""
        with self._lock:
            self.lost[reason] += 1

    def scan_done(self, decision: str, seconds: float) -> None:
        with self._lock:
            self.verdicts[decision] += 1
            self._sum += seconds
            for i, b in enumerate(BUCKETS):
                if seconds <= b:
                    self._hist[i] += 1
                    break
            else:
                self._hist[-1] += 1

    def render(self, queue_counts: dict[str, int]) -> str:
        with self._lock:
            lines = ["# HELP adapterscan_http_requests_total HTTP requests by route and status",
                     "# TYPE adapterscan_http_requests_total counter"]
            lines += [f'adapterscan_http_requests_total{{route="{r}",status="{s}"}} {n}'
                      for (r, s), n in sorted(self.requests.items())]
            lines += ["# HELP adapterscan_denied_requests_total requests refused for want of a "
                      "valid credential (or of a visible job), by route and reason",
                      "# TYPE adapterscan_denied_requests_total counter"]
            lines += [f'adapterscan_denied_requests_total{{route="{r}",reason="{why}"}} {n}'
                      for (r, why), n in sorted(self.denials.items())]
            lines += ["# HELP adapterscan_scans_total scans finished by this process",
                      "# TYPE adapterscan_scans_total counter"]
            lines += [f'adapterscan_scans_total{{decision="{d}"}} {n}'
                      for d, n in sorted(self.verdicts.items())]
            lines += ["# HELP adapterscan_scan_processes_lost_total scans whose process was "
                      "killed at the time limit or died (each recorded as an error verdict)",
                      "# TYPE adapterscan_scan_processes_lost_total counter"]
            lines += [f'adapterscan_scan_processes_lost_total{{reason="{r}"}} {n}'
                      for r, n in sorted(self.lost.items())]
            lines += ["# HELP adapterscan_scan_seconds scan duration",
                      "# TYPE adapterscan_scan_seconds histogram"]
            cum = 0
            for b, n in zip(BUCKETS, self._hist, strict=False):
                cum += n
                lines.append(f'adapterscan_scan_seconds_bucket{{le="{b}"}} {cum}')
            cum += self._hist[-1]
            lines.append(f'adapterscan_scan_seconds_bucket{{le="+Inf"}} {cum}')
            lines.append(f"adapterscan_scan_seconds_sum {self._sum:.6f}")
            lines.append(f"adapterscan_scan_seconds_count {cum}")
        lines += ["# HELP adapterscan_jobs jobs in the durable queue by status",
                  "# TYPE adapterscan_jobs gauge"]
        lines += [f'adapterscan_jobs{{status="{s}"}} {n}' for s, n in sorted(queue_counts.items())]
        return "\n".join(lines) + "\n"
