"""Hub sources: pin the revision, inventory, triage headers remotely, download and verify.

Order matters and is the point of this module:
1. resolve the revision to a commit sha (model_info) and use only the sha afterwards;
2. inventory from the listing, refuse oversized repos, all before any download;
3. read every safetensors header with Range requests; a hostile one keeps its body on the Hub;
4. download only what the analyzers need, hashing every byte against the Hub's digests;
5. record the Hub's own scan status and the base model as evidence.
"""

from __future__ import annotations

import os

# Xet downloads bypass the resolve/CDN path our verification is written for.
os.environ.setdefault("HF_HUB_DISABLE_XET", "1")

import itertools
import shutil
import tempfile
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from huggingface_hub import HfApi, hf_hub_download, try_to_load_from_cache

from adapterscan.emit import Emitter
from adapterscan.errors import FetchError
from adapterscan.fetch import hub_plan
from adapterscan.fetch.checks import LISTING_INCONSISTENT, SHA256_MISMATCH, UNSAFE_PATH
from adapterscan.fetch.hub_client import (
    endpoint_of,
    hf_cache_dir,
    hub_call,
    offline_mode,
    read_range,
    token_for,
    with_deadline,
)
from adapterscan.fetch.hub_meta import base_model_hint, ingest_security_status
from adapterscan.fetch.hub_options import HubOptions
from adapterscan.fetch.hub_triage import triage_header
from adapterscan.fetch.hub_verify import Announced, Verified, copy_verified
from adapterscan.source import Entry, EntryType, FetchedSource, FetchLimits
from adapterscan.static.limits import StaticLimits

DOWNLOAD_WORKERS = 4
T = TypeVar("T")


