"""Scan of a safetensors data section whose header already passed every check.

The reference loader never looks at tensor bytes. We map the data section (mapped.py: the page
cache's pages, the same the hashing thread reads) in chunks of StaticLimits.chunk_bytes cut on
element boundaries, and in L2-sized blocks of each chunk count NaN/Inf per float tensor from the
raw bits (AS230), report integer/bool/byte tensors (AS231), compare every tensor's first bytes
with file signatures (AS232) and, unless the rule's `search_anywhere` is false, look for strong
signatures anywhere in the data (AS233, signatures.py). `measure_tensor_data` touches no
Emitter, so the pipeline runs it on a worker thread beside the weight statistics and replays
what it saw in order. Working memory: two bool masks and one scratch array of a block each.
"""

from __future__ import annotations

import bisect
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from adapterscan.emit import Emitter, Recorder
from adapterscan.mapped import SpanError, map_span
from adapterscan.static.formats.tensor_reader import has_nonfinite_16
from adapterscan.static.layout import SafetensorsHeader, TensorInfo
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors import checks as C
from adapterscan.static.safetensors.header import DTYPE_BITS, shown
from adapterscan.static.safetensors.signatures import (
    SUB_BLOCK,
    Search,
    new_search,
    sniff_tensor_start,
    verify_anywhere,
)

INTEGER_DTYPES = frozenset({"BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64"})
_MIN_CHUNK = 4096
_MAX_CANDIDATES = 10_000  # verified signature candidates per file, so crafted data stays cheap
_VERIFY_BYTES = 64


@dataclass
class _Counts:
    nan: int = 0
    inf: int = 0
    first: int | None = None  # element index of the first non-finite value


def _count_masked(u: Any, scratch: Any, mask: int, inf_bits: int) -> tuple[int, int, int | None]:
    """NaN/Inf counts for IEEE-like formats: |x| bits >= inf_bits is non-finite, == is Inf."""
    s = scratch[:u.size]
    np.bitwise_and(u, mask, out=s)
    if int(s.max(initial=0)) < inf_bits:
        return 0, 0, None
    bad = s >= inf_bits
    inf = int(np.count_nonzero(s == inf_bits))
    return int(np.count_nonzero(bad)) - inf, inf, int(np.argmax(bad))


def _count_float(view: Any, bits_view: Any, scratch: Any, mask: int,
                 inf_bits: int) -> tuple[int, int, int | None]:
    # Fast path: a sum is finite iff no element is NaN/Inf, barring overflow of finite values,
    # in which case the exact bit count below simply finds nothing.
    with np.errstate(all="ignore"):
        total = np.add.reduce(view)
    if np.isfinite(total):
        return 0, 0, None
    return _count_masked(bits_view, scratch, mask, inf_bits)


