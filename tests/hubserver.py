"""A Hugging Face Hub-compatible HTTP server for tests, on 127.0.0.1 only.

It speaks the subset of the Hub API that `huggingface_hub` 2.4 uses (ARCHITECTURE §5): model info
(`?blobs=true`, `?securityStatus=true`), paginated recursive trees with `Link` headers, refs,
`HEAD`/`GET /{repo}/resolve/{rev}/{path}` with `X-Repo-Commit`, `ETag`, and for LFS files a 302 to
a second server on another port (the "CDN") with `X-Linked-Etag`/`X-Linked-Size`. Both servers
honour `Range` with 206 and count the body bytes they send per file.

    with HubServer() as hub:
        sha = hub.add_repo("acme/lora", {"adapter_config.json": b"{}"})
        pr = hub.add_commit("acme/lora", {...}, ref="refs/pr/1")
        hub.set_tamper("acme/lora", "adapter_config.json", b"{ }")
        api = HfApi(endpoint=hub.url, token=False)
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any
from urllib.parse import parse_qs, quote, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".pkl", ".gguf")


def git_blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


@dataclass(frozen=True)
class Request:
    server: str  # "api" | "cdn"
    method: str
    path: str
    range: str | None
    authorized: bool  # an Authorization header was sent


@dataclass
class _Repo:
    commits: dict[str, dict[str, bytes]] = field(default_factory=dict)
    refs: dict[str, str] = field(default_factory=dict)
    gated: bool = False
    private_token: str | None = None
    security: dict[str, Any] | None = None
    tamper: dict[str, bytes] = field(default_factory=dict)
    lfs_paths: set[str] = field(default_factory=set)
    tree_override: dict[str, dict[str, Any]] = field(default_factory=dict)


class _Error(Exception):
    def __init__(self, status: int, code: str | None, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


class HubServer:
    """Serve repos over HTTP on 127.0.0.1; use as a context manager."""

    def __init__(self, *, page_size: int = 1000, lfs_threshold: int = 10 * 1024) -> None:
        self.page_size = page_size
        self.lfs_threshold = lfs_threshold
        self._repos: dict[str, _Repo] = {}
        self._lock = threading.Lock()
        self.bytes_sent: Counter[str] = Counter()  # "repo/path" -> body bytes, both servers
        self.requests: list[Request] = []
        self._api = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, cdn=False))
        self._cdn = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self, cdn=True))
        self._threads: list[threading.Thread] = []
        self._failures: list[int] = []  # statuses the next API requests answer with
        self._stalls: dict[str, float] = {}  # path substring -> seconds to wait before answering
        self.ignore_range = False  # answer 200 with the whole body, like servers without Range
        for srv in (self._api, self._cdn):
            srv.daemon_threads = True  # a stalled handler never blocks shutdown

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._api.server_address[1]}"

    @property
    def cdn_url(self) -> str:
        return f"http://127.0.0.1:{self._cdn.server_address[1]}"

    def __enter__(self) -> HubServer:
        for srv in (self._api, self._cdn):
            t = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05},
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def __exit__(self, et: type[BaseException] | None, ev: BaseException | None,
                 tb: TracebackType | None) -> None:
        for srv in (self._api, self._cdn):
            srv.shutdown()
            srv.server_close()

    # -- state -------------------------------------------------------------------------------

    def add_repo(self, repo_id: str, files: Mapping[str, bytes], *, branch: str = "main",
                 gated: bool = False, private_token: str | None = None,
                 security: dict[str, Any] | None = None,
                 lfs: set[str] | None = None) -> str:
        """Create a repo with one commit on `branch`; returns the commit sha."""
        with self._lock:
            self._repos[repo_id] = _Repo(gated=gated, private_token=private_token,
                                         security=security, lfs_paths=set(lfs or ()))
        return self.add_commit(repo_id, files, ref=branch)

    def add_commit(self, repo_id: str, files: Mapping[str, bytes], *, ref: str = "main") -> str:
        """Point `ref` (a branch, a tag or "refs/pr/N") at a new commit holding exactly `files`."""
        with self._lock:
            repo = self._repos[repo_id]
            h = hashlib.sha1(repo_id.encode() + ref.encode())
            for path in sorted(files):
                h.update(path.encode() + b"\0" + git_blob_id(files[path]).encode())
            h.update(str(len(repo.commits)).encode())
            sha = h.hexdigest()
            repo.commits[sha] = dict(files)
            repo.refs[ref] = sha
            return sha

    def set_tamper(self, repo_id: str, path: str, data: bytes) -> None:
        """Serve `data` for `path` while every listing keeps announcing the original digest."""
        with self._lock:
            self._repos[repo_id].tamper[path] = data

    def set_tree_override(self, repo_id: str, path: str, fields: dict[str, Any]) -> None:
        """Make the tree listing (only) announce other fields for `path` (e.g. a size)."""
        with self._lock:
            self._repos[repo_id].tree_override[path] = fields

    def set_security(self, repo_id: str, status: dict[str, Any] | None) -> None:
        with self._lock:
            self._repos[repo_id].security = status

    def fail_next(self, count: int, status: int = 503) -> None:
        """Answer the next `count` API requests with `status` (transient errors for retries)."""
        with self._lock:
            self._failures.extend([status] * count)

    def stall(self, match: str, seconds: float) -> None:
        """Delay answers to requests whose path contains `match` (timeouts)."""
        with self._lock:
            self._stalls[match] = seconds

    def sent(self, repo_id: str, path: str) -> int:
        return self.bytes_sent[f"{repo_id}/{path}"]

    # -- lookups (raise _Error the way the Hub answers) -----------------------------------------

    def _repo(self, repo_id: str, auth: str | None, *, files: bool) -> _Repo:
        repo = self._repos.get(repo_id)
        if repo is None or (repo.private_token is not None
                            and auth != f"Bearer {repo.private_token}"):
            raise _Error(401 if repo else 404, "RepoNotFound", f"Repository {repo_id} not found")
        if repo.gated and files and auth is None:
            raise _Error(401, "GatedRepo", f"Access to model {repo_id} is restricted")
        return repo

    def _commit(self, repo: _Repo, rev: str) -> tuple[str, dict[str, bytes]]:
        sha = repo.refs.get(rev) or (rev if rev in repo.commits else None)
        if sha is None:
            raise _Error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
        return sha, repo.commits[sha]

    def is_lfs(self, repo: _Repo, path: str, data: bytes) -> bool:
        return (path in repo.lfs_paths or path.endswith(LFS_SUFFIXES)
                or len(data) >= self.lfs_threshold)

    def _entry(self, repo: _Repo, path: str, data: bytes) -> dict[str, Any]:
        e: dict[str, Any] = {"type": "file", "oid": git_blob_id(data), "size": len(data),
                             "path": path}
        if self.is_lfs(repo, path, data):
            e["lfs"] = {"oid": hashlib.sha256(data).hexdigest(), "size": len(data),
                        "pointerSize": 134}
        return e

    def model_info(self, repo_id: str, rev: str, query: dict[str, list[str]],
                   auth: str | None) -> dict[str, Any]:
        repo = self._repo(repo_id, auth, files=False)
        sha, files = self._commit(repo, rev)
        blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = []
        for path in sorted(files):
            s: dict[str, Any] = {"rfilename": path}
            if blobs:
                e = self._entry(repo, path, files[path])
                s.update(size=e["size"], blobId=e["oid"])
                if "lfs" in e:
                    s["lfs"] = {"sha256": e["lfs"]["oid"], "size": e["size"],
                                "pointerSize": 134}
            siblings.append(s)
        info: dict[str, Any] = {"id": repo_id, "modelId": repo_id, "sha": sha,
                                "private": repo.private_token is not None,
                                "gated": "manual" if repo.gated else False,
                                "siblings": siblings, "tags": []}
        if query.get("securityStatus", ["false"])[0].lower() == "true":
            info["securityRepoStatus"] = repo.security or {"scansDone": True,
                                                           "filesWithIssues": []}
        return info

    def tree(self, repo_id: str, rev: str, sub: str, cursor: int,
             auth: str | None) -> tuple[list[dict[str, Any]], bool]:
        repo = self._repo(repo_id, auth, files=False)
        _, files = self._commit(repo, rev)
        items: list[dict[str, Any]] = []
        dirs: set[str] = set()
        for path in sorted(files):
            if sub and not path.startswith(sub + "/"):
                continue
            parts = path.split("/")
            for i in range(1, len(parts)):
                d = "/".join(parts[:i])
                if d not in dirs and (not sub or d.startswith(sub + "/")):
                    dirs.add(d)
                    items.append({"type": "directory", "oid": "0" * 40, "size": 0, "path": d})
            items.append({**self._entry(repo, path, files[path]),
                          **repo.tree_override.get(path, {})})
        if not items and sub:
            raise _Error(404, "EntryNotFound", f"{sub} does not exist")
        page = items[cursor:cursor + self.page_size]
        return page, cursor + self.page_size < len(items)

    def resolve(self, repo_id: str, rev: str, path: str,
                auth: str | None) -> tuple[_Repo, str, bytes, bytes]:
        """(repo, sha, announced bytes, served bytes)."""
        repo = self._repo(repo_id, auth, files=True)
        sha, files = self._commit(repo, rev)
        if path not in files:
            raise _Error(404, "EntryNotFound", f"{path} does not exist at {rev}")
        data = files[path]
        return repo, sha, data, repo.tamper.get(path, data)


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def _make_handler(hub: HubServer, *, cdn: bool) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return  # keep test output clean

        def do_HEAD(self) -> None:
            self._dispatch(head=True)

        def do_GET(self) -> None:
            self._dispatch(head=False)

        def _dispatch(self, *, head: bool) -> None:
            hub.requests.append(Request("cdn" if cdn else "api", self.command, self.path,
                                        self.headers.get("Range"),
                                        self.headers.get("Authorization") is not None))
            try:
                with hub._lock:
                    status = hub._failures.pop(0) if hub._failures and not cdn else None
                    delay = max((t for m, t in hub._stalls.items() if m in self.path),
                                default=0.0)
                if delay:
                    time.sleep(delay)
                if status is not None:
                    raise _Error(status, None, "try again later")
                if cdn:
                    self._cdn(head)
                else:
                    self._api(head)
            except _Error as err:
                body = json.dumps({"error": err.message}).encode()
                self.send_response(err.status)
                if err.code:
                    self.send_header("X-Error-Code", err.code)
                    self.send_header("X-Error-Message", err.message)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

        def _json(self, obj: Any, extra: dict[str, str] | None = None) -> None:
            body = json.dumps(obj).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            for k, v in (extra or {}).items():
                self.send_header(k, v)
            self.end_headers()
            self.wfile.write(body)

        def _api(self, head: bool) -> None:
            split = urlsplit(self.path)
            query = parse_qs(split.query)
            auth = self.headers.get("Authorization")
            seg = [unquote(s) for s in split.path.split("/")[1:]]
            if seg[:2] == ["api", "models"] and len(seg) >= 4:
                repo_id, rest = f"{seg[2]}/{seg[3]}", seg[4:]
                if not rest:
                    self._json(hub.model_info(repo_id, "main", query, auth))
                elif rest[0] == "revision" and len(rest) == 2:
                    self._json(hub.model_info(repo_id, rest[1], query, auth))
                elif rest[0] == "tree" and len(rest) >= 2:
                    cursor = int(query.get("cursor", ["0"])[0])
                    page, more = hub.tree(repo_id, rest[1], "/".join(rest[2:]), cursor, auth)
                    extra = {}
                    if more:
                        nxt = (f"{hub.url}/api/models/{repo_id}/tree/{quote(rest[1], safe='')}"
                               f"?recursive=true&cursor={cursor + hub.page_size}")
                        extra["Link"] = f'<{nxt}>; rel="next"'
                    self._json(page, extra)
                elif rest == ["refs"]:
                    repo = hub._repo(repo_id, auth, files=False)
                    self._json({"branches": [{"name": r, "ref": f"refs/heads/{r}",
                                              "targetCommit": s}
                                             for r, s in repo.refs.items()
                                             if not r.startswith("refs/")],
                                "tags": [], "converts": [],
                                "pullRequests": [{"name": r, "ref": r, "targetCommit": s}
                                                 for r, s in repo.refs.items()
                                                 if r.startswith("refs/pr/")]})
                else:
                    raise _Error(404, None, "no such route")
                return
            # /{owner}/{name}/resolve/{rev}/{path...}; rev may be "refs/pr/1" percent-encoded.
            if len(seg) >= 5 and seg[2] == "resolve":
                repo_id = f"{seg[0]}/{seg[1]}"
                rev, path = seg[3], "/".join(seg[4:])
                repo, sha, data, served = hub.resolve(repo_id, rev, path, auth)
                headers = {"X-Repo-Commit": sha, "ETag": f'"{git_blob_id(data)}"'}
                if hub.is_lfs(repo, path, data):
                    headers.update({"X-Linked-Etag": f'"{hashlib.sha256(data).hexdigest()}"',
                                    "X-Linked-Size": str(len(data)),
                                    "Location": f"{hub.cdn_url}/cdn/{quote(repo_id, safe='')}/"
                                                f"{sha}/{quote(path, safe='')}"})
                    self.send_response(302)
                    for k, v in headers.items():
                        self.send_header(k, v)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self._body(f"{repo_id}/{path}", served, head, headers)
                return
            raise _Error(404, None, "no such route")

        def _cdn(self, head: bool) -> None:
            seg = [unquote(s) for s in urlsplit(self.path).path.split("/")[1:]]
            if len(seg) != 4 or seg[0] != "cdn":
                raise _Error(404, None, "no such object")
            repo_id, sha, path = seg[1], seg[2], seg[3]
            repo = hub._repos.get(repo_id)
            if repo is None or sha not in repo.commits or path not in repo.commits[sha]:
                raise _Error(404, None, "no such object")
            data = repo.commits[sha][path]
            self._body(f"{repo_id}/{path}", repo.tamper.get(path, data), head,
                       {"ETag": f'"{hashlib.sha256(data).hexdigest()}"'})

        def _body(self, key: str, data: bytes, head: bool, headers: dict[str, str]) -> None:
            start, end, status = 0, len(data), 200
            m = _RANGE.match(self.headers.get("Range", "") or "")
            if m and not hub.ignore_range and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(len(data), int(m.group(2)) + 1) if m.group(2) else len(data)
                else:
                    start = max(0, len(data) - int(m.group(2)))
                if start >= len(data):
                    self.send_response(416)
                    self.send_header("Content-Range", f"bytes */{len(data)}")
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                status = 206
            chunk = data[start:end]
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Accept-Ranges", "bytes")
            if status == 206:
                self.send_header("Content-Range", f"bytes {start}-{end - 1}/{len(data)}")
            self.send_header("Content-Length", str(len(chunk)))
            self.end_headers()
            if not head:
                try:
                    self.wfile.write(chunk)
                except (BrokenPipeError, ConnectionResetError):
                    return  # the client stopped reading (bounded reads do)
                with hub._lock:
                    hub.bytes_sent[key] += len(chunk)

    return Handler
