"""glibc malloc settings for a scan process: keep freed memory for the next allocation.

The weight statistics allocate and free the same few hundred KiB of numpy temporaries for every
module (a block's energies, the sampled entries and their powers). With glibc's defaults each
free can hand the pages back (heap trim, or munmap of an mmap-served chunk) and the next
allocation faults fresh zeroed pages in: on a 768 MB fp32 adapter that was a quarter of a second
of system time in the module statistics alone (docs/benchmarks/bench_static.md). Raising the
trim and mmap thresholds keeps those pages in the process; the scan's working memory is a few
MiB, so what is kept is small. Process-wide settings, so only the CLI makes them (a library
must not retune its host's allocator); elsewhere than glibc this does nothing.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_KEEP_BYTES = 256 * 1024 * 1024  # freed memory kept at the heap's top before it is trimmed
_MMAP_FROM = 64 * 1024 * 1024  # allocations served by their own mmap from this size up
_TOP_PAD = 16 * 1024 * 1024


def keep_freed_memory() -> bool:
    """Apply the settings; True when glibc accepted all three."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = (ctypes.c_int, ctypes.c_int)
    mallopt.restype = ctypes.c_int
    return all(mallopt(param, value) == 1 for param, value in (
        (_M_TRIM_THRESHOLD, _KEEP_BYTES), (_M_MMAP_THRESHOLD, _MMAP_FROM),
        (_M_TOP_PAD, _TOP_PAD)))
