"""Access rules without a server: tokens, visibility, sessions, CSRF checks, client keys.

The failure limiter keeps its counts in the queue's database: tested with the queue."""

from __future__ import annotations

import pytest

from adapterscan.errors import UsageError
from adapterscan.integrations.server.access import (
    AccessConfig,
    ReadMode,
    accepts_job,
    bearer,
    check_start,
    matches_any,
    token_equal,
    visible,
)
from adapterscan.integrations.server.ratelimit import client_key
from adapterscan.integrations.server.session import (
    Sessions,
    SessionState,
    csrf_ok,
    safe_next,
    same_origin,
)

TOKEN = "read-token-0123456789abcdef"


class Clock:
    def __init__(self) -> None:
        self.now = 1_000.0

    def __call__(self) -> float:
        return self.now


def test_tokens_compare_exactly() -> None:
    assert token_equal(TOKEN, TOKEN)
    assert not token_equal(TOKEN[:-1], TOKEN) and not token_equal(TOKEN + "x", TOKEN)
    assert not token_equal("", TOKEN)
    assert matches_any(TOKEN, ("other-token-0123456789", TOKEN))
    assert not matches_any(TOKEN, ())
    assert bearer(None) is None and bearer("") is None
    assert bearer(f"Bearer {TOKEN}") == TOKEN and bearer(f"bearer {TOKEN}") == TOKEN
    assert bearer("Basic dXNlcjpwYXNz") == ""  # another scheme: a wrong credential, not none


def test_short_tokens_are_refused() -> None:
    with pytest.raises(UsageError, match="at least 16"):
        AccessConfig(read_tokens=("tok",))
    with pytest.raises(UsageError, match="metrics token"):
        AccessConfig(metrics_token="short")
    AccessConfig(read_tokens=(TOKEN,), metrics_token=TOKEN)


@pytest.mark.parametrize(("private", "authenticated", "mode", "expected"), [
    (False, False, ReadMode.CREDENTIAL, False),
    (True, True, ReadMode.CREDENTIAL, True),
    (False, False, ReadMode.PUBLIC, True),
    (True, False, ReadMode.PUBLIC, False),
    (None, False, ReadMode.PUBLIC, False),  # unknown privacy is private
    (True, False, ReadMode.ALL, True),
    (None, True, ReadMode.PUBLIC, True),
])
def test_visibility(private: bool | None, authenticated: bool, mode: ReadMode,
                    expected: bool) -> None:
    assert visible(private, authenticated=authenticated, mode=mode) is expected


def test_public_mode_holds_no_private_jobs() -> None:
    assert accepts_job(False, ReadMode.PUBLIC)
    assert not accepts_job(True, ReadMode.PUBLIC) and not accepts_job(None, ReadMode.PUBLIC)
    assert accepts_job(None, ReadMode.CREDENTIAL) and accepts_job(True, ReadMode.ALL)
    check_start(ReadMode.PUBLIC, 0)
    check_start(ReadMode.ALL, 5)
    check_start(ReadMode.CREDENTIAL, 5)
    with pytest.raises(UsageError, match="--public-reads=public"):
        check_start(ReadMode.PUBLIC, 1)


def test_sessions_are_signed_and_expire() -> None:
    clock = Clock()
    sessions = Sessions([TOKEN, "api-token-0123456789abcdef"], 3600, clock)
    value = sessions.issue(TOKEN)
    assert TOKEN not in value and sessions.check(value) is SessionState.VALID
    assert sessions.check(sessions.issue("api-token-0123456789abcdef")) is SessionState.VALID
    version, expiry, nonce, mac = value.split(".")
    longer = f"{version}.{int(expiry) + 10**6}.{nonce}.{mac}"
    assert sessions.check(longer) is SessionState.FORGED  # the expiry is under the MAC
    assert sessions.check(f"{version}.{expiry}.{nonce}x.{mac}") is SessionState.FORGED
    for junk in ("", "v1", "v1.x.y.z", "v2." + value[3:], value + "." + mac, "a" * 500):
        assert sessions.check(junk) is SessionState.FORGED, junk
    rotated = Sessions(["new-token-0123456789abcdef"], 3600, clock)
    assert rotated.check(value) is SessionState.FORGED  # a new token ends old sessions
    clock.now += 3601
    assert sessions.check(value) is SessionState.EXPIRED


def test_csrf_and_origin_checks() -> None:
    assert csrf_ok("abc", "abc")
    assert not csrf_ok("abc", "abd") and not csrf_ok("", "") and not csrf_ok(None, "abc")
    host = "127.0.0.1:8080"
    assert same_origin("http://127.0.0.1:8080", "same-origin", host)
    assert same_origin(None, None, host)  # not a browser: the CSRF pair still has to match
    assert not same_origin("http://evil.example", "cross-site", host)
    assert not same_origin("http://evil.example", None, host)
    assert not same_origin("null", "same-origin", host)
    assert not same_origin("http://127.0.0.1:8080", "same-site", host)
    job = "/admissions/" + "a" * 32
    assert safe_next(job) == job
    for bad in (None, "", "//evil.example", "https://evil.example/", "/admissions/../x",
                job + "/../../x", "/\\evil.example"):
        assert safe_next(bad) == "/"


def test_limits_apply_to_an_ipv4_address_or_an_ipv6_64() -> None:
    assert client_key("203.0.113.7") == "203.0.113.7"
    assert client_key("2001:db8:1:2:aaaa::1") == client_key("2001:db8:1:2:bbbb::2") \
        == "2001:db8:1:2::/64"
    assert client_key("2001:db8:1:3::1") != client_key("2001:db8:1:2::1")
    assert client_key("::ffff:203.0.113.7") == "203.0.113.7"
    assert client_key("testclient") == "testclient"
