"""Pickle analyzer: opcode walk of pickle streams, torch zip archives and nested containers.

Never unpickles. Each file is walked as a sequence of pickles (torch's legacy format stores five
in a row, then raw storage bytes); zip archives are read member by member with our own header
checks (zip_container). Findings are aggregated per file: each distinct global is reported once
with the number and places of its uses.
"""

from __future__ import annotations

import io
import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO, Protocol

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.limits import StaticLimits
from adapterscan.static.pickle import npy_header
from adapterscan.static.pickle import zip_container as zc
from adapterscan.static.pickle.allowlist import DataContainers, Verdict
from adapterscan.static.pickle.checks import (
    DANGEROUS_GLOBAL,
    DATA_CONTAINER,
    LIMIT_EXCEEDED,
    MALFORMED,
    NESTED_PICKLE,
    NPY_MALFORMED,
    SUMMARY,
    UNKNOWN_GLOBAL,
    UNLISTED_CALL,
    UNRESOLVED_GLOBAL,
    UNSCANNABLE_MEMBER,
    ZIP_BOMB,
    ZIP_CRC_MISMATCH,
    ZIP_ENCRYPTED,
    ZIP_EXTRA_DATA,
    ZIP_HEADER_MISMATCH,
    ZIP_MALFORMED,
)
from adapterscan.static.pickle.vm import (
    CALL_OPS,
    Budget,
    Event,
    Nested,
    Reader,
    Walk,
    looks_nested,
    walk_one,
)

_ARCHIVE_MAGIC = {b"7z\xbc\xaf\x27\x1c": "7z", b"\x1f\x8b": "gzip", b"Rar!\x1a\x07": "rar",
                  b"BZh": "bzip2", b"\xfd7zXZ\x00": "xz", b"\x28\xb5\x2f\xfd": "zstd"}
_MAX_PICKLES_PER_STREAM = 64
_MAX_INMEMORY_ZIP = 256 << 20  # a zip nested in a zip is read into memory up to this size
_CRC_FULL_LIMIT = 1 << 20  # stored non-pickle members above this are not CRC-checked
_BENIGN = frozenset({SUMMARY, DATA_CONTAINER})


_OTHER: dict[str, tuple[str, str]] = {
    "unresolved": (UNRESOLVED_GLOBAL, "unresolvable import or call"),
    "nested": (NESTED_PICKLE, "nested pickle"),
    "malformed": (MALFORMED, "malformed or truncated pickle (opcodes before the "
                  "error still run in a loader)"),
    "limit": (LIMIT_EXCEEDED, "analysis limit reached"),
}


def archive_kind(head: bytes) -> str | None:
    for magic, kind in _ARCHIVE_MAGIC.items():
        if head.startswith(magic):
            return kind
    if len(head) >= 262 and head[257:262] == b"ustar":
        return "tar"
    return None


def sniff_pickle(data: bytes) -> bool:
    """Whether these leading bytes are a pickle a loader would act on (for files of any name).

    Protocol 2+ starts with PROTO. Protocol 0/1 has no magic, so the bytes must walk cleanly
    through the symbolic machine to STOP, or import something before the unpickler would stop.
    """
    if len(data) >= 2 and data[0] == 0x80 and 2 <= data[1] <= 5:
        w, cut = _probe(data)
        return w.complete or w.globals_seen > 0 or (cut and sum(w.ops.values()) >= 3)
    if not looks_nested(data) and data[:1] not in (b"(", b"}", b"]", b")", b"N", b"I", b"S",
                                                   b"V", b"X", b"K", b"J", b"U", b"T"):
        return False
    w, cut = _probe(data)
    if w.complete or (cut and sum(w.ops.values()) >= 4):
        return True
    return w.globals_seen > 0 and all(
        e.kind != "global" or _identifier(e.qual) for e in w.events)


def _identifier(qual: str) -> bool:
    return all(part.isidentifier() for part in qual.split("."))


