"""File signatures in tensor data: at a tensor's first bytes (AS232) and anywhere (AS233).

The anywhere search runs over the data section as one stream of chunks. With Hyperscan (the
`hyperscan` package: SIMD literal matching, GIL released, ~5 GB/s here) the chunks go through
one Hyperscan stream, which also finds signatures that straddle two chunks. Where no Hyperscan
wheel exists (Linux on ARM) the same candidates come from numpy in L2-sized blocks: positions
whose byte is a signature's first byte (~0.5% of bytes in float data), then the second byte and
the 32-bit word at those (~1 GB/s). Both engines yield every exact occurrence of an ANYWHERE
signature, in order; verify_anywhere then checks the header fields that follow.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable, Iterator
from types import TracebackType
from typing import Any, Protocol

import numpy as np

# Pickle opcodes that plausibly follow a PROTO header (FRAME, containers, GLOBAL, ints, ...).
PICKLE_NEXT = frozenset(b"\x95}](cq\x8a\x8c\x88\x89NKJMXUT\x93\x80")
SUB_BLOCK = 256 * 1024

ANYWHERE: tuple[tuple[str, bytes], ...] = (
    ("zip", b"PK\x03\x04"), ("elf", b"\x7fELF"), ("pe", b"PE\x00\x00"),
    ("pickle", b"\x80\x04\x95"), ("pickle", b"\x80\x05\x95"),
)
OVERLAP = max(len(m) for _, m in ANYWHERE) - 1
_FIRST = sorted({m[0] for _, m in ANYWHERE})
_SECOND = sorted({m[1] for _, m in ANYWHERE})
# (kind, little-endian value of the signature's bytes, mask of its length) for 32-bit words.
_WORDS = tuple((kind, int.from_bytes(m, "little"), (1 << (8 * len(m))) - 1)
               for kind, m in ANYWHERE)

ReadAt = Callable[[int, int], bytes]


def _pe_at(data: bytes, mz: int, read_at: ReadAt, base: int) -> bool:
    """Is there an MZ header at data[mz:] whose e_lfanew points at b'PE\\0\\0'?"""
    if data[mz:mz + 2] != b"MZ" or len(data) < mz + 0x40:
        return False
    lfanew = int.from_bytes(data[mz + 0x3C:mz + 0x40], "little")
    if not 0x40 <= lfanew <= 0x10000:
        return False
    return read_at(base + mz + lfanew, 4) == b"PE\x00\x00"


def sniff_tensor_start(head: bytes, read_at: ReadAt, base: int) -> str | None:
    """The signature a tensor's first bytes carry (pickle needs a plausible next opcode)."""
    if head.startswith((b"PK\x03\x04", b"PK\x05\x06", b"PK\x01\x02")):
        return "zip"
    if head.startswith(b"\x7fELF"):
        return "elf"
    if len(head) >= 3 and head[0] == 0x80 and 2 <= head[1] <= 5 and head[2] in PICKLE_NEXT:
        return "pickle"
    if head.startswith(b"\x1f\x8b\x08"):
        return "gzip"
    if head.startswith(b"7z\xbc\xaf\x27\x1c"):
        return "7z"
    if head.startswith((b"#!/", b"#! /")):
        return "shebang"
    if _pe_at(head, 0, read_at, base):
        return "pe"
    return None


def verify_anywhere(kind: str, at: int, read_at: ReadAt, data_end: int) -> bool:
    """Cut chance matches in float data down to ~nothing by checking the next header fields."""
    if kind == "zip":
        h = read_at(at, 8)
        return len(h) == 8 and h[4] <= 63 and h[5] == 0  # version needed to extract
    if kind == "elf":
        h = read_at(at, 8)
        return len(h) == 8 and h[4] in (1, 2) and h[5] in (1, 2) and h[6] == 1
    if kind == "pickle":
        h = read_at(at, 12)
        frame = int.from_bytes(h[3:11], "little") if len(h) == 12 else 0
        return 0 < frame <= data_end - at and h[11] in PICKLE_NEXT
    if kind == "pe":  # b"PE\0\0" found: look for the MZ header pointing at it
        lo = max(at - 0x10000, 0)
        before = read_at(lo, at - lo)
        mz = before.rfind(b"MZ")
        while mz >= 0:
            if int.from_bytes(before[mz + 0x3C:mz + 0x40], "little") == at - (lo + mz):
                return True
            mz = before.rfind(b"MZ", 0, mz)
        return False
    return False


class Search(Protocol):
    """Every ANYWHERE signature start in a byte stream fed chunk by chunk, in stream order."""

    def __enter__(self) -> Search: ...

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None: ...

    def feed(self, u8: Any, pos: int) -> Iterator[tuple[str, int]]:
        """Candidates (kind, stream offset) completed by u8 (uint8, at stream offset pos)."""
        ...


