"""Read-only memory maps of file spans: the page cache's bytes, read once, shared by the hashing
thread and the analyzers without a copy.

Every span is checked against the file's size (fstat of the open descriptor) before it is
mapped, so a size or offset taken from a file never maps past its end. A file truncated by
another process *while* a span is being read makes the kernel raise SIGBUS, which ends the
process (exit 135): never a pass. docs/benchmarks/bench_static.md has why mmap (no copy, and
hashlib reads it with the GIL released).
"""

from __future__ import annotations

import mmap
import os

_GRANULE = mmap.ALLOCATIONGRANULARITY


class SpanError(Exception):
    """A span that does not lie inside the file as it is now."""


def map_span(fd: int, start: int, length: int) -> memoryview:
    """The bytes [start, start+length) of the open file `fd`, read-only and without a copy.

    The mapping lives as long as the returned view (or any array made from it) does.
    """
    if start < 0 or length < 0:
        raise SpanError(f"negative span {start}+{length}")
    size = os.fstat(fd).st_size
    if start + length > size:
        raise SpanError(f"span {start}+{length} ends past the {size}-byte file (file changed?)")
    if length == 0:
        return memoryview(b"")
    base = start - start % _GRANULE
    mm = mmap.mmap(fd, start + length - base, offset=base, access=mmap.ACCESS_READ)
    return memoryview(mm)[start - base:]
