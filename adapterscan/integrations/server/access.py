"""Who may read what: the read mode, constant-time token checks, private-repo visibility.

Pure logic, no web framework and no database: the app asks these functions, the queue only stores
each job's `private` flag (None = unknown, treated as private).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
from collections.abc import Iterable
from dataclasses import dataclass

from adapterscan.errors import UsageError

MIN_TOKEN_CHARS = 16  # a read token guards private reports: no short, guessable ones


class ReadMode(enum.Enum):
    CREDENTIAL = "credential"  # the default: every read but /healthz needs a credential
    PUBLIC = "public"  # public repos' jobs readable by anyone; private ones need the credential
    ALL = "all"  # everything readable by anyone, private repos' reports included


@dataclass(frozen=True)
class AccessConfig:
    mode: ReadMode = ReadMode.CREDENTIAL
    read_tokens: tuple[str, ...] = ()  # the read token and the API token
    metrics_token: str | None = None
    session_s: float = 8 * 3600.0
    max_failures: int = 10  # failed credentials per client address and window before 429
    failure_window_s: float = 60.0

    def __post_init__(self) -> None:
        for name, token in (("read or API token", t) for t in self.read_tokens):
            _check_strength(name, token)
        if self.metrics_token is not None:
            _check_strength("metrics token", self.metrics_token)


def _check_strength(name: str, token: str) -> None:
    if len(token) < MIN_TOKEN_CHARS:
        raise UsageError(f"the {name} has {len(token)} characters; at least {MIN_TOKEN_CHARS} "
                         "are required", hint="generate one: python -c 'import secrets; "
                         "print(secrets.token_urlsafe(32))'")


def token_equal(given: str, expected: str) -> bool:
    """Constant time, length included: compare_digest on equal-length digests."""
    return hmac.compare_digest(hashlib.sha256(given.encode()).digest(),
                               hashlib.sha256(expected.encode()).digest())


def matches_any(given: str, tokens: Iterable[str]) -> bool:
    """Compare with every token (no early exit), so timing does not say which one matched."""
    results = [token_equal(given, t) for t in tokens]
    return any(results)


def bearer(header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None when there is none."""
    if not header:
        return None
    scheme, _, token = header.partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def visible(private: bool | None, *, authenticated: bool, mode: ReadMode) -> bool:
    """May this caller see a job of a repo with this privacy? Unknown privacy is private."""
    if authenticated or mode is ReadMode.ALL:
        return True
    return mode is ReadMode.PUBLIC and private is False


def accepts_job(private: bool | None, mode: ReadMode) -> bool:
    """With public reads for public repos only, the service holds no private (or unknown) jobs:
    it then starts again without --public-reads=all after a restart."""
    return mode is not ReadMode.PUBLIC or private is False


def check_start(mode: ReadMode, private_jobs: int) -> None:
    """Refuse --public-reads=public while the queue holds private or unknown-privacy jobs."""
    if mode is ReadMode.PUBLIC and private_jobs:
        raise UsageError(
            f"the queue holds {private_jobs} job(s) of private repos (or of unknown privacy, "
            "from before privacy was recorded): refusing to start with --public-reads=public",
            hint="drop --public-reads (reads need a credential), or pass --public-reads=all to "
                 "make private repos' reports readable by anyone")
