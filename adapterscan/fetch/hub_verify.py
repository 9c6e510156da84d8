"""Copy a cached download into the per-scan folder while hashing exactly the bytes written.

`hf_hub_download` never re-hashes what it returns, so a tampered cache blob or a lying mirror is
served silently. We hash while copying (sha256, and the git blob id for non-LFS files) so the
bytes the analyzers read are the bytes that were verified, with no window in between.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

CHUNK = 1024 * 1024


@dataclass(frozen=True)
class Announced:
    """What the Hub announced for one file."""

    path: str
    size: int
    blob_id: str | None  # git blob sha1 (every file)
    lfs_sha256: str | None  # LFS files only


@dataclass(frozen=True)
class Verified:
    path: str
    sha256: str
    size: int
    ok: bool
    expected: str | None  # the announced digest that was compared
    actual: str | None  # the digest of the same kind over the bytes written
    kind: str  # "sha256" | "git-blob-sha1"


def copy_verified(cached: Path, dest: Path, want: Announced) -> Verified:
    """Copy at most size+1 bytes (more than announced is a mismatch) and compare digests."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    sha256 = hashlib.sha256()
    # The git blob id hashes the size first; we use the announced size (a different actual size is
    # a mismatch anyway), so both digests stream in one pass.
    blob = hashlib.sha1(b"blob %d\0" % want.size)
    total = 0
    with open(cached, "rb") as src, open(dest, "xb") as out:
        while total <= want.size:
            chunk = src.read(min(CHUNK, want.size + 1 - total))
            if not chunk:
                break
            total += len(chunk)
            sha256.update(chunk)
            if want.lfs_sha256 is None:
                blob.update(chunk)
            out.write(chunk)
    os.chmod(dest, 0o444)
    digest = sha256.hexdigest()
    if want.lfs_sha256 is not None:
        ok = total == want.size and digest == want.lfs_sha256.lower()
        return Verified(want.path, digest, total, ok, want.lfs_sha256, digest, "sha256")
    actual = blob.hexdigest()
    ok = total == want.size and want.blob_id is not None and actual == want.blob_id.lower()
    return Verified(want.path, digest, total, ok, want.blob_id, actual, "git-blob-sha1")
