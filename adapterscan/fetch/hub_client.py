"""Thin, bounded wrappers around huggingface_hub: errors that explain themselves, ranged reads."""

from __future__ import annotations

import importlib
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from huggingface_hub import errors as hf_errors
from huggingface_hub import hf_hub_url

# Private modules: the public `huggingface_hub.utils` does not re-export these for type checkers.
from huggingface_hub.utils._headers import build_hf_headers
from huggingface_hub.utils._http import hf_raise_for_status, http_stream_backoff

from adapterscan.errors import FetchError
from adapterscan.fetch.hub_options import HubOptions

T = TypeVar("T")
DEFAULT_ENDPOINT = "https://huggingface.co"


def endpoint_of(options: HubOptions) -> str:
    # Read at call time, never at import: huggingface_hub freezes HF_ENDPOINT when imported.
    return (options.endpoint or os.environ.get("HF_ENDPOINT") or DEFAULT_ENDPOINT).rstrip("/")


def token_for(options: HubOptions, endpoint: str) -> str | bool | None:
    """The token to send: the one given, else huggingface_hub's own lookup (HF_TOKEN, the
    token file) only for huggingface.co: a token for the Hub never goes to a mirror."""
    if options.token:
        return options.token
    return None if endpoint == DEFAULT_ENDPOINT else False


def offline_mode() -> bool:
    from huggingface_hub import constants

    env = os.environ.get("HF_HUB_OFFLINE", "").strip().upper()
    return constants.HF_HUB_OFFLINE or env in {"1", "ON", "YES", "TRUE"}


