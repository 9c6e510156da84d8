"""sha256 of local files over memory maps, run beside the analyzers.

hashlib hashes the mapped page-cache pages directly (no copy into a buffer; the GIL is released
for the whole window), so the analyzers, which map the same file, read the same pages: each
byte comes off the disk once. Windows bound the mapped (resident) part of a file; a file whose
size or mtime changes while it is hashed raises OSError (the scan then skips it: incomplete).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterable, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from adapterscan.mapped import SpanError, map_span

WINDOW = 64 * 1024 * 1024  # ~35 ms of hashing per GIL hand-over


def sha256_file(path: Path, window: int = WINDOW) -> str:
    h = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY)
    try:
        before = os.fstat(fd)
        for start in range(0, before.st_size, window):
            try:
                view = map_span(fd, start, min(window, before.st_size - start))
            except SpanError as exc:
                raise OSError(f"{path}: {exc}") from exc
            h.update(view)  # hashlib releases the GIL on large buffers
            view.release()
        after = os.fstat(fd)
    finally:
        os.close(fd)
    if (after.st_size, after.st_mtime_ns) != (before.st_size, before.st_mtime_ns):
        raise OSError(f"{path}: file changed while it was hashed")
    return h.hexdigest()


def hash_files_async(root: Path, paths: Iterable[str],
                     pool: ThreadPoolExecutor) -> Mapping[str, Future[str]]:
    """Start hashing in `pool`; the analyzers run meanwhile on the other core."""
    return {p: pool.submit(sha256_file, root / p) for p in paths}