def _probe(data: bytes) -> tuple[Walk, bool]:
    """Walk the leading bytes; also say whether the walk only stopped at the end of them."""
    budget = Budget(10_000, 10_000, 0)
    reader = Reader(io.BytesIO(data), len(data))
    walk = walk_one(reader, "", budget, 0, None)
    cut = not walk.complete and reader.tell() >= len(data) and not any(
        e.kind == "malformed" and "stops here" in e.detail for e in walk.events)
    return walk, cut


def data_containers(emit: Emitter) -> DataContainers:
    """The curated data-container allowlist (AS447's params) plus a policy's additions."""
    def names(*keys: str) -> frozenset[str]:
        out: set[str] = set()
        for key in keys:
            value = emit.param(DATA_CONTAINER, key)
            if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise TypeError(f"AS447 param {key} must be a list of qualified names")
            out.update(str(v) for v in value)
        return frozenset(out)
    return DataContainers(classes=names("classes", "extra_classes"),
                          enums=names("enums", "extra_enums"),
                          version=str(emit.param(DATA_CONTAINER, "version")))


@dataclass
class _Ctx:
    rel: str
    emit: Emitter
    limits: StaticLimits
    budget: Budget
    containers: DataContainers
    events: list[Event] = field(default_factory=list)
    ops: Counter[str] = field(default_factory=Counter)
    pickles: int = 0
    protocols: set[int] = field(default_factory=set)
    members: int = 0
    crc_unchecked: int = 0
    npy_arrays: int = 0
    npy_object_arrays: int = 0
    skipped: list[str] = field(default_factory=list)
    flagged: int = 0  # findings other than the summary and plain data containers

    def anomaly(self, check: str, message: str, key: str | None = None,
                evidence: dict[str, JSONValue] | None = None) -> None:
        if check not in _BENIGN:
            self.flagged += 1
        self.emit.emit(check, message, file=self.rel, key=key, evidence=evidence or {})

    def skip(self, reason: str) -> None:
        self.skipped.append(reason)
        self.emit.skip(self.rel, reason)


def analyze_pickle_file(path: Path, rel: str, emit: Emitter, limits: StaticLimits) -> bool:
    """Walk one file and report it; True when the walk proved that it holds only allowlisted
    globals (tensors, storages, plain containers, listed data containers), completely read."""
    ctx = _Ctx(rel, emit, limits, Budget(limits.max_pickle_opcodes, limits.max_pickle_memo,
                                         limits.max_nesting), data_containers(emit))
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK",
                                                                                0))
    except OSError as exc:
        ctx.skip(f"cannot open: {exc.strerror}")
        return False
    with os.fdopen(fd, "rb") as f:
        st = os.fstat(f.fileno())
        if not stat.S_ISREG(st.st_mode):
            ctx.skip("not a regular file")
            return False
        _analyze_container(ctx, f, st.st_size, "", 0)
    _flush(ctx)
    return ctx.pickles > 0 and ctx.flagged == 0 and not ctx.skipped


def _analyze_container(ctx: _Ctx, f: BinaryIO, size: int, where: str, depth: int) -> None:
    f.seek(0)
    head = f.read(512)
    label = where or "file"
    if head.startswith((zc.LOCAL_MAGIC, zc.EOCD_MAGIC)):
        _analyze_zip(ctx, f, size, where, depth)
        return
    if head.startswith(npy_header.MAGIC):
        f.seek(0)
        _analyze_npy(ctx, f, size, where, depth)
        return
    kind = archive_kind(head)
    if kind is not None:
        ctx.anomaly(UNSCANNABLE_MEMBER, f"{label} is a {kind} container: its content "
                    "cannot be scanned", key=where or None, evidence={"format": kind})
        ctx.skip(f"{where or 'file'}: {kind} container not scanned")
        return
    f.seek(0)
    cap = ctx.limits.max_pickle_bytes
    _walk_stream(ctx, Reader(f, min(size, cap), hard=size > cap), where, depth,
                 opportunistic=False)
    # A pickle followed by a zip is a polyglot: torch.load and zip readers see different files.
    if size > 22 and zc.find_eocd(f, size) is not None:
        ctx.anomaly(ZIP_EXTRA_DATA, f"{label} starts as a pickle and ends as a zip "
                    "archive (polyglot)", key=where or None, evidence={"size": size})
        _analyze_zip(ctx, f, size, where, depth)


