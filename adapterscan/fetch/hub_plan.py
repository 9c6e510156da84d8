"""What the Hub announced, which paths are safe, and what to download: pure functions."""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import asdict
from pathlib import Path
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.errors import FetchError
from adapterscan.fetch.checks import LISTING_INCONSISTENT
from adapterscan.fetch.hub_verify import Announced
from adapterscan.file_kinds import ANALYSED_EXT, ends_with

SHA_RE = re.compile(r"^[0-9a-f]{40}$")
_BAD_CHARS = re.compile(r"[\x00-\x1f\x7f\\]")


def safe_path(path: str) -> bool:
    parts = path.split("/")
    return (bool(path) and not path.startswith("/") and not _BAD_CHARS.search(path)
            and all(p not in {"", ".", ".."} for p in parts) and len(path) <= 1024)


def _check_entry(path: Any, size: Any, blob_id: Any, lfs_sha256: Any, where: str) -> None:
    """The fields of one file the Hub announced have the types its API gives (a str path, an
    int size, str ids); anything else is an endpoint we cannot pin files against."""
    if (isinstance(path, str) and (size is None or (type(size) is int and size >= 0))
            and isinstance(blob_id, str | None) and isinstance(lfs_sha256, str | None)):
        return
    raise FetchError(f"the Hub's {where} announces a malformed file entry "
                     f"({str(path)[:200]!r}, size {str(size)[:40]!r})",
                     hint="check --endpoint: it must be a Hugging Face Hub API")


def announced_from(tree: Iterable[Any], siblings: Iterable[Any] | None,
                   emit: Emitter) -> dict[str, Announced]:
    """Files from the paginated tree, cross-checked with model_info's blob metadata."""
    listed: dict[str, Announced] = {}
    for item in tree:
        if not hasattr(item, "blob_id"):
            continue  # a folder (RepoFolder has no blob id)
        sha = getattr(getattr(item, "lfs", None), "sha256", None)
        _check_entry(item.path, item.size, item.blob_id, sha, "tree listing")
        listed[item.path] = Announced(item.path, int(item.size or 0), item.blob_id, sha)
    if siblings is None:
        return listed
    info = {}
    for s in siblings:
        _check_entry(s.rfilename, s.size, s.blob_id,
                     getattr(s.lfs, "sha256", None) if s.lfs else None, "model info")
        info[s.rfilename] = s
    for path in sorted(set(info) ^ set(listed)):
        where = "model info" if path in info else "tree"
        emit.emit(LISTING_INCONSISTENT, f"{path} is listed only by the {where}",
                  file=path, evidence={"only_in": where})
    for path, ann in list(listed.items()):
        sib = info.get(path)
        if sib is None:
            continue
        sib_sha = getattr(sib.lfs, "sha256", None) if sib.lfs else None
        theirs = {"size": sib.size, "blob_id": sib.blob_id, "lfs_sha256": sib_sha}
        ours = {"size": ann.size, "blob_id": ann.blob_id, "lfs_sha256": ann.lfs_sha256}
        diff = {k: [ours[k], theirs[k]] for k in ours if theirs[k] is not None
                and ours[k] != theirs[k]}
        if diff:
            emit.emit(LISTING_INCONSISTENT,
                      f"{path}: the tree and the model info announce different "
                      f"{', '.join(sorted(diff))}", file=path,
                      evidence={k: [str(x) for x in v] for k, v in diff.items()})
            # model_info's blob metadata is what the Hub documents as the file's digest.
            listed[path] = Announced(path, int(sib.size if sib.size is not None else ann.size),
                                     sib.blob_id or ann.blob_id, sib_sha or ann.lfs_sha256)
    return listed


def needs_full_bytes(path: str) -> bool:
    """Weights, pickles, zip containers and arrays are always fetched whole (up to the file
    limit) to be analysed."""
    return ends_with(path, ANALYSED_EXT)


def manifest_path(manifests: Path, repo: str, sha: str) -> Path:
    return manifests / repo.replace("/", "--") / f"{sha}.json"


def write_manifest(manifests: Path, repo: str, sha: str, endpoint: str,
                   files: Mapping[str, Announced]) -> None:
    """Record what the Hub announced for a pinned sha so offline scans can verify the cache."""
    dest = manifest_path(manifests, repo, sha)
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_suffix(".tmp")
    tmp.write_text(json.dumps({"repo": repo, "sha": sha, "endpoint": endpoint,
                               "files": [asdict(a) for a in files.values()]}, indent=1))
    tmp.replace(dest)


def read_manifest(manifests: Path, repo: str, sha: str) -> dict[str, Announced] | None:
    path = manifest_path(manifests, repo, sha)
    try:
        doc = json.loads(path.read_text())
        return {f["path"]: Announced(str(f["path"]), int(f["size"]), f.get("blob_id"),
                                     f.get("lfs_sha256")) for f in doc["files"]}
    except (OSError, ValueError, KeyError, TypeError):
        return None
