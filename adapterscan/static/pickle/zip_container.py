"""Zip containers (torch archives) read defensively: our own local-header parse and member reader.

`zipfile` parses the central directory; everything it would refuse (encryption flag, local name
that differs from the central one, bad CRC) is reported here instead of raised, because loaders
such as torch's own zip reader ignore those fields and load the bytes anyway.
"""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from adapterscan.findings import JSONValue
from adapterscan.static.pickle.checks import (
    ZIP_DUPLICATE_MEMBER,
    ZIP_EXTRA_DATA,
    ZIP_HEADER_MISMATCH,
    ZIP_UNSAFE_MEMBER_NAME,
)

LOCAL_MAGIC = b"PK\x03\x04"
EOCD_MAGIC = b"PK\x05\x06"
_LOCAL = struct.Struct("<4sHHHHHIIIHH")  # 30 bytes
_EOCD = struct.Struct("<4sHHHHIIH")  # 22 bytes
_CHUNK = 1 << 20


class ZipUnreadable(Exception):
    """The container cannot be parsed at all."""


@dataclass(frozen=True)
class Anomaly:
    check: str
    message: str
    member: str | None = None
    evidence: dict[str, JSONValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Member:
    name: str
    flag_bits: int
    method: int
    compress_size: int
    file_size: int
    crc: int
    header_offset: int
    data_offset: int | None  # None when the local header could not be parsed

    @property
    def encrypted(self) -> bool:
        return bool(self.flag_bits & 0x41)  # bit 0 traditional, bit 6 strong encryption

    @property
    def is_dir(self) -> bool:
        return self.name.endswith("/") and self.file_size == 0


def find_eocd(f: BinaryIO, size: int) -> tuple[int, int] | None:
    """(offset, comment length) of the end-of-central-directory record, searched in the tail."""
    tail_len = min(size, _EOCD.size + 65535)
    f.seek(size - tail_len)
    tail = f.read(tail_len)
    pos = tail.rfind(EOCD_MAGIC)
    while pos >= 0:
        if pos + _EOCD.size <= len(tail):
            comment_len = _EOCD.unpack_from(tail, pos)[7]
            return size - tail_len + pos, comment_len
        pos = tail.rfind(EOCD_MAGIC, 0, pos)
    return None


def _unsafe_name(name: str) -> str | None:
    if "\\" in name:
        return "backslash"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "absolute path"
    if ".." in name.split("/"):
        return "'..' component"
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return "control character"
    return None


def open_zip(f: BinaryIO, size: int, max_members: int) -> tuple[list[Member], list[Anomaly]]:
    """Parse the central directory and every local header; report each trick found."""
    try:
        f.seek(0)
        zf = zipfile.ZipFile(f)  # reads only the central directory
        infos = zf.infolist()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, ValueError, EOFError,
            struct.error, UnicodeDecodeError, NotImplementedError) as exc:
        raise ZipUnreadable(f"{type(exc).__name__}: {exc}") from exc
    anomalies: list[Anomaly] = []
    members: list[Member] = []
    seen: set[str] = set()
    for info in infos[:max_members]:
        name = info.filename
        if name in seen:
            anomalies.append(Anomaly(ZIP_DUPLICATE_MEMBER,
                                     f"member name {name!r} appears more than once; readers "
                                     "disagree on which copy they load", name))
        seen.add(name)
        why = _unsafe_name(info.orig_filename)
        if why:
            anomalies.append(Anomaly(ZIP_UNSAFE_MEMBER_NAME,
                                     f"member name {info.orig_filename!r} has a {why}", name,
                                     {"reason": why}))
        data_offset = _local_header(f, size, info, anomalies)
        members.append(Member(name, info.flag_bits, info.compress_type, info.compress_size,
                              info.file_size, info.CRC, info.header_offset, data_offset))
    anomalies.extend(_layout(f, size, members))
    return members, anomalies