def _walk_stream(ctx: _Ctx, reader: Reader, where: str, depth: int,
                 opportunistic: bool) -> bool:
    """Walk successive pickles; True when at least one was accepted as a pickle."""
    accepted = False
    for index in range(_MAX_PICKLES_PER_STREAM):
        start = reader.tell()
        name = f"{where}#{index}" if index else where
        walk = walk_one(reader, name, ctx.budget, depth, _nested_walker(ctx), ctx.containers)
        keep = walk.complete or walk.globals_seen > 0 or not opportunistic
        if index > 0 and not walk.complete and walk.globals_seen == 0:
            keep = False  # trailing raw data (legacy storages) that happens to parse a little
        if keep:
            accepted = True
            _commit(ctx, walk)
        if not walk.complete or any(e.kind == "limit" for e in walk.events):
            break
        nxt = reader.peek(2)
        if not (len(nxt) == 2 and nxt[0] == 0x80 and 2 <= nxt[1] <= 5):
            break
        if reader.tell() == start:
            break
    return accepted


def _nested_walker(ctx: _Ctx) -> Nested:
    def walk(data: bytes, where: str, depth: int) -> Walk | None:
        reader = Reader(io.BytesIO(data), len(data))
        w = walk_one(reader, where, ctx.budget, depth, _nested_walker(ctx), ctx.containers)
        return w if (w.complete or w.globals_seen > 0) else None
    return walk


def _commit(ctx: _Ctx, walk: Walk) -> None:
    ctx.pickles += 1
    ctx.protocols.add(walk.protocol)
    ctx.ops.update(walk.ops)
    ctx.events.extend(walk.events)


def _analyze_zip(ctx: _Ctx, f: BinaryIO, size: int, where: str, depth: int) -> None:
    label = where or "file"
    try:
        members, anomalies = zc.open_zip(f, size, ctx.limits.max_zip_members)
    except zc.ZipUnreadable as exc:
        ctx.anomaly(ZIP_MALFORMED, f"{label}: zip archive cannot be parsed ({exc}); "
                    "other readers may still load it", key=where or None,
                    evidence={"error": str(exc)})
        ctx.skip(f"{label}: unreadable zip archive")
        return
    for a in anomalies:
        key = f"{where}/{a.member}" if where and a.member else (a.member or where or None)
        ctx.anomaly(a.check, a.message, key=key, evidence=a.evidence)
    if len(members) >= ctx.limits.max_zip_members:
        ctx.anomaly(LIMIT_EXCEEDED, f"{label}: more than "
                    f"{ctx.limits.max_zip_members} zip members; the rest were not scanned",
                    key=where or None)
        ctx.skip(f"{label}: zip member limit")
    prefix = min((m.header_offset for m in members), default=0)
    if prefix > 0:
        f.seek(0)
        if sniff_pickle(f.read(min(prefix, ctx.limits.max_sniff_bytes))):
            f.seek(0)
            _walk_stream(ctx, Reader(f, prefix), f"{where}<prefix>", depth, opportunistic=False)
    for m in members:
        if not m.is_dir:
            ctx.members += 1
            _analyze_member(ctx, f, m, f"{where}/{m.name}" if where else m.name, depth)
    files = [m.name for m in members if not m.is_dir]
    if depth == 0 and not any(n.endswith((".pkl", ".pickle", ".npy")) for n in files):
        # torch archives always hold */data.pkl and npz archives .npy members: anything else
        # is an archive we cannot judge.
        ctx.anomaly(UNSCANNABLE_MEMBER, f"{label} is a zip archive with no pickle in "
                    "it: not a torch checkpoint, and its members are not model data",
                    key=where or None, evidence={"members": list[JSONValue](files[:20])})
        ctx.skip(f"{label}: zip archive holding no pickle ({len(files)} members) not analysed")