def _nonfinite(dtype: str, buf: Any, start: int, length: int,
               scratch: Any) -> tuple[int, int, int | None] | None:
    """(nan, inf, first index) for the float tensor bytes buf[start:start+length], else None."""
    if dtype in ("F16", "BF16"):
        u16 = np.frombuffer(buf, np.uint16, length // 2, start)
        inf_bits = 0x7C00 if dtype == "F16" else 0x7F80
        if not has_nonfinite_16(u16.view(np.int16), inf_bits):  # two reductions, no writes
            return 0, 0, None
        return _count_masked(u16, scratch.view(np.uint16), 0x7FFF, inf_bits)
    if dtype in ("F32", "C64"):
        f32 = np.frombuffer(buf, np.float32, length // 4, start)
        nan, inf, first = _count_float(f32, f32.view(np.uint32), scratch.view(np.uint32),
                                       0x7FFFFFFF, 0x7F800000)
        if dtype == "C64" and first is not None:
            first //= 2  # two float32 parts per complex element
        return nan, inf, first
    if dtype == "F64":
        f64 = np.frombuffer(buf, np.float64, length // 8, start)
        return _count_float(f64, f64.view(np.uint64), scratch.view(np.uint64),
                            0x7FFFFFFFFFFFFFFF, 0x7FF0000000000000)
    if dtype == "F8_E5M2":
        return _count_masked(np.frombuffer(buf, np.uint8, length, start), scratch.view(np.uint8),
                             0x7F, 0x7C)
    if dtype == "F8_E4M3":  # "fn" variant: no Inf, NaN is S.1111.111
        nan, inf, first = _count_masked(np.frombuffer(buf, np.uint8, length, start),
                                        scratch.view(np.uint8), 0x7F, 0x7F)
        return nan + inf, 0, first  # the helper calls the == 0x7F pattern Inf: here it is NaN
    if dtype == "F8_E8M0":  # only 0xFF is NaN
        u8 = np.frombuffer(buf, np.uint8, length, start)
        nan = int(np.count_nonzero(u8 == 0xFF))
        return nan, 0, (int(np.argmax(u8 == 0xFF)) if nan else None)
    return None


def scan_tensor_data(path: Path, header: SafetensorsHeader, emit: Emitter,
                     limits: StaticLimits) -> None:
    """Measure and report in one go (tests, benchmarks); the pipeline splits the two."""
    anywhere = bool(emit.param(C.EMBEDDED_MAGIC, "search_anywhere"))
    measure_tensor_data(path, header, limits, anywhere).replay(emit)


def measure_tensor_data(path: Path, header: SafetensorsHeader, limits: StaticLimits,
                        anywhere: bool) -> Recorder:
    """Everything the data scan finds, recorded in order (thread-safe: touches no Emitter)."""
    rec = Recorder()
    rel = header.path
    for t in header.tensors:
        # LyCORIS (IA)3 stores its `on_input` flag as a one-element integer: not a payload.
        if t.dtype in INTEGER_DTYPES and not (t.name.endswith(".on_input")
                                              and math.prod(t.shape) == 1):
            rec.emit(C.INTEGER_TENSOR, f"{rel}: tensor {shown(t.name)!r} is {t.dtype} "
                     f"{list(t.shape)} ({t.end - t.begin} bytes); adapter weights are float",
                     file=rel, tensor=shown(t.name), offset=header.data_start + t.begin,
                     evidence={"dtype": t.dtype, "shape": list(t.shape),
                               "bytes": t.end - t.begin})
    fd = os.open(path, os.O_RDONLY)
    try:
        if os.fstat(fd).st_size != header.file_size:
            rec.skip(rel, "file size changed between header and data scan")
            return rec
        scanner = _Scanner(fd, header, rec, limits, anywhere)
        if scanner.run():
            scanner.report()
    finally:
        os.close(fd)
    return rec


class _Scanner:
    def __init__(self, fd: int, header: SafetensorsHeader, rec: Recorder,
                 limits: StaticLimits, anywhere: bool) -> None:
        self.fd, self.header, self.rec, self.anywhere = fd, header, rec, anywhere
        self.rel = header.path
        self.tensors = [t for t in header.tensors if t.end > t.begin]
        self.begins = [t.begin for t in self.tensors]
        self.chunk = max(limits.chunk_bytes, _MIN_CHUNK) // 8 * 8
        self.block = min(SUB_BLOCK, self.chunk)
        self.counts: dict[str, _Counts] = {}
        self.candidates = 0
        self.capped = False
        self.data_end = self.tensors[-1].end if self.tensors else 0

    def read_at(self, data_offset: int, length: int) -> bytes:
        """Bytes of the data section (bounded to it), for rare verifications."""
        length = max(0, min(length, self.data_end - data_offset))
        return os.pread(self.fd, length, self.header.data_start + data_offset)

    def run(self) -> bool:
        if not self.anywhere:
            return self._run(None)
        with new_search(self.block) as search:
            return self._run(search)

    def _run(self, search: Search | None) -> bool:
        scratch = np.empty(self.block // 8, np.uint64)
        pos, i = 0, 0
        while pos < self.data_end:
            end = self._chunk_end(pos)
            try:
                view = map_span(self.fd, self.header.data_start + pos, end - pos)
            except SpanError:
                self.rec.skip(self.rel, f"data ended before byte {self.header.data_start + end}"
                              " while scanning tensors (file changed?)")
                return False
            buf = np.frombuffer(view, np.uint8)
            while i < len(self.tensors) and self.tensors[i].end <= pos:
                i += 1
            j = i
            while j < len(self.tensors) and self.tensors[j].begin < end:
                self._tensor_piece(self.tensors[j], buf, pos, end, scratch)
                j += 1
            if search is not None and not self.capped:
                for kind, at in search.feed(buf, pos):
                    if not self._candidate(kind, at):
                        break
            del buf, view  # unmap this chunk before mapping the next
            pos = end
        return True

    def _chunk_end(self, pos: int) -> int:
        end = min(pos + self.chunk, self.data_end)
        if end == self.data_end:
            return end
        t = self.tensors[bisect.bisect_right(self.begins, end) - 1]
        size = max(DTYPE_BITS[t.dtype] // 8, 1)
        aligned = t.begin + (end - t.begin) // size * size
        return aligned if aligned > pos else end

    def _tensor_piece(self, t: TensorInfo, buf: Any, pos: int, end: int, scratch: Any) -> None:
        s, e = max(t.begin, pos) - pos, min(t.end, end) - pos
        if t.begin >= pos:
            head = buf[s:min(s + _VERIFY_BYTES, e)].tobytes()
            if len(head) < _VERIFY_BYTES and t.end > end:  # the chunk cut the tensor's head
                head = self.read_at(t.begin, _VERIFY_BYTES)
            magic = sniff_tensor_start(head, self.read_at, t.begin) if len(head) >= 2 else None
            if magic:
                self.rec.emit(C.MAGIC_AT_TENSOR_START,
                              f"{self.rel}: tensor {shown(t.name)!r} ({t.dtype}) starts with "
                              f"{magic} magic bytes {head[:8].hex()}", file=self.rel,
                              tensor=shown(t.name), offset=self.header.data_start + t.begin,
                              evidence={"magic": magic, "head": head[:16].hex(),
                                        "file_offset": self.header.data_start + t.begin,
                                        "tensor_bytes": t.end - t.begin, "dtype": t.dtype})
        size = max(DTYPE_BITS[t.dtype] // 8, 1)
        step = max(size, self.block // size * size)
        for b in range(s, e, step):  # L2-sized blocks: the scratch array stays in cache
            got = _nonfinite(t.dtype, buf, b, min(step, e - b), scratch)
            if got is None:
                return
            if got[0] == 0 and got[1] == 0:
                continue
            c = self.counts.setdefault(t.name, _Counts())
            c.nan += got[0]
            c.inf += got[1]
            if c.first is None and got[2] is not None:
                c.first = (pos + b - t.begin) * 8 // DTYPE_BITS[t.dtype] + got[2]

    def _candidate(self, kind: str, at: int) -> bool:
        """Verify one candidate; False once the per-file cap is reached (stop searching)."""
        if self.candidates >= _MAX_CANDIDATES:
            self.capped = True
            self.rec.skip(self.rel, f"over {_MAX_CANDIDATES} embedded-signature candidates in "
                          "tensor data; the rest was not checked")
            return False
        self.candidates += 1
        if not verify_anywhere(kind, at, self.read_at, self.data_end):
            return True
        t = self.tensors[bisect.bisect_right(self.begins, at) - 1]
        if at == t.begin:  # a tensor's start is AS232's, with more signatures
            return True
        file_offset = self.header.data_start + at
        self.rec.emit(C.EMBEDDED_MAGIC, f"{self.rel}: {kind} signature inside tensor "
                      f"{shown(t.name)!r} at byte {at - t.begin} of its data (file offset "
                      f"{file_offset})", file=self.rel, tensor=shown(t.name), offset=file_offset,
                      evidence={"magic": kind, "file_offset": file_offset,
                                "offset_in_tensor": at - t.begin, "dtype": t.dtype,
                                "head": self.read_at(at, 16).hex()})
        return True

    def report(self) -> None:
        for t in self.tensors:
            c = self.counts.get(t.name)
            if c is None:
                continue
            elements = (t.end - t.begin) * 8 // DTYPE_BITS[t.dtype]
            self.rec.emit(C.NONFINITE, f"{self.rel}: tensor {shown(t.name)!r} ({t.dtype}) has "
                          f"{c.nan} NaN and {c.inf} infinite values of {elements}",
                          file=self.rel, tensor=shown(t.name),
                          offset=self.header.data_start + t.begin,
                          evidence={"nan": c.nan, "inf": c.inf, "elements": elements,
                                    "dtype": t.dtype, "first_index": c.first})
