"""A bounded GGUF (v2/v3) header parser: every count, length and offset is checked before use.

GGUF readers have had memory-safety CVEs from trusting counts and lengths in the header
(llama.cpp's gguf.c before 2024: CVE-2024-25664..25668, heap overflows from tensor and KV
counts, string lengths and array sizes). This parser reads through a cursor that never reads
past the end of the file or past a byte cap, sizes nothing from the file before checking it
against the bytes that remain, and rejects what llama.cpp's own reader rejects (so a file that
another reader would accept differently is a finding, not a silent disagreement):

  magic `GGUF`, u32 version (2 or 3; v1 is gone, big-endian files are not read), u64 tensor
  count, u64 KV count; KVs (u64-length UTF-8 key, u32 type, value; arrays of a u32 element type
  and a u64 count, no nested arrays); tensor infos (name < 64 bytes, u32 n_dims in 1..4, u64
  dims, u32 ggml type, u64 offset); data at `general.alignment` (a power of two, default 32);
  tensors laid out in declaration order, each padded to the alignment, inside the file.

The `gguf` package (dev extra) writes the test fixtures; it is never used to read a scanned file.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import BinaryIO

from adapterscan.static.layout import TensorInfo

MAGIC = b"GGUF"
DEFAULT_ALIGNMENT = 32
MAX_ALIGNMENT = 1 << 20
MAX_DIMS = 4  # GGML_MAX_DIMS
MAX_NAME = 64  # GGML_MAX_NAME, including the terminating NUL
MAX_STRING = 16 * 1024 * 1024  # one key or string value (chat templates are ~10 KB)
MAX_KV = 65_536
MAX_ELEMENTS = 4_000_000  # array elements over all KVs (a 256k-token vocabulary fits)
MAX_HEADER = 64 * 1024 * 1024  # KVs + tensor infos
KEPT_STRING = 1 << 20  # string values kept in memory for evidence (longer ones are cut)
ARRAY_SAMPLE = 16
CHUNK = 1 << 20

# ggml type id -> (name, elements per block, bytes per block); ggml.h / gguf-py constants.
GGML_TYPES: Mapping[int, tuple[str, int, int]] = {
    0: ("F32", 1, 4), 1: ("F16", 1, 2), 2: ("Q4_0", 32, 18), 3: ("Q4_1", 32, 20),
    6: ("Q5_0", 32, 22), 7: ("Q5_1", 32, 24), 8: ("Q8_0", 32, 34), 9: ("Q8_1", 32, 40),
    10: ("Q2_K", 256, 84), 11: ("Q3_K", 256, 110), 12: ("Q4_K", 256, 144),
    13: ("Q5_K", 256, 176), 14: ("Q6_K", 256, 210), 15: ("Q8_K", 256, 292),
    16: ("IQ2_XXS", 256, 66), 17: ("IQ2_XS", 256, 74), 18: ("IQ3_XXS", 256, 98),
    19: ("IQ1_S", 256, 50), 20: ("IQ4_NL", 32, 18), 21: ("IQ3_S", 256, 110),
    22: ("IQ2_S", 256, 82), 23: ("IQ4_XS", 256, 136), 24: ("I8", 1, 1), 25: ("I16", 1, 2),
    26: ("I32", 1, 4), 27: ("I64", 1, 8), 28: ("F64", 1, 8), 29: ("IQ1_M", 256, 56),
    30: ("BF16", 1, 2), 34: ("TQ1_0", 256, 54), 35: ("TQ2_0", 256, 66), 39: ("MXFP4", 32, 17),
    40: ("NVFP4", 64, 36), 41: ("Q1_0", 128, 18),
}
# KV value types: id -> (name, struct format or None for string/array).
_SCALARS: Mapping[int, tuple[str, str]] = {
    0: ("u8", "<B"), 1: ("i8", "<b"), 2: ("u16", "<H"), 3: ("i16", "<h"), 4: ("u32", "<I"),
    5: ("i32", "<i"), 6: ("f32", "<f"), 7: ("bool", "<B"), 10: ("u64", "<Q"), 11: ("i64", "<q"),
    12: ("f64", "<d"),
}
STRING, ARRAY = 8, 9


class GgufError(Exception):
    """A header that breaks the format or our bounds; `offset` is where the parser was."""

    def __init__(self, reason: str, offset: int, *, over_cap: bool = False,
                 unsupported: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.offset = offset
        self.over_cap = over_cap
        self.unsupported = unsupported


@dataclass(frozen=True)
class GgufArray:
    type: str  # element type name
    count: int
    sample: tuple[int | float | bool | str, ...]  # the first ARRAY_SAMPLE elements


GgufValue = int | float | bool | str | GgufArray


@dataclass(frozen=True)
class GgufTensor:
    name: str
    ggml_type: str
    ne: tuple[int, ...]  # ggml order: ne[0] is the contiguous dimension
    offset: int  # relative to the data section
    nbytes: int


@dataclass(frozen=True)
class GgufFile:
    """A GGUF header that passed every check: offsets and sizes may be trusted."""

    path: str
    file_size: int
    version: int
    alignment: int
    data_start: int
    kv: Mapping[str, GgufValue]
    tensors: tuple[GgufTensor, ...]
    trailing_bytes: int  # bytes after the last tensor's padded data

    def tensor_infos(self) -> tuple[TensorInfo, ...]:
        """Tensors as row-major shapes (ggml ne reversed), offsets into the data section."""
        return tuple(TensorInfo(name=t.name, dtype=t.ggml_type, shape=tuple(reversed(t.ne)),
                                begin=t.offset, end=t.offset + t.nbytes) for t in self.tensors)

    def string(self, key: str) -> str | None:
        v = self.kv.get(key)
        return v if isinstance(v, str) else None


class _Cursor:
    """Reads forward through a file: never past its end, never past the header cap."""

    def __init__(self, fh: BinaryIO, size: int, cap: int) -> None:
        self.fh, self.size, self.cap = fh, size, cap
        self.pos = 0
        self._buf = b""
        self._start = 0
        self.elements = 0

    def remaining(self) -> int:
        return self.size - self.pos

    def _need(self, n: int, what: str) -> None:
        if n > self.size - self.pos:
            raise GgufError(f"{what} needs {n} bytes at offset {self.pos} but the file has "
                            f"{self.size - self.pos} left", self.pos)
        if self.pos + n > self.cap:
            raise GgufError(f"{what} reaches past the scanner's {self.cap}-byte header cap",
                            self.pos, over_cap=True)

    def take(self, n: int, what: str) -> bytes:
        self._need(n, what)
        end = self._start + len(self._buf)
        if not (self._start <= self.pos and self.pos + n <= end):
            self.fh.seek(self.pos)
            want = min(max(n, CHUNK), self.size - self.pos)
            self._buf = self.fh.read(want)
            self._start = self.pos
            if len(self._buf) < n:
                raise GgufError(f"short read of {what} at offset {self.pos} (file changed?)",
                                self.pos)
        i = self.pos - self._start
        self.pos += n
        return self._buf[i:i + n]

    def skip(self, n: int, what: str) -> None:
        self._need(n, what)
        self.pos += n

    def unpack(self, fmt: str, what: str) -> int | float:
        value: int | float = struct.unpack(fmt, self.take(struct.calcsize(fmt), what))[0]
        return value

    def u32(self, what: str) -> int:
        return int(self.unpack("<I", what))

    def u64(self, what: str) -> int:
        return int(self.unpack("<Q", what))

    def string(self, what: str, keep: int = KEPT_STRING) -> str:
        at = self.pos
        n = self.u64(f"{what} length")
        if n > MAX_STRING:
            raise GgufError(f"{what} declares a length of {n} bytes (cap {MAX_STRING})", at)
        if n > self.remaining():
            raise GgufError(f"{what} declares a length of {n} bytes but the file has "
                            f"{self.remaining()} left", at)
        if n > keep:
            head = self.take(keep, what)
            self.skip(n - keep, what)
        else:
            head = self.take(n, what)
        try:
            return head.decode("utf-8")
        except UnicodeDecodeError as exc:
            if n > keep and exc.start >= keep - 4:  # cut inside a character: keep the prefix
                return head[:exc.start].decode("utf-8")
            raise GgufError(f"{what} is not valid UTF-8 (byte {exc.start})", at) from None


def parse_gguf(fh: BinaryIO, size: int, path: str, *, max_tensors: int = 100_000,
               cap: int = MAX_HEADER) -> GgufFile:
    """Parse and validate the header; raises GgufError with the reason and offset."""
    cur = _Cursor(fh, size, cap)
    if cur.take(4, "magic") != MAGIC:
        raise GgufError("not a GGUF file (magic)", 0)
    version = cur.u32("version")
    if version & 0xFFFF == 0 and version != 0:
        raise GgufError(f"version field {version:#x} is byte-swapped: a big-endian GGUF file, "
                        "which this parser does not read", 4, unsupported=True)
    if version == 1:
        raise GgufError("GGUF v1 (u32 lengths) is obsolete; llama.cpp no longer reads it", 4)
    if version not in (2, 3):
        raise GgufError(f"unknown GGUF version {version}", 4)
    n_tensors = cur.u64("tensor count")
    n_kv = cur.u64("KV count")
    # The smallest tensor info is 8 (name length) + 4 + 8 + 4 + 8 bytes; a KV 8 + 4 + 1.
    if n_tensors > max_tensors or n_tensors * 32 > cur.remaining():
        raise GgufError(f"tensor count {n_tensors} is impossible for a {size}-byte file or over "
                        f"the cap {max_tensors}", 8)
    if n_kv > MAX_KV or n_kv * 13 > cur.remaining():
        raise GgufError(f"KV count {n_kv} is impossible for a {size}-byte file or over the cap "
                        f"{MAX_KV}", 16)
    kv: dict[str, GgufValue] = {}
    for i in range(n_kv):
        at = cur.pos
        key = cur.string(f"key of KV {i}", keep=MAX_STRING)
        if not key:
            raise GgufError(f"KV {i} has an empty key", at)
        if key in kv:
            raise GgufError(f"duplicate key {key[:80]!r}: readers disagree on which value wins",
                            at)
        vtype = cur.u32(f"type of {key[:80]!r}")
        kv[key] = _value(cur, vtype, key, nested=False)
    alignment = DEFAULT_ALIGNMENT
    if "general.alignment" in kv:
        a = kv["general.alignment"]
        if not isinstance(a, int) or isinstance(a, bool) or a <= 0 or a & (a - 1) \
                or a > MAX_ALIGNMENT:
            raise GgufError(f"general.alignment {a!r} is not a power of two up to "
                            f"{MAX_ALIGNMENT}", cur.pos)
        alignment = a
    tensors = _tensor_infos(cur, n_tensors)
    data_start = -(-cur.pos // alignment) * alignment
    return _layout(path, size, version, alignment, data_start, kv, tensors)


def _value(cur: _Cursor, vtype: int, key: str, *, nested: bool) -> GgufValue:
    k = key[:80]
    if vtype in _SCALARS:
        name, fmt = _SCALARS[vtype]
        v = cur.unpack(fmt, f"value of {k!r}")
        if name == "bool":
            if v not in (0, 1):
                raise GgufError(f"bool value of {k!r} is {v}, not 0 or 1", cur.pos - 1)
            return bool(v)
        return v
    if vtype == STRING:
        return cur.string(f"string value of {k!r}")
    if vtype == ARRAY:
        if nested:
            raise GgufError(f"{k!r} nests an array in an array (llama.cpp rejects it)", cur.pos)
        return _array(cur, k)
    raise GgufError(f"{k!r} has unknown value type {vtype}", cur.pos - 4)


def _array(cur: _Cursor, key: str) -> GgufArray:
    at = cur.pos
    etype = cur.u32(f"array type of {key!r}")
    count = cur.u64(f"array count of {key!r}")
    if etype == ARRAY:
        raise GgufError(f"{key!r} nests an array in an array (llama.cpp rejects it)", at)
    if etype in _SCALARS:
        name, fmt = _SCALARS[etype]
        width = struct.calcsize(fmt)
        if count > cur.remaining() // width:
            raise GgufError(f"array {key!r} of {count} {name} needs {count * width} bytes; the "
                            f"file has {cur.remaining()} left", at)
    elif etype == STRING:
        name = "string"
        if count > cur.remaining() // 8:
            raise GgufError(f"array {key!r} of {count} strings cannot fit in the "
                            f"{cur.remaining()} bytes left", at)
    else:
        raise GgufError(f"array {key!r} has unknown element type {etype}", at)
    cur.elements += count
    if cur.elements > MAX_ELEMENTS:
        raise GgufError(f"metadata arrays hold over {MAX_ELEMENTS} elements (array {key!r}: "
                        f"{count})", at, over_cap=True)
    sample: list[int | float | bool | str] = []
    if etype == STRING:
        for j in range(count):
            s = cur.string(f"element {j} of {key!r}", keep=256 if j < ARRAY_SAMPLE else 0)
            if j < ARRAY_SAMPLE:
                sample.append(s)
    else:
        n = min(count, ARRAY_SAMPLE)
        sample = [_scalar(cur.take(width, f"array {key!r}"), fmt, name) for _ in range(n)]
        cur.skip((count - n) * width, f"array {key!r}")
    return GgufArray(name, count, tuple(sample))


def _scalar(raw: bytes, fmt: str, name: str) -> int | float | bool:
    v: int | float = struct.unpack(fmt, raw)[0]
    return bool(v) if name == "bool" else v


def _tensor_infos(cur: _Cursor, n: int) -> list[GgufTensor]:
    seen: set[str] = set()
    out: list[GgufTensor] = []
    for i in range(n):
        at = cur.pos
        name = cur.string(f"name of tensor {i}", keep=MAX_NAME)
        if len(name.encode("utf-8")) >= MAX_NAME:
            raise GgufError(f"tensor {i} name {name[:80]!r} is {MAX_NAME} bytes or longer "
                            "(llama.cpp's limit)", at)
        if name in seen:
            raise GgufError(f"duplicate tensor name {name!r}", at)
        seen.add(name)
        n_dims = cur.u32(f"n_dims of {name!r}")
        if not 1 <= n_dims <= MAX_DIMS:
            raise GgufError(f"tensor {name!r} has {n_dims} dimensions (1..{MAX_DIMS})", at)
        ne = tuple(cur.u64(f"dimension {d} of {name!r}") for d in range(n_dims))
        type_id = cur.u32(f"type of {name!r}")
        if type_id not in GGML_TYPES:
            raise GgufError(f"tensor {name!r} has unknown ggml type {type_id}", cur.pos - 4)
        tname, block, width = GGML_TYPES[type_id]
        elements = 1
        for d in ne:
            if d >= 1 << 62:
                raise GgufError(f"tensor {name!r} dimension {d} overflows", at)
            elements *= d
            if elements >= 1 << 62:
                raise GgufError(f"tensor {name!r} shape {list(ne)} overflows (>= 2^62 elements)",
                                at)
        if ne[0] % block:
            raise GgufError(f"tensor {name!r}: ne[0] = {ne[0]} is not a multiple of the "
                            f"{tname} block size {block}", at)
        offset = cur.u64(f"offset of {name!r}")
        out.append(GgufTensor(name, tname, ne, offset, elements // block * width))
    return out


def _layout(path: str, size: int, version: int, alignment: int, data_start: int,
            kv: Mapping[str, GgufValue], tensors: list[GgufTensor]) -> GgufFile:
    if data_start > size:
        raise GgufError(f"the data section would start at {data_start}, past the end of the "
                        f"{size}-byte file", data_start)
    expected = 0
    for t in tensors:  # llama.cpp requires declaration order, each tensor padded
        if t.offset != expected:
            raise GgufError(f"tensor {t.name!r} has offset {t.offset}, expected {expected} "
                            "(tensors must follow each other in declaration order, padded to "
                            f"{alignment} bytes)", data_start)
        expected += -(-t.nbytes // alignment) * alignment
    data_len = size - data_start
    used = tensors[-1].offset + tensors[-1].nbytes if tensors else 0
    if used > data_len:
        raise GgufError(f"tensor data needs {used} bytes after offset {data_start}; the file "
                        f"has {data_len}", data_start)
    trailing = max(0, data_len - expected) if tensors else data_len
    return GgufFile(path=path, file_size=size, version=version, alignment=alignment,
                    data_start=data_start, kv=dict(kv), tensors=tuple(tensors),
                    trailing_bytes=trailing)


def number(v: GgufValue | None) -> float | None:
    """A KV number as float (None when absent or not a number; NaN/Inf are returned as is)."""
    if isinstance(v, bool) or not isinstance(v, int | float):
        return None
    return float(v)