def _analyze_member(ctx: _Ctx, f: BinaryIO, m: zc.Member, key: str, depth: int) -> None:
    if m.data_offset is None:
        ctx.skip(f"{key}: member data not locatable")
        return
    if m.encrypted:
        ctx.anomaly(ZIP_ENCRYPTED, f"member {key} carries the encryption flag "
                    f"(0x{m.flag_bits:04x}); zip readers refuse it, torch ignores the flag",
                    key=key, evidence={"flag_bits": m.flag_bits})
    if m.method not in zc.SUPPORTED_METHODS:
        ctx.anomaly(ZIP_MALFORMED, f"member {key} uses compression method {m.method}",
                    key=key, evidence={"method": m.method})
        ctx.skip(f"{key}: unsupported compression method {m.method}")
        return
    max_bytes = int(ctx.emit.num(ZIP_BOMB, "max_member_bytes"))
    max_ratio = ctx.emit.num(ZIP_BOMB, "max_ratio")
    ratio = m.file_size / max(m.compress_size, 1)
    if m.file_size > max_bytes or (m.method != 0 and ratio > max_ratio and m.file_size > 1 << 20):
        ctx.anomaly(ZIP_BOMB, f"member {key} declares {m.file_size} bytes from "
                    f"{m.compress_size} (ratio {ratio:.0f})", key=key,
                    evidence={"file_size": m.file_size, "compress_size": m.compress_size,
                              "ratio": round(ratio, 1)})
        ctx.skip(f"{key}: not decompressed (zip bomb limits)")
        return
    try:
        _member_content(ctx, f, m, key, depth, max_bytes)
    except zc.ZipUnreadable as exc:  # a deflate stream that does not inflate: no reader loads it
        ctx.anomaly(ZIP_MALFORMED, f"{exc}; zip readers refuse it", key=key,
                    evidence={"error": str(exc)})
        ctx.skip(f"{key}: member data corrupt")


def _member_content(ctx: _Ctx, f: BinaryIO, m: zc.Member, key: str, depth: int,
                    max_bytes: int) -> None:
    """What a member holds: its CRC and size checked, then walked as what its head says."""
    lim = ctx.limits
    is_pkl = m.name.endswith((".pkl", ".pickle"))
    head = b"".join(_first(zc.iter_member(f, m, lim.max_sniff_bytes), lim.max_sniff_bytes))
    walked = is_pkl or looks_nested(head) or sniff_pickle(head) or head.startswith(
        (zc.LOCAL_MAGIC, zc.EOCD_MAGIC, npy_header.MAGIC))
    if m.method == 0 and not walked and m.file_size > _CRC_FULL_LIMIT:
        # Large stored raw data (tensor storages): torch never checks its CRC and it is not
        # executed; hashing it would double the scan time. Its size is still checked.
        ctx.crc_unchecked += 1
        if m.compress_size != m.file_size:
            ctx.anomaly(ZIP_HEADER_MISMATCH, f"stored member {key} declares "
                        f"{m.file_size} bytes but occupies {m.compress_size}", key=key,
                        evidence={"file_size": m.file_size, "compress_size": m.compress_size})
        return
    crc, total, capped = zc.member_digest(f, m, max_bytes)
    if capped:
        ctx.anomaly(ZIP_BOMB, f"member {key} inflates past {max_bytes} bytes",
                    key=key, evidence={"declared": m.file_size, "cap": max_bytes})
        ctx.skip(f"{key}: not fully decompressed (zip bomb limits)")
        return
    if total != m.file_size:
        ctx.anomaly(ZIP_HEADER_MISMATCH, f"member {key} holds {total} bytes, its header "
                    f"says {m.file_size}", key=key,
                    evidence={"actual": total, "declared": m.file_size})
    elif crc != m.crc:
        ctx.anomaly(ZIP_CRC_MISMATCH, f"member {key} has CRC-32 {crc:08x}, the "
                    f"directory says {m.crc:08x}; strict readers refuse it, torch does not",
                    key=key, evidence={"actual": f"{crc:08x}", "declared": f"{m.crc:08x}"})
    if head.startswith((zc.LOCAL_MAGIC, zc.EOCD_MAGIC)):
        _nested_zip(ctx, f, m, key, depth)
    elif head.startswith(npy_header.MAGIC):
        _analyze_npy(ctx, zc.MemberStream(zc.iter_member(f, m, max_bytes)), total, key, depth)
    elif archive_kind(head):
        kind = archive_kind(head)
        ctx.anomaly(UNSCANNABLE_MEMBER, f"member {key} is a {kind} container; its "
                    "content cannot be scanned", key=key, evidence={"format": kind})
        ctx.skip(f"{key}: {kind} container not scanned")
    elif m.encrypted and is_pkl and not sniff_pickle(head):
        ctx.skip(f"{key}: encrypted member not readable")
    elif is_pkl or (looks_nested(head) or sniff_pickle(head)):
        reader = Reader(zc.MemberStream(zc.iter_member(f, m, max_bytes)),
                        min(total, lim.max_pickle_bytes), hard=total > lim.max_pickle_bytes)
        _walk_stream(ctx, reader, key, depth, opportunistic=not is_pkl)