def _local_header(f: BinaryIO, size: int, info: zipfile.ZipInfo,
                  anomalies: list[Anomaly]) -> int | None:
    off = info.header_offset
    name = info.filename
    if off < 0 or off + _LOCAL.size > size:
        anomalies.append(Anomaly(ZIP_HEADER_MISMATCH,
                                 f"local header of {name!r} at {off} lies outside the file", name))
        return None
    f.seek(off)
    raw = f.read(_LOCAL.size)
    (magic, _ver, flags, method, _t, _d, _crc, _cs, _us, fn_len, extra_len) = _LOCAL.unpack(raw)
    if magic != LOCAL_MAGIC:
        anomalies.append(Anomaly(ZIP_HEADER_MISMATCH,
                                 f"no local header signature for {name!r} at offset {off}", name))
        return None
    local_name = f.read(fn_len)
    central_name = info.orig_filename.encode("utf-8" if info.flag_bits & 0x800 else "cp437",
                                             "surrogateescape")
    diffs: dict[str, JSONValue] = {}
    if local_name != central_name:
        diffs["local_name"] = local_name.decode("utf-8", "backslashreplace")
        diffs["central_name"] = info.orig_filename
    if (flags & 0x41) != (info.flag_bits & 0x41):
        diffs["local_flags"] = flags
        diffs["central_flags"] = info.flag_bits
    if method != info.compress_type:
        diffs["local_method"] = method
        diffs["central_method"] = info.compress_type
    if diffs:
        anomalies.append(Anomaly(ZIP_HEADER_MISMATCH,
                                 f"local and central headers of {name!r} disagree "
                                 f"({', '.join(sorted(diffs))}); readers pick different ones",
                                 name, diffs))
    data_offset = off + _LOCAL.size + fn_len + extra_len
    if data_offset + info.compress_size > size:
        anomalies.append(Anomaly(ZIP_HEADER_MISMATCH,
                                 f"data of {name!r} runs past the end of the file", name,
                                 {"data_offset": data_offset, "compress_size": info.compress_size,
                                  "file_size": size}))
        return None
    return int(data_offset)


def _layout(f: BinaryIO, size: int, members: list[Member]) -> list[Anomaly]:
    out: list[Anomaly] = []
    first = min((m.header_offset for m in members), default=0)
    if first > 0:
        out.append(Anomaly(ZIP_EXTRA_DATA,
                           f"{first} bytes before the first local header (a polyglot: loaders "
                           "that sniff the start see something else than a zip)", None,
                           {"prefix_bytes": first}))
    eocd = find_eocd(f, size)
    if eocd is not None:
        end = eocd[0] + _EOCD.size + eocd[1]
        if end < size:
            out.append(Anomaly(ZIP_EXTRA_DATA,
                               f"{size - end} bytes after the end of the central directory", None,
                               {"trailing_bytes": size - end}))
    return out


def iter_member(f: BinaryIO, m: Member, cap: int) -> Iterator[bytes]:
    """Uncompressed bytes of a member (stored or deflated), at most `cap` of them.

    Encryption flags are ignored on purpose: torch's reader ignores them too.
    """
    if m.data_offset is None:
        return
    f.seek(m.data_offset)
    left = m.compress_size
    produced = 0
    inflater = zlib.decompressobj(-15) if m.method == zipfile.ZIP_DEFLATED else None
    while left > 0 and produced < cap:
        chunk = f.read(min(_CHUNK, left))
        if not chunk:
            return
        left -= len(chunk)
        if inflater is not None:
            chunk = _inflate(inflater, chunk, cap - produced, m.name)
        produced += len(chunk)
        yield chunk


def _inflate(inflater: Any, chunk: bytes, room: int, name: str) -> bytes:
    """At most about `room` + 1 bytes of `chunk` inflated; a corrupt deflate stream is
    ZipUnreadable (zlib.error is no error of ours to let escape)."""
    try:
        out = inflater.decompress(chunk, room + 1)
        # Output held back by max_length stays in unconsumed_tail: drain it bounded.
        while inflater.unconsumed_tail and len(out) <= room:
            more = inflater.decompress(inflater.unconsumed_tail, room - len(out) + 1)
            if not more:
                break
            out += more
    except zlib.error as exc:
        raise ZipUnreadable(f"member {name[:200]}: deflate data is corrupt ({exc})") from None
    return bytes(out)


class MemberStream:
    """A read()-only stream over iter_member, for the pickle walker."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""

    def read(self, n: int = -1) -> bytes:
        out = bytearray(self._buf)
        self._buf = b""
        while n < 0 or len(out) < n:
            try:
                out += next(self._chunks)
            except StopIteration:
                break
        if n >= 0 and len(out) > n:
            self._buf = bytes(out[n:])
            del out[n:]
        return bytes(out)


def member_digest(f: BinaryIO, m: Member, cap: int) -> tuple[int, int, bool]:
    """(crc32, uncompressed size read, whether the cap stopped the read)."""
    crc = 0
    total = 0
    for chunk in iter_member(f, m, cap):
        crc = zlib.crc32(chunk, crc)
        total += len(chunk)
    return crc, total, total > cap


SUPPORTED_METHODS = (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED)
