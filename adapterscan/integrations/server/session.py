"""Dashboard sessions: HMAC-signed, expiring cookies, and the login form's CSRF checks.

A session cookie is `v1.<expiry>.<nonce>.<mac>`, the MAC keyed by a key derived from the token
the user logged in with. Nothing is stored server-side: replicas that share the token accept each
other's sessions, and rotating a token ends every session opened with it.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit

from adapterscan.integrations.server.access import token_equal

SESSION_COOKIE = "adapterscan_session"
CSRF_COOKIE = "adapterscan_csrf"
_MAX_COOKIE = 200  # a genuine cookie is about 100 characters
_KEY_LABEL = b"adapterscan dashboard session v1"
_NEXT_RE = re.compile(r"/admissions/[0-9a-f]{32}")


class SessionState(enum.Enum):
    VALID = "valid"
    EXPIRED = "expired"  # genuine but old: log in again, not an attack
    FORGED = "forged"  # malformed or a wrong MAC: counts as a failed credential


class Sessions:
    def __init__(self, tokens: Sequence[str], lifetime_s: float,
                 clock: Callable[[], float] = time.time) -> None:
        self._keys = {t: hmac.new(t.encode(), _KEY_LABEL, hashlib.sha256).digest()
                      for t in tokens}
        self.lifetime_s = lifetime_s
        self._clock = clock

    def issue(self, token: str) -> str:
        """A cookie value for a user who presented `token` (one of the configured ones)."""
        body = f"v1.{int(self._clock() + self.lifetime_s)}.{secrets.token_urlsafe(16)}"
        return f"{body}.{self._mac(self._keys[token], body)}"

    def check(self, value: str) -> SessionState:
        parts = value.split(".")
        if len(value) > _MAX_COOKIE or len(parts) != 4 or parts[0] != "v1" \
                or not parts[1].isdigit():
            return SessionState.FORGED
        body = ".".join(parts[:3])
        ok = [hmac.compare_digest(self._mac(k, body), parts[3]) for k in self._keys.values()]
        if not any(ok):
            return SessionState.FORGED
        return SessionState.VALID if int(parts[1]) > self._clock() else SessionState.EXPIRED

    @staticmethod
    def _mac(key: bytes, body: str) -> str:
        return hmac.new(key, body.encode(), hashlib.sha256).hexdigest()


def new_csrf() -> str:
    return secrets.token_urlsafe(32)


def csrf_ok(form_value: str | None, cookie_value: str | None) -> bool:
    """Double submit: the form field must equal the SameSite=Strict cookie set with the form."""
    if not form_value or not cookie_value:
        return False
    return token_equal(form_value, cookie_value)


def same_origin(origin: str | None, fetch_site: str | None, host: str | None) -> bool:
    """A browser's form post comes from this service's own pages, not another site's."""
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        return False
    if origin is None:
        return True  # not a browser (or an old one): the CSRF token still has to match
    if origin == "null" or host is None:
        return False
    return urlsplit(origin).netloc.lower() == host.lower()


def safe_next(path: str | None) -> str:
    """Where to go after logging in: only this service's own dashboard pages (no open redirect)."""
    return path if path and _NEXT_RE.fullmatch(path) else "/"