def _analyze_npy(ctx: _Ctx, raw: _Readable, size: int, where: str, depth: int) -> None:
    """A NumPy array: an object array's pickle is walked like any pickle; a numeric array
    must hold exactly the bytes its header fixes."""
    label = where or "file"
    ctx.npy_arrays += 1
    try:
        hdr = npy_header.read_header(raw.read)
    except npy_header.NpyError as exc:
        ctx.anomaly(NPY_MALFORMED, f"{label}: NumPy header rejected: {exc}",
                    key=where or None, evidence={"error": str(exc)})
        return
    left = size - hdr.data_offset
    ev: dict[str, JSONValue] = {"dtype": hdr.dtype, "shape": list[JSONValue](hdr.shape),
                                "version": f"{hdr.version[0]}.{hdr.version[1]}"}
    if hdr.has_object:
        # np.load(allow_pickle=True) unpickles everything after the header.
        ctx.npy_object_arrays += 1
        cap = ctx.limits.max_pickle_bytes
        _walk_stream(ctx, Reader(raw, min(left, cap), hard=left > cap), f"{where}<npy>",
                     depth, opportunistic=False)
    elif left != hdr.data_bytes:
        ctx.anomaly(NPY_MALFORMED, f"{label}: NumPy data holds {left} bytes, its "
                    f"header (shape {hdr.shape}, {hdr.dtype}) fixes {hdr.data_bytes}",
                    key=where or None, evidence={**ev, "data_bytes": left,
                                                 "expected": hdr.data_bytes})


class _Readable(Protocol):
    def read(self, n: int = -1, /) -> bytes: ...


def _first(chunks: Iterator[bytes], n: int) -> list[bytes]:
    out: list[bytes] = []
    got = 0
    for c in chunks:
        out.append(c[: n - got])
        got += len(out[-1])
        if got >= n:
            break
    return out


def _nested_zip(ctx: _Ctx, f: BinaryIO, m: zc.Member, key: str, depth: int) -> None:
    if depth + 1 > ctx.limits.max_nesting:
        ctx.anomaly(LIMIT_EXCEEDED, f"{key}: containers nested deeper than "
                    f"{ctx.limits.max_nesting}", key=key)
        ctx.skip(f"{key}: nesting limit")
        return
    if m.file_size > _MAX_INMEMORY_ZIP:
        ctx.anomaly(LIMIT_EXCEEDED, f"{key}: nested zip of {m.file_size} bytes is "
                    "too large to open", key=key)
        ctx.skip(f"{key}: nested zip too large")
        return
    data = b"".join(zc.iter_member(f, m, _MAX_INMEMORY_ZIP))
    _analyze_container(ctx, io.BytesIO(data), len(data), key, depth + 1)