class HubFetcher:
    def __init__(self, repo: str, revision: str | None, options: HubOptions,
                 limits: FetchLimits) -> None:
        self.repo = repo
        self.revision = revision
        self.options = options
        self.limits = limits
        self.endpoint = endpoint_of(options)
        self.hf_cache = hf_cache_dir(options)
        self.manifests = self.hf_cache.parent / "adapterscan" / "manifests"
        self.bytes_read_remote = 0  # header triage bytes (for benchmarks)

    @property
    def source(self) -> str:
        return f"hf://{self.repo}" + (f"@{self.revision}" if self.revision else "")

    def _token(self) -> str | bool | None:
        return token_for(self.options, self.endpoint)

    def _call(self, fn: Callable[[], T], what: str, rev: str | None = None) -> T:
        return hub_call(fn, repo=self.repo, revision=rev or self.revision,
                        endpoint=self.endpoint, what=what, retries=self.options.retries)

    # -- the stage -------------------------------------------------------------------------

    def fetch(self, emit: Emitter) -> FetchedSource:
        if offline_mode():
            return self._fetch_offline(emit)
        api = HfApi(endpoint=self.endpoint, token=self._token())
        info = self._call(lambda: api.model_info(
            self.repo, revision=self.revision, files_metadata=True, securityStatus=True,
            timeout=self.options.timeout_s), "model info")
        sha = str(info.sha or "")
        if not hub_plan.SHA_RE.match(sha):
            raise FetchError(f"{self.source}: the Hub returned no commit sha ({sha[:60]!r})",
                             hint="check --endpoint: it must be a Hugging Face Hub API")
        if self.revision and hub_plan.SHA_RE.match(self.revision) and self.revision != sha:
            raise FetchError(f"{self.source}: asked for commit {self.revision}, the Hub answered "
                             f"{sha}", hint="the endpoint does not honour pinned revisions")
        cap = self.limits.max_files + 1
        pages = 1 + cap // 1000  # the Hub serves 1,000 entries per page
        tree = self._call(lambda: with_deadline(lambda: list(itertools.islice(
            api.list_repo_tree(self.repo, revision=sha, recursive=True), 2 * cap)),
            self.options.timeout_s * pages, "tree listing"), "tree listing", sha)
        announced = hub_plan.announced_from(tree, info.siblings, emit)
        announced = self._bounded(announced, emit)
        self._refuse_oversized(announced)
        hub_plan.write_manifest(self.manifests, self.repo, sha, self.endpoint, announced)
        root = self._scan_dir()
        try:
            with ThreadPoolExecutor(DOWNLOAD_WORKERS, thread_name_prefix="hub-dl") as pool:
                # Small files (config, card, code) download while weight headers are triaged.
                early = {a.path: pool.submit(self._download_one, a, sha, root)
                         for a in announced.values() if self._small(a)}
                remote_only, rejected = self._triage(announced, sha, emit)
                expected = self._download(announced, sha, root, remote_only, rejected, emit,
                                          pool, early)
            ingest_security_status(info.security_repo_status, emit)
            return self._result(root, sha, announced, expected, remote_only, emit)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _fetch_offline(self, emit: Emitter) -> FetchedSource:
        sha = self.revision or ""
        if not hub_plan.SHA_RE.match(sha):
            raise FetchError(f"{self.source}: HF_HUB_OFFLINE is set and the revision is not a "
                             "full commit sha", hint="offline scans need hf://owner/repo@<40-hex "
                             "sha> scanned online once before")
        announced = hub_plan.read_manifest(self.manifests, self.repo, sha)
        if announced is None:
            raise FetchError(f"{self.source}: not in the cache ({self.manifests})",
                             hint="scan it once online with the same cache, or unset "
                             "HF_HUB_OFFLINE")
        announced = self._bounded(announced, emit)
        root = self._scan_dir()
        try:
            remote_only, expected = self._copy_cached(announced, sha, root, emit)
            ingest_security_status(None, emit, offline=True)
            return self._result(root, sha, announced, expected, remote_only, emit)
        except BaseException:
            shutil.rmtree(root, ignore_errors=True)
            raise

    def _copy_cached(self, announced: dict[str, Announced], sha: str, root: Path,
                     emit: Emitter) -> tuple[set[str], dict[str, str]]:
        remote_only: set[str] = set()
        expected: dict[str, str] = {}
        for path, ann in sorted(announced.items()):
            cached = try_to_load_from_cache(self.repo, path, cache_dir=self.hf_cache,
                                            revision=sha)
            if not isinstance(cached, str):
                remote_only.add(path)
                emit.skip(path, "offline: not in the cache, not analysed")
                continue
            try:
                res = copy_verified(Path(cached), root / path, ann)
            except OSError as exc:
                remote_only.add(path)
                emit.error("fetch", f"cannot copy from the cache: {exc.strerror or exc}", path)
                emit.skip(path, "offline: unreadable in the cache, not analysed")
                continue
            self._record(res, expected, emit)
        return remote_only, expected

    # -- steps -----------------------------------------------------------------------------

    def _bounded(self, announced: dict[str, Announced], emit: Emitter) -> dict[str, Announced]:
        out: dict[str, Announced] = {}
        for path in sorted(announced):
            if not hub_plan.safe_path(path):
                emit.emit(UNSAFE_PATH, f"listed path {path[:200]!r} is not a safe relative "
                          "path; it was not downloaded", evidence={"path": path[:1024]})
                emit.skip(path[:200], "unsafe path: not downloaded")
                continue
            if announced[path].size < 0:
                emit.emit(LISTING_INCONSISTENT, f"{path}: listed with a negative size",
                          file=path, evidence={"size": announced[path].size})
                emit.skip(path, "negative size in the listing: not downloaded")
                continue
            if len(out) >= self.limits.max_files:
                emit.skip(".", f"more than {self.limits.max_files} files; the rest were not "
                          "inventoried (raise --max-files to scan them)")
                break
            out[path] = announced[path]
        return out

    def _refuse_oversized(self, announced: dict[str, Announced]) -> None:
        total = sum(a.size for a in announced.values())
        cap = min(self.options.max_repo_bytes, self.limits.max_total_bytes)
        if total > cap:
            raise FetchError(f"{self.source}: the repository holds {total} bytes, over the "
                             f"{cap}-byte limit; nothing was downloaded",
                             hint="raise HubOptions.max_repo_bytes if this size is expected "
                             "for an adapter")

    def _scan_dir(self) -> Path:
        if self.options.cache_dir is not None:
            parent = self.options.cache_dir / "scans"
            parent.mkdir(parents=True, exist_ok=True)
            return Path(tempfile.mkdtemp(prefix="scan-", dir=parent))
        return Path(tempfile.mkdtemp(prefix="adapterscan-hub-"))

    def _triage(self, announced: dict[str, Announced], sha: str,
                emit: Emitter) -> tuple[set[str], bool]:
        remote_only: set[str] = set()
        rejected = False
        limits = StaticLimits()
        for path, ann in sorted(announced.items()):
            if not path.lower().endswith(".safetensors") or ann.size > self.limits.max_file_bytes:
                continue

            read = self._range_reader(sha, path)
            result = triage_header(read, path, ann.size, emit, limits)
            self.bytes_read_remote += result.bytes_read
            if not result.ok:
                remote_only.add(path)
                rejected = True
        return remote_only, rejected

    def _range_reader(self, sha: str, path: str) -> Callable[[int, int], bytes]:
        located: list[str] = []  # the CDN URL after the first redirect, reused by later reads

        def read(start: int, length: int) -> bytes:
            data, final = self._call(lambda: read_range(
                self.endpoint, self.repo, sha, path, start, length, self.options,
                url=located[0] if located else None), f"range read of {path}", sha)
            if not located and final:
                located.append(final)
            return data

        return read

    def _small(self, ann: Announced) -> bool:
        return (not hub_plan.needs_full_bytes(ann.path)
                and ann.size <= min(self.options.max_small_file_bytes, self.limits.max_file_bytes))

    def _download(self, announced: dict[str, Announced], sha: str, root: Path,
                  remote_only: set[str], rejected: bool, emit: Emitter, pool: ThreadPoolExecutor,
                  early: dict[str, Future[Verified | str]]) -> dict[str, str]:
        futures: dict[str, Future[Verified | str]] = {}
        for path, ann in sorted(announced.items()):
            if path in early:
                futures[path] = early[path]
                continue
            if path in remote_only:
                continue
            reason = None
            if ann.size > self.limits.max_file_bytes:
                reason = f"{ann.size} bytes, over the {self.limits.max_file_bytes}-byte limit"
            elif rejected:
                reason = "header triage already rejected this repository"
            elif not hub_plan.needs_full_bytes(path):
                reason = (f"{ann.size} bytes, over the {self.options.max_small_file_bytes}-byte "
                          "cap for files of this kind")
            if reason:
                remote_only.add(path)
                emit.skip(path, f"not downloaded: {reason}")
            else:
                futures[path] = pool.submit(self._download_one, ann, sha, root)
        expected: dict[str, str] = {}
        for path, fut in sorted(futures.items()):
            res = fut.result()
            if isinstance(res, Verified):
                self._record(res, expected, emit)
            else:
                remote_only.add(path)
                emit.error("fetch", res, path)
                emit.skip(path, "download failed: not analysed")
        return expected

    def _download_one(self, ann: Announced, sha: str, root: Path) -> Verified | str:
        try:
            cached = self._call(lambda: hf_hub_download(
                self.repo, ann.path, revision=sha, endpoint=self.endpoint, token=self._token(),
                cache_dir=self.hf_cache, etag_timeout=self.options.timeout_s),
                f"download of {ann.path}", sha)
        except FetchError as exc:
            return exc.message
        if f"/snapshots/{sha}/" not in Path(cached).as_posix():
            return f"{ann.path}: the Hub served it from another commit than {sha}"
        try:
            return copy_verified(Path(cached), root / ann.path, ann)
        except OSError as exc:
            return f"{ann.path}: cannot copy from the cache: {exc.strerror or exc}"

    def _record(self, res: Verified, expected: dict[str, str], emit: Emitter) -> None:
        if res.ok:
            expected[res.path] = res.sha256
            return
        # Reported here, at download time; the file stays out of `expected` so the pipeline's
        # own on-disk check does not report the same mismatch twice.
        emit.emit(SHA256_MISMATCH,
                  f"{res.path}: downloaded bytes do not match the {res.kind} the Hub announced",
                  file=res.path, evidence={"digest": res.kind, "expected": res.expected,
                                           "actual": res.actual, "bytes": res.size})

    def _result(self, root: Path, sha: str, announced: dict[str, Announced],
                expected: dict[str, str], remote_only: set[str],
                emit: Emitter) -> FetchedSource:
        entries = tuple(Entry(p, EntryType.FILE, a.size) for p, a in sorted(announced.items()))
        src = FetchedSource(source=self.source, kind="hub", root=root, entries=entries,
                            revision=sha, repo=self.repo, endpoint=self.endpoint,
                            expected_sha256=expected, remote_only=frozenset(remote_only),
                            base_model_hint=base_model_hint(root, emit))
        # The per-scan folder lives exactly as long as the FetchedSource that points at it.
        weakref.finalize(src, shutil.rmtree, str(root), ignore_errors=True)
        return src
