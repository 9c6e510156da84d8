"""Per-request access decisions: which credential a request carries, whether it holds, whether
its address is rate-limited. Every denial is counted in the metrics by route and reason."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from adapterscan.integrations.server.access import (
    AccessConfig,
    ReadMode,
    bearer,
    matches_any,
    visible,
)
from adapterscan.integrations.server.db import Job, VerdictRow
from adapterscan.integrations.server.metrics import Metrics
from adapterscan.integrations.server.ratelimit import FailureLimiter, client_key
from adapterscan.integrations.server.session import SESSION_COOKIE, Sessions, SessionState


@dataclass(frozen=True)
class Access:
    authenticated: bool = False
    status: int = 0  # the HTTP status of a denial (401, 429); 0 when allowed
    reason: str = ""
    retry_after: int = 0

    @property
    def allowed(self) -> bool:
        return self.status == 0


def client_of(request: Request) -> str:
    return client_key(request.client.host) if request.client else "unknown"


class Guard:
    def __init__(self, config: AccessConfig, metrics: Metrics, limiter: FailureLimiter) -> None:
        self.config = config
        self.metrics = metrics
        self.limiter = limiter
        self.sessions = Sessions(config.read_tokens, config.session_s)

    def read(self, request: Request, route: str, *, anonymous_ok: bool | None = None,
             extra_tokens: tuple[str, ...] = ()) -> Access:
        """A read: a read token (Bearer), a dashboard session cookie, or, in a public read
        mode, nothing. A wrong credential is a failure even where anonymous reads are open."""
        if anonymous_ok is None:
            anonymous_ok = self.config.mode is not ReadMode.CREDENTIAL
        given = bearer(request.headers.get("authorization"))
        cookie = request.cookies.get(SESSION_COOKIE)
        if given is None and cookie is None:
            return self._anonymous(route, anonymous_ok)
        limited = self._limited(request, route)
        if limited is not None:
            return limited
        if given is not None:
            if matches_any(given, self.config.read_tokens + extra_tokens):
                return Access(authenticated=True)
            return self._failed(request, route)
        state = self.sessions.check(cookie or "")
        if state is SessionState.VALID:
            return Access(authenticated=True)
        if state is SessionState.FORGED:
            return self._failed(request, route)
        return self._anonymous(route, anonymous_ok)  # expired: as if there were no cookie

    def secret(self, request: Request, route: str, given: str | None,
               expected: tuple[str, ...]) -> Access:
        """A write or login credential (webhook secret, API token, login form)."""
        if not given:
            return self._deny(route, 401, "no_credential")
        limited = self._limited(request, route)
        if limited is not None:
            return limited
        if matches_any(given, expected):
            return Access(authenticated=True)
        return self._failed(request, route)

    def shown(self, rows: list[tuple[Job, VerdictRow | None]], access: Access
              ) -> list[tuple[Job, VerdictRow | None]]:
        """The rows this caller may see (unknown privacy counts as private)."""
        return [(j, v) for j, v in rows if visible(
            j.private, authenticated=access.authenticated, mode=self.config.mode)]

    def hidden(self, route: str) -> None:
        """An anonymous read of a job it may not see, or of none: both answer the same 404
        and count under one reason, so neither the body nor the metrics tell them apart."""
        self.metrics.denied(route, "not_found_or_hidden")

    def _anonymous(self, route: str, anonymous_ok: bool) -> Access:
        return Access() if anonymous_ok else self._deny(route, 401, "no_credential")

    def _limited(self, request: Request, route: str) -> Access | None:
        wait = self.limiter.retry_after(client_of(request))
        return self._deny(route, 429, "rate_limited", int(wait) + 1) if wait else None

    def _failed(self, request: Request, route: str) -> Access:
        self.limiter.fail(client_of(request))
        return self._deny(route, 401, "bad_credential")

    def _deny(self, route: str, status: int, reason: str, retry_after: int = 0) -> Access:
        self.metrics.denied(route, reason)
        return Access(status=status, reason=reason, retry_after=retry_after)
