"""Header triage: read a remote safetensors header with two Range requests and judge it first.

The first 8 bytes give the header length N; only when N is within the cap and the file can hold it
do we read the 8+N prefix and hand it to our safetensors parser. A hostile header therefore costs
8 bytes (impossible length) or at most 8+cap bytes (rejected JSON), never its body.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from dataclasses import dataclass

from adapterscan.emit import Emitter
from adapterscan.fetch.checks import HEADER_TRIAGE_REJECTED
from adapterscan.findings import JSONValue
from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.limits import StaticLimits

ReadRange = Callable[[int, int], bytes]  # (start, length) -> at most length bytes


@dataclass(frozen=True)
class TriageResult:
    path: str
    ok: bool
    bytes_read: int
    header_len: int | None = None


def _header_length(first8: bytes) -> int:
    try:
        from adapterscan.static.safetensors.header import header_length

        return int(header_length(first8))
    except (ImportError, NotImplementedError):
        return int(struct.unpack("<Q", first8)[0])


def _parse(prefix: bytes, size: int, rel: str, emit: Emitter,
           limits: StaticLimits) -> tuple[bool, str]:
    """(passed, reason) from the static stage's parser (a minimal check if it is missing).

    A header that passes is parsed again from disk by the static stage after the download, so
    its findings are collected on a scratch emitter here and only replayed on rejection (the
    parse is deterministic and the prefix is in memory): no finding is reported twice.
    """
    try:
        from adapterscan.static.safetensors.header import parse_header_bytes

        header = parse_header_bytes(prefix, size, rel, Emitter(emit.ruleset), limits)
        if isinstance(header, SafetensorsHeader):
            return True, ""
        parse_header_bytes(prefix, size, rel, emit, limits)
        return False, "the safetensors header parser rejected the header (see its findings)"
    except (ImportError, NotImplementedError):
        return _fallback_check(prefix, size)
    except Exception as exc:  # a parser bug must reject (fail closed), never pass the header
        return False, f"the safetensors header parser failed: {type(exc).__name__}"


def _fallback_check(prefix: bytes, size: int) -> tuple[bool, str]:
    n = len(prefix) - 8
    try:
        doc = json.loads(prefix[8:])
    except (UnicodeDecodeError, ValueError, RecursionError):
        return False, "header is not valid JSON"
    if not isinstance(doc, dict):
        return False, "header is not a JSON object"
    data_len = size - 8 - n
    for name, spec in doc.items():
        if name == "__metadata__":
            continue
        offs = spec.get("data_offsets") if isinstance(spec, dict) else None
        if (not isinstance(offs, list) or len(offs) != 2
                or not all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
                or not 0 <= offs[0] <= offs[1] <= data_len):
            return False, f"tensor {name[:80]!r} has data_offsets outside the data section"
    return True, ""


def triage_header(read: ReadRange, rel: str, size: int, emit: Emitter,
                  limits: StaticLimits) -> TriageResult:
    first8 = read(0, 8) if size >= 8 else b""
    read_total = len(first8)
    evidence: dict[str, JSONValue] = {"file_size": size}
    if len(first8) < 8:
        reason = "file is shorter than the 8-byte header length"
        return _reject(rel, emit, reason, evidence, read_total, None)
    n = _header_length(first8)
    evidence["declared_header_len"] = n
    if n > limits.max_header_bytes or 8 + n > size:
        why = ("larger than the file" if 8 + n > size
               else f"over the {limits.max_header_bytes}-byte header cap")
        # Let the parser record its own findings on what it can see (the length alone).
        _parse(first8, size, rel, emit, limits)
        return _reject(rel, emit, f"declared header length {n} is {why}", evidence,
                       read_total, n)
    body = read(8, n)
    read_total += len(body)
    if len(body) != n:
        reason = f"server returned {len(body)} of {n} header bytes"
        return _reject(rel, emit, reason, evidence, read_total, n)
    passed, reason = _parse(first8 + body, size, rel, emit, limits)
    if not passed:
        return _reject(rel, emit, reason, evidence, read_total, n)
    return TriageResult(rel, True, read_total, n)


def _reject(rel: str, emit: Emitter, reason: str, evidence: dict[str, JSONValue],
            read_total: int, n: int | None) -> TriageResult:
    evidence.update(reason=reason, bytes_read=read_total, body_downloaded=False)
    emit.emit(HEADER_TRIAGE_REJECTED,
              f"{rel}: header rejected before download ({reason}); the body was not fetched",
              file=rel, evidence=evidence)
    return TriageResult(rel, False, read_total, n)