def hf_cache_dir(options: HubOptions) -> Path:
    """The blob cache downloads go through (every read from it is re-verified)."""
    if options.cache_dir is not None:
        return options.cache_dir / "hub"
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    home = os.environ.get("HF_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "huggingface")
    return Path(home) / "hub"


RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


def _transport_errors() -> tuple[type[BaseException], ...]:
    """The HTTP client's connection/timeout errors: huggingface_hub 2.x raises httpx2's (not
    OSErrors), earlier releases httpx's; both are looked up, neither is required."""
    found: list[type[BaseException]] = []
    for name in ("httpx2", "httpx"):
        try:
            module = importlib.import_module(name)
        except ImportError:
            continue
        err = getattr(module, "TransportError", None)
        if isinstance(err, type) and issubclass(err, BaseException):
            found.append(err)
    return tuple(found)


TRANSPORT_ERRORS = _transport_errors()
NETWORK_ERRORS: tuple[type[BaseException], ...] = (OSError, TimeoutError, *TRANSPORT_ERRORS)


def unreachable(exc: BaseException | None) -> bool:
    """The endpoint could not be reached at all (no HTTP answer): DNS, refused, timeouts."""
    if exc is None or isinstance(exc, hf_errors.HfHubHTTPError | hf_errors.OfflineModeIsEnabled
                                 | hf_errors.LocalEntryNotFoundError):
        return False
    return isinstance(exc, NETWORK_ERRORS)


def _transient(exc: BaseException) -> bool:
    if isinstance(exc, hf_errors.HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        return status in RETRY_STATUS
    return unreachable(exc)


def with_retries(fn: Callable[[], T], retries: int, base_wait_s: float = 0.5) -> T:
    """Retry transient failures (429, 5xx, network) with exponential backoff.

    huggingface_hub retries downloads itself, but not `model_info` or tree pages.
    """
    for attempt in range(retries + 1):
        try:
            return fn()
        except Exception as exc:
            if attempt == retries or not _transient(exc):
                raise
            time.sleep(min(base_wait_s * 2**attempt, 8.0))
    raise AssertionError("unreachable")


def with_deadline(fn: Callable[[], T], seconds: float, what: str) -> T:
    """Bound a call huggingface_hub gives no timeout (tree pages): a hung server fails the fetch.

    The call runs on a daemon thread so a hung socket never keeps the process alive.
    """
    box: list[T] = []
    err: list[BaseException] = []

    def target() -> None:
        try:
            box.append(fn())
        except BaseException as exc:  # re-raised in the caller's thread
            err.append(exc)

    worker = threading.Thread(target=target, name="hub-deadline", daemon=True)
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        raise TimeoutError(f"{what} took longer than {seconds:.0f} s")
    if err:
        raise err[0]
    return box[0]


def hub_call(fn: Callable[[], T], *, repo: str, revision: str | None, endpoint: str,
             what: str, retries: int = 0) -> T:
    """Run a huggingface_hub call; turn its errors into FetchError with a hint."""
    where = f"{repo}@{revision}" if revision else repo
    try:
        return with_retries(fn, retries)
    except hf_errors.GatedRepoError as exc:
        raise FetchError(f"{where}: gated repository on {endpoint} ({what})",
                         hint="accept the repository's conditions on its Hub page, then pass "
                         "--token or set HF_TOKEN") from exc
    except hf_errors.RevisionNotFoundError as exc:
        raise FetchError(f"{where}: revision {revision!r} not found on {endpoint}",
                         hint="use a branch, tag, refs/pr/N or a full commit sha that exists"
                         ) from exc
    except hf_errors.RepositoryNotFoundError as exc:
        raise FetchError(f"{repo}: repository not found on {endpoint}",
                         hint="check the id; private repositories need --token or HF_TOKEN"
                         ) from exc
    except (hf_errors.EntryNotFoundError, hf_errors.LocalEntryNotFoundError) as exc:
        raise FetchError(f"{where}: {what}: file not found ({exc})",
                         hint="the repository changed or the cache is incomplete") from exc
    except hf_errors.OfflineModeIsEnabled as exc:
        raise FetchError(f"{where}: {what} needs the network but HF_HUB_OFFLINE is set",
                         hint="unset HF_HUB_OFFLINE, or scan a full commit sha already in the "
                         "cache") from exc
    except hf_errors.HfHubHTTPError as exc:
        raise FetchError(f"{where}: {what} failed on {endpoint}: {exc}",
                         hint="retry later; check --endpoint and --token") from exc
    except NETWORK_ERRORS as exc:  # connection refused, DNS, timeouts
        raise FetchError(f"{where}: {what}: cannot reach {endpoint}: {exc}",
                         hint="check the network, --endpoint/HF_ENDPOINT, or use "
                         "HF_HUB_OFFLINE=1 with a pinned sha in the cache") from exc


def read_range(endpoint: str, repo: str, sha: str, path: str, start: int, length: int,
               options: HubOptions, *, url: str | None = None) -> tuple[bytes, str]:
    """Read at most `length` bytes at `start` of a file at commit `sha` with an HTTP Range request.

    Returns the bytes and the URL that finally answered (the CDN after the Hub's redirect), so a
    second read of the same file can skip the redirect. The token is sent only to the endpoint:
    httpx drops it on a cross-origin redirect and a reused CDN URL never gets it. Bounded even
    when the server ignores Range and answers 200 with the whole body.
    """
    if length <= 0:
        return b"", url or ""
    target = url or hf_hub_url(repo, path, revision=sha, endpoint=endpoint)
    same_origin = target.startswith(endpoint.rstrip("/") + "/")
    headers = build_hf_headers(token=(options.token or False) if same_origin else False)
    headers["Range"] = f"bytes={start}-{start + length - 1}"
    headers["Accept-Encoding"] = "identity"
    out = bytearray()
    with http_stream_backoff("GET", target, headers=headers, timeout=options.timeout_s,
                             max_retries=0, follow_redirects=True) as response:
        hf_raise_for_status(response)
        final = str(response.url)
        skip = start if response.status_code == 200 else 0  # the server ignored Range
        for chunk in response.iter_bytes(64 * 1024):
            if skip:
                cut = min(skip, len(chunk))
                chunk, skip = chunk[cut:], skip - cut
            out += chunk[:length - len(out)]
            if len(out) >= length:
                break
    return bytes(out), final
