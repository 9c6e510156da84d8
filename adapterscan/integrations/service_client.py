"""A loader's client of the admission service: fetch only the signed attestation of one commit.

The loader verifies the bundle against its own trusted keys, so the service is not trusted for
the verdict, only asked for it; the report itself never leaves the service.
"""

from __future__ import annotations

import ipaddress
import json
import os
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from urllib.parse import quote, urlsplit

from adapterscan.errors import AdapterRejected, UsageError

MAX_ATTESTATION_BYTES = 16 * 1024 * 1024


@dataclass(frozen=True)
class ServiceAttestation:
    """Where to fetch the attestation: `url` of `adapterscan serve`, and its read token
    (default: the ADAPTERSCAN_READ_TOKEN variable; none needed for a public repo on a service
    run with --public-reads)."""

    url: str
    token: str | None = field(default=None, repr=False)  # never in a log or a traceback
    timeout_s: float = 30.0


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None  # a redirect answers as an error: the token never follows it elsewhere


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def attestation_url(base: str, repo: str, revision: str) -> str:
    parts = urlsplit(base)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UsageError(f"admission service URL {base!r} is not an http(s) URL")
    if parts.scheme == "http" and not _loopback(parts.hostname):
        raise UsageError(f"admission service URL {base!r} is plain http to another host: the "
                         "read token would cross the network in clear", hint="use https")
    return (f"{base.rstrip('/')}/v1/repos/{quote(repo, safe='/')}/revisions/"
            f"{quote(revision, safe='')}/attestation")


def fetch_attestation(service: ServiceAttestation, repo: str, revision: str) -> bytes:
    """The bundle bytes, or AdapterRejected (fail closed) with the service's answer."""
    url = attestation_url(service.url, repo, revision)
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    token = service.token or os.environ.get("ADAPTERSCAN_READ_TOKEN")
    if token:
        request.add_unredirected_header("Authorization", f"Bearer {token}")
    opener = urllib.request.build_opener(_NoRedirects())
    where = f"{repo}@{revision}"
    try:
        with opener.open(request, timeout=service.timeout_s) as resp:
            data: bytes = resp.read(MAX_ATTESTATION_BYTES + 1)
    except urllib.error.HTTPError as exc:
        raise AdapterRejected(f"{where}: the admission service has no attestation for it "
                              f"(HTTP {exc.code}: {_error_text(exc)})") from None
    except (urllib.error.URLError, OSError) as exc:
        raise AdapterRejected(f"{where}: the admission service is unreachable: {exc}") from None
    if len(data) > MAX_ATTESTATION_BYTES:
        raise AdapterRejected(f"{where}: the service's attestation is over "
                              f"{MAX_ATTESTATION_BYTES} bytes")
    return data


def _error_text(exc: urllib.error.HTTPError) -> str:
    try:
        body = json.loads(exc.read(4096))
    except (ValueError, OSError):
        return exc.reason if isinstance(exc.reason, str) else "error"
    return str(body.get("error", "error")) if isinstance(body, dict) else "error"
