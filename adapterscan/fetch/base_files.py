"""What a base model folder holds, hashed, and checked against the digests it should have.

A base model that the probe and the weight comparison load is recorded file by file (sha256) in
the report. Files from the Hugging Face cache are also checked: each snapshot file links to a blob
named by the digest the Hub sent for it (sha256 for LFS files, the git blob sha1 for the rest),
and, when the Hub's listing is at hand, against the listing itself. `hf_hub_download` never
re-hashes a cached blob, so a tampered cache would otherwise be loaded silently.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapterscan.errors import FetchError
from adapterscan.fetch.hub_verify import Announced
from adapterscan.findings import JSONValue

# Files a base model needs; weights as safetensors only (the probe never unpickles).
BASE_PATTERNS = ("*.json", "*.safetensors", "tokenizer*", "*.model", "*.txt", "*.jinja")
MAX_BASE_FILES = 2_000
CHUNK = 4 * 1024 * 1024
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_SHA1 = re.compile(r"^[0-9a-f]{40}$")


@dataclass(frozen=True)
class BaseFile:
    path: str
    size: int
    sha256: str
    # "hub-listing", "cache-blob-name", "bundled-manifest", or "none" (a plain folder: recorded,
    # nothing to compare it with)
    checked_against: str

    def to_json(self) -> dict[str, JSONValue]:
        return {"path": self.path, "size": self.size, "sha256": self.sha256,
                "checked_against": self.checked_against}


def wanted(name: str) -> bool:
    base = name.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(base, p) for p in BASE_PATTERNS)


def base_files(folder: Path, *, announced: Mapping[str, Announced] | None = None,
               from_cache: bool = False,
               manifest: Mapping[str, str] | None = None,
               not_model: frozenset[str] | set[str] = frozenset()) -> tuple[BaseFile, ...]:
    """Hash every file of `folder` a loader would read (top level, BASE_PATTERNS).

    Raises FetchError when a file differs from the digest the Hub listed (`announced`; a file
    the listing lacks is a mismatch), that its cache blob is named after (`from_cache`; a
    snapshot file that is not a link to a digest-named blob is a mismatch), or that the bundled
    model's build manifest records (`manifest`: name -> sha256; a file it does not list is a
    mismatch too). `not_model`: names in the folder that no loader reads (a manifest of ours).
    """
    out: list[BaseFile] = []
    entries = sorted(p for p in folder.iterdir() if wanted(p.name) and p.name not in not_model)
    if len(entries) > MAX_BASE_FILES:
        raise FetchError(f"{folder}: {len(entries)} model files, more than {MAX_BASE_FILES}")
    for path in entries:
        if not path.is_file():
            continue
        size = path.stat().st_size
        ann = announced.get(path.name) if announced is not None else None
        etag = (Path(os.path.realpath(path)).name
                if from_cache and ann is None and path.is_symlink() else "")
        # The git blob id is computed only where it is the digest to compare (small files).
        git_blob = bool(ann is not None and not ann.lfs_sha256) or bool(_SHA1.match(etag))
        sha256, blob = _digests(path, size, git_blob=git_blob)
        checked = "none"
        if manifest is not None:
            _require(path, manifest.get(path.name), sha256, "the bundled model's manifest")
            checked = "bundled-manifest"
        elif ann is not None:
            expected = ann.lfs_sha256 or ann.blob_id
            _require(path, expected, sha256 if ann.lfs_sha256 else blob, "the Hub's listing")
            checked = "hub-listing"
        elif announced is not None:  # same filter as the listing: not from that commit
            _require(path, None, sha256, "the Hub's listing (the file is not in it)")
        elif _SHA256.match(etag) or _SHA1.match(etag):
            _require(path, etag, sha256 if _SHA256.match(etag) else blob,
                     "its cache blob name")
            checked = "cache-blob-name"
        elif from_cache:  # a plain file or an unnamed blob in a snapshot: nothing vouches for it
            _require(path, None, sha256, "a cache blob (it is not a link to one)")
        out.append(BaseFile(path.name, size, sha256, checked))
    return tuple(out)


def _require(path: Path, expected: str | None, actual: str, against: str) -> None:
    if expected is None or expected.lower() != actual:
        raise FetchError(f"base model file {path.name} does not match {against} "
                         f"(expected {expected}, got {actual})",
                         hint=f"the cached copy in {path.parent} was altered or is incomplete: "
                         "delete it and scan again")


def _digests(path: Path, size: int, *, git_blob: bool) -> tuple[str, str]:
    """sha256 and, when asked, the git blob sha1, in one pass."""
    sha256 = hashlib.sha256()
    blob = hashlib.sha1(b"blob %d\0" % size)
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            sha256.update(chunk)
            if git_blob:
                blob.update(chunk)
    return sha256.hexdigest(), blob.hexdigest() if git_blob else ""
