"""Streaming sha256 of local files, bounded memory, run beside the analyzers."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

CHUNK = 4 * 1024 * 1024


def sha256_file(path: Path, chunk: int = CHUNK) -> str:
    h = hashlib.sha256()
    buf = bytearray(chunk)
    view = memoryview(buf)
    with open(path, "rb", buffering=0) as fh:
        while n := fh.readinto(buf):
            h.update(view[:n])  # hashlib releases the GIL on large buffers
    return h.hexdigest()


def hash_files_async(root: Path, paths: Iterable[str],
                     pool: ThreadPoolExecutor) -> Mapping[str, Future[str]]:
    """Start hashing in `pool`; the analyzers run meanwhile on the other core."""
    return {p: pool.submit(sha256_file, root / p) for p in paths}