def _flush(ctx: _Ctx) -> None:
    """Emit aggregated findings: one per dangerous global, one for the callables outside the
    allowlist that the pickle calls, one for those it only imports, one for data containers,
    one per other event, then a summary."""
    dangerous: dict[str, list[str]] = {}
    imported: dict[str, list[str]] = {}
    called: dict[str, list[tuple[str, str]]] = {}
    containers: dict[str, list[str]] = {}
    verdicts: dict[str, str] = {}
    for e in ctx.events:
        if e.kind == "global" and e.verdict is not None:
            verdicts[e.qual] = e.verdict.value
            if e.verdict is Verdict.DANGEROUS:
                dangerous.setdefault(e.qual, []).append(e.where)
            elif e.verdict is Verdict.UNKNOWN:
                imported.setdefault(e.qual, []).append(e.where)
        elif e.kind == "call":
            called.setdefault(e.qual, []).append((e.where, e.detail))
        elif e.kind == "container":
            containers.setdefault(e.qual, []).append(e.where)
        elif e.kind == "conditional":
            called.setdefault(e.qual, []).append((e.where, e.detail))
        elif e.kind in _OTHER:
            check, msg = _OTHER[e.kind]
            ctx.anomaly(check, f"{msg} at {e.where or 'start'}: {e.detail}",
                        key=e.where or None, evidence={"where": e.where, "detail": e.detail})
            if e.kind == "limit":
                ctx.skip(f"{e.where}: {e.detail}")
    for qual, wheres in sorted(dangerous.items()):
        ctx.anomaly(DANGEROUS_GLOBAL, f"imports {qual} (dangerous), {len(wheres)} "
                    "time(s)", key=qual,
                    evidence={"global": qual, "count": len(wheres),
                              "at": list[JSONValue](wheres[:10])})
    if called:
        names = sorted(called)
        shown = ", ".join(f"{q} ({called[q][0][1]})" for q in names[:5])
        more = f" and {len(names) - 5} more" if len(names) > 5 else ""
        ctx.anomaly(UNLISTED_CALL, f"calls {len(names)} callable(s) outside the "
                    f"allowlist at load time: {shown}{more}",
                    evidence={"calls": {q: {"count": len(called[q]), "first_at": called[q][0][0],
                                            "how": list[JSONValue](
                                                sorted({d for _, d in called[q]})[:5])}
                                        for q in names[:100]}})
    only_imported = sorted(set(imported) - set(called) - set(containers))
    if only_imported:
        shown = ", ".join(only_imported[:5])
        more = f" and {len(only_imported) - 5} more" if len(only_imported) > 5 else ""
        ctx.anomaly(UNKNOWN_GLOBAL, f"imports {len(only_imported)} global(s) not on "
                    f"the allowlist without calling them: {shown}{more}",
                    evidence={"globals": {q: len(imported[q]) for q in only_imported[:100]},
                              "first_at": {q: imported[q][0] for q in only_imported[:100]}})
    names = sorted(set(containers) - set(called))  # a misused container is reported as a call
    if names:
        ctx.anomaly(DATA_CONTAINER, f"rebuilds {len(names)} known data-container "
                    f"class(es) as plain data: {', '.join(names[:5])}"
                    + (f" and {len(names) - 5} more" if len(names) > 5 else ""),
                    evidence={"classes": {q: len(containers[q]) for q in names[:100]},
                              "allowlist_version": ctx.containers.version})
    calls: dict[str, JSONValue] = {op: ctx.ops[op] for op in sorted(CALL_OPS) if ctx.ops[op]}
    ctx.anomaly(SUMMARY, f"{ctx.pickles} pickle(s), {sum(ctx.ops.values())} opcodes, "
                f"{len(verdicts)} distinct global(s)",
                evidence={"pickles": ctx.pickles, "opcodes": sum(ctx.ops.values()),
                          "protocols": list[JSONValue](sorted(ctx.protocols)),
                          "calls": calls, "zip_members": ctx.members,
                          "zip_members_crc_unchecked": ctx.crc_unchecked,
                          "npy_arrays": ctx.npy_arrays,
                          "npy_object_arrays": ctx.npy_object_arrays,
                          "globals": dict[str, JSONValue](sorted(verdicts.items())),
                          "incomplete": list[JSONValue](ctx.skipped[:10])})
