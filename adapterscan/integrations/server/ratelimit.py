"""Failed-credential limits per client address: a guesser gets `max_failures` tries a window.

While an address is over the limit every credentialed request from it answers 429, the right
token included: otherwise the limit would tell a guesser which guess was right.
"""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


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
    def __init__(self, max_failures: int, window_s: float, *, max_clients: int = 65_536,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients  # bounded memory under many source addresses
        self._clock = clock
        self._lock = threading.Lock()
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str) -> float:
        """Seconds until `client` may try again; 0 when it is not limited."""
        with self._lock:
            times = self._recent(client)
            if times is None or len(times) < self.max_failures:
                return 0.0
            return max(times[0] + self.window_s - self._clock(), 0.001)

    def fail(self, client: str) -> None:
        with self._lock:
            times = self._recent(client)
            if times is None:
                times = self._failures[client] = deque(maxlen=self.max_failures)
                while len(self._failures) > self.max_clients:
                    self._failures.popitem(last=False)
            times.append(self._clock())
            self._failures.move_to_end(client)

    def _recent(self, client: str) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        cutoff = self._clock() - self.window_s
        while times and times[0] <= cutoff:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times
