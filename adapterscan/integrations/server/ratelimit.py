"""Failed-credential limits per client address: a guesser gets `max_failures` tries a window.

While an address is over the limit every credentialed request from it answers 429, the right
token included: otherwise the limit would tell a guesser which guess was right.
"""

from __future__ import annotations

import ipaddress

from adapterscan.integrations.server.base_queue import JobQueue


def client_key(host: str) -> str:
    """The unit a limit applies to: one IPv4 address, or one IPv6 /64 (a single host commonly
    holds a whole /64, so counting single IPv6 addresses would limit nobody)."""
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return host
    if isinstance(addr, ipaddress.IPv6Address):
        if addr.ipv4_mapped is not None:
            return str(addr.ipv4_mapped)
        return str(ipaddress.IPv6Network((addr, 64), strict=False))
    return str(addr)


class FailureLimiter:
    """Counts live in the queue's database (table auth_failures), so every replica on one
    database shares them: a guesser gets `max_failures` tries a window in all, not per replica.
    Memory stays bounded: failures older than the window are deleted as new ones come."""

    def __init__(self, queue: JobQueue, max_failures: int, window_s: float) -> None:
        self.queue = queue
        self.max_failures = max_failures
        self.window_s = window_s

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it is not limited."""
        return self.queue.failure_wait(client, self.max_failures, self.window_s)

    def fail(self, client: str) -> None:
        self.queue.add_failure(client, self.window_s)