HYPERSCAN = importlib.util.find_spec("hyperscan") is not None


def new_search(block: int, engine: str | None = None) -> Search:
    """The fastest engine present ("hyperscan" or "numpy"), or the one named."""
    if engine == "hyperscan" or (engine is None and HYPERSCAN):
        try:
            return HyperscanSearch()
        except Exception:  # e.g. a CPU its build cannot run on (ArchitectureError)
            if engine == "hyperscan":
                raise
    return SignatureSearch(block)  # finds the same occurrences, slower


class HyperscanSearch:
    """ANYWHERE signatures through one Hyperscan stream (open between __enter__ and __exit__)."""

    def __init__(self) -> None:
        import hyperscan  # a compiled extension: loaded only by a data scan

        # Literal patterns as \xNN escapes (a NUL byte would end the C pattern string).
        exprs = [b"".join(b"\\x%02x" % c for c in magic) for _, magic in ANYWHERE]
        self._db = hyperscan.Database(mode=hyperscan.HS_MODE_STREAM)
        self._db.compile(expressions=exprs, ids=list(range(len(exprs))), elements=len(exprs),
                         flags=[0] * len(exprs))
        self._found: list[tuple[int, int]] = []
        # The Stream does not keep its callback alive: this bound method must outlive it.
        self._on_match = self._record
        self._stream: Any = None

    def _record(self, pattern: int, _start: int, end: int, _flags: int, _ctx: object) -> None:
        self._found.append((end - len(ANYWHERE[pattern][1]), pattern))

    def __enter__(self) -> HyperscanSearch:
        self._stream = self._db.stream(match_event_handler=self._on_match)
        self._stream.__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        stream, self._stream = self._stream, None
        stream.__exit__(kind, exc, tb)

    def feed(self, u8: Any, pos: int) -> Iterator[tuple[str, int]]:
        self._found.clear()
        self._stream.scan(memoryview(u8))  # Hyperscan releases the GIL while it scans
        for at, pattern in sorted(self._found):
            yield ANYWHERE[pattern][0], at


class SignatureSearch:
    """The numpy engine: L2-sized blocks, a first-byte mask, then the words at its hits."""

    def __init__(self, block: int) -> None:
        self.block = max(block, OVERLAP + 1)
        self._mask = np.empty(self.block + OVERLAP, np.bool_)
        self._tmp = np.empty_like(self._mask)
        self._tail = b""  # the previous block's last OVERLAP bytes

    def __enter__(self) -> SignatureSearch:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        return None

    def feed(self, u8: Any, pos: int) -> Iterator[tuple[str, int]]:
        """Candidates (kind, stream offset) starting in u8 (uint8, at stream offset pos) or in
        the previous block's tail; each must still pass verify_anywhere.

        Only the stream's last piece may be shorter than OVERLAP + 1 bytes (a shorter piece
        mid-stream would let a signature in the tail be seen twice): a short remainder of u8
        joins the block before it.
        """
        n = int(u8.size)
        start = 0
        while start < n:
            stop = start + self.block
            if n - stop <= OVERLAP:
                stop = n
            yield from self._one(u8[start:stop], pos + start)
            start = stop

    def _one(self, u8: Any, pos: int) -> Iterator[tuple[str, int]]:
        n = int(u8.size)
        tail = self._tail
        seam = tail + u8[:min(OVERLAP, n)].tobytes()
        for kind, magic in ANYWHERE:
            at = seam.find(magic)
            while 0 <= at < len(tail):
                yield kind, pos - len(tail) + at
                at = seam.find(magic, at + 1)
        self._tail = (tail + u8[max(n - OVERLAP, 0):n].tobytes())[-OVERLAP:]
        m = n - OVERLAP
        if m <= 0:
            return
        head = u8[:m]
        first, tmp = self._mask[:m], self._tmp[:m]  # preallocated: no page faults per block
        np.equal(head, _FIRST[0], out=first)
        for byte in _FIRST[1:]:
            np.equal(head, byte, out=tmp)
            np.logical_or(first, tmp, out=first)
        idx = np.flatnonzero(first)
        second = u8[idx + 1]
        keep = second == _SECOND[0]
        for byte in _SECOND[1:]:
            keep |= second == byte
        idx = idx[keep]  # ~1/60 of the first-byte hits survive on float data
        if idx.size == 0:
            return
        word = u8[idx].astype(np.uint32)
        for k in (1, 2, 3):
            word |= u8[idx + k].astype(np.uint32) << (8 * k)
        hits = [(kind, at) for kind, value, mask in _WORDS
                for at in idx[(word & mask) == value].tolist()]
        for kind, at in sorted(hits, key=lambda h: h[1]):
            yield kind, pos + at
