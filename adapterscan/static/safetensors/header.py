"""Our own safetensors header parser: a bounded read, stdlib json, and strict checks.

Nothing here hands a file to the safetensors (Rust) loader: a header is trusted only after every
check below passed, and only then is a SafetensorsHeader returned.

Checks the reference loader (safetensors 0.8, tensor.rs) does, which we repeat:
  file >= 8 bytes (AS201); header length N <= 100,000,000 (AS202); 8 + N <= file size (AS203);
  UTF-8 (AS204) JSON (AS205); header is an object of {dtype, shape, data_offsets} (AS207);
  `__metadata__` maps str -> str (AS209); dtype in its enum (AS210); shape of non-negative ints
  (AS211); data_offsets a pair begin <= end (AS212); sorted by offset they start at 0 and are
  contiguous (AS213) inside the data (AS214); shape x dtype bits == span, checked (AS215); last end
  + 8 + N == file size, no trailing bytes (AS216).
Extra checks the reference loader does not do:
  our header cap for adapters (AS229, StaticLimits.max_header_bytes); NaN/Infinity constants and
  lone surrogates that Python's json accepts and serde rejects (AS205); duplicate keys at every
  level, a parser differential (AS206); unknown tensor-entry fields, which it ignores (AS208);
  zero tensors (AS227); tensor count (AS228); writer oddities: offset order, padding, non-canonical
  JSON (AS217-AS219, info); tensor names (AS220-AS223); metadata size and content (AS224-AS226).
"""

from __future__ import annotations

import json
import os
import re
import unicodedata
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.layout import SafetensorsHeader, TensorInfo
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors import checks as C

REFERENCE_MAX_HEADER = 100_000_000  # safetensors' N_LEN limit
U64_MAX = 2**64 - 1
# Bits per element, in the reference enum's order (that order also drives its writer's layout).
DTYPE_BITS: Mapping[str, int] = {
    "BOOL": 8, "F4": 4, "F6_E2M3": 6, "F6_E3M2": 6, "U8": 8, "I8": 8, "F8_E5M2": 8,
    "F8_E4M3": 8, "F8_E8M0": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32,
    "U32": 32, "F32": 32, "C64": 64, "F64": 64, "I64": 64, "U64": 64,
}
_DTYPE_RANK = {name: i for i, name in enumerate(DTYPE_BITS)}
ENTRY_FIELDS = frozenset({"dtype", "shape", "data_offsets"})
METADATA_KEY = "__metadata__"
_MAX_SHOWN = 200  # characters of a hostile string quoted in a message or location
# Signatures sniffed at the start of trailing bytes (and, in safetensors/data.py, of tensors).
SNIFF_MAGIC: tuple[tuple[str, bytes], ...] = (
    ("zip", b"PK\x03\x04"), ("zip", b"PK\x05\x06"), ("elf", b"\x7fELF"), ("gzip", b"\x1f\x8b"),
    ("pe", b"MZ"), ("shebang", b"#!"), ("7z", b"7z\xbc\xaf\x27\x1c"), ("pickle", b"\x80\x02"),
    ("pickle", b"\x80\x03"), ("pickle", b"\x80\x04"), ("pickle", b"\x80\x05"),
)
ReadAt = Callable[[int, int], bytes]


def sniff(data: bytes) -> str | None:
    """Name of the file signature `data` starts with, if any."""
    for name, magic in SNIFF_MAGIC:
        if data.startswith(magic):
            return name
    return None


def shown(text: str) -> str:
    return text if len(text) <= _MAX_SHOWN else text[:_MAX_SHOWN] + "..."


def header_length(first8: bytes) -> int:
    """The header length N declared by the first 8 bytes (u64 little-endian)."""
    if len(first8) < 8:
        raise ValueError("need the first 8 bytes of the file")
    return int.from_bytes(first8[:8], "little")


def read_header_file(path: Path, rel: str, emit: Emitter,
                     limits: StaticLimits) -> SafetensorsHeader | None:
    """Read at most 8 + limits.max_header_bytes bytes of `path` and parse them."""
    with open(path, "rb", buffering=0) as fh:
        size = os.fstat(fh.fileno()).st_size
        prefix = fh.read(8)
        if len(prefix) == 8:
            n = header_length(prefix)
            if n <= min(limits.max_header_bytes, REFERENCE_MAX_HEADER) and 8 + n <= size:
                prefix += _read_exact(fh, n)

        def read_at(offset: int, length: int) -> bytes:
            fh.seek(offset)
            return fh.read(length)

        return parse_header_bytes(prefix, size, rel, emit, limits, read_at=read_at)


def _read_exact(fh: Any, n: int) -> bytes:
    parts: list[bytes] = []
    left = n
    while left > 0:
        part = fh.read(left)
        if not part:  # file shrank under us: parse_header_bytes reports the short prefix
            break
        parts.append(part)
        left -= len(part)
    return b"".join(parts)


def parse_header_bytes(prefix: bytes, file_size: int, rel: str, emit: Emitter,
                       limits: StaticLimits, *,
                       read_at: ReadAt | None = None) -> SafetensorsHeader | None:
    """Parse a header from the first bytes of a file of `file_size` bytes.

    `prefix` must hold at least 8 + N bytes when the file has them. `read_at(offset, length)`,
    when given, is used to sniff what trailing bytes look like. Returns a header only when every
    structural check passed; otherwise emits findings (and a skip when we declined to parse).
    """
    if file_size < 8:
        emit.emit(C.TRUNCATED, f"{rel}: {file_size} bytes, shorter than the 8-byte header length",
                  file=rel, evidence={"file_size": file_size, "required": 8})
        return None
    if len(prefix) < 8:
        emit.skip(rel, "the first 8 bytes of the safetensors file could not be read")
        return None
    n = header_length(prefix)
    if n > REFERENCE_MAX_HEADER:
        emit.emit(C.HEADER_TOO_LARGE,
                  f"{rel}: header length {n} exceeds the reference loader's limit "
                  f"{REFERENCE_MAX_HEADER}", file=rel, offset=0,
                  evidence={"header_len": n, "limit": REFERENCE_MAX_HEADER,
                            "limit_kind": "reference", "file_size": file_size})
        return None
    if 8 + n > file_size:
        emit.emit(C.HEADER_PAST_EOF,
                  f"{rel}: header length {n} runs past the end of the {file_size}-byte file",
                  file=rel, offset=0, evidence={"header_len": n, "file_size": file_size,
                                                "missing_bytes": 8 + n - file_size})
        return None
    if n > limits.max_header_bytes:
        emit.emit(C.HEADER_OVER_CAP,
                  f"{rel}: header of {n} bytes exceeds the scanner's cap "
                  f"{limits.max_header_bytes} for adapter files (reference limit "
                  f"{REFERENCE_MAX_HEADER}); not parsed", file=rel, offset=0,
                  evidence={"header_len": n, "cap": limits.max_header_bytes,
                            "limit_kind": "scanner_cap"})
        emit.skip(rel, f"safetensors header of {n} bytes is over the scanner cap")
        return None
    if len(prefix) < 8 + n:
        emit.skip(rel, f"only {len(prefix) - 8} of the {n} header bytes could be read")
        return None
    raw = bytes(prefix[8:8 + n])
    return _parse_json(raw, n, file_size, rel, emit, limits, read_at)


class _NonStandard(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NonStandard(f"non-standard constant {name}")


@dataclass
class _Dups:
    found: list[tuple[str, int, list[str]]] = field(default_factory=list)

    def hook(self, pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        counts: dict[str, int] = {}
        for key, value in pairs:
            if key in out:
                counts[key] = counts.get(key, 1) + 1
            out[key] = value  # Python's own behaviour (last wins), reported below
        for key, count in counts.items():
            self.found.append((key, count, [k for k, _ in pairs[:8]]))
        return out


_SURROGATE = re.compile("[\ud800-\udfff]")


def _parse_json(raw: bytes, n: int, file_size: int, rel: str, emit: Emitter,
                limits: StaticLimits, read_at: ReadAt | None) -> SafetensorsHeader | None:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        emit.emit(C.HEADER_NOT_UTF8, f"{rel}: header is not UTF-8 ({exc.reason} at header byte "
                  f"{exc.start})", file=rel, offset=8 + exc.start,
                  evidence={"offset": 8 + exc.start, "bytes": raw[exc.start:exc.start + 4].hex(),
                            "header_len": n})
        return None
    dups = _Dups()
    try:
        obj = json.loads(text, object_pairs_hook=dups.hook, parse_constant=_reject_constant)
    except RecursionError:
        _invalid_json(rel, emit, n, "nesting too deep to parse", None)
        return None
    except json.JSONDecodeError as exc:
        _invalid_json(rel, emit, n, exc.msg, exc.pos)
        return None
    except ValueError as exc:  # _NonStandard, or an integer with too many digits
        _invalid_json(rel, emit, n, str(exc), None)
        return None
    if _SURROGATE.search(text) or ("\\u" in text and _has_surrogate(obj)):
        _invalid_json(rel, emit, n, "lone UTF-16 surrogate escape", None)
        return None
    ok = True
    for key, count, context in dups.found[:50]:
        ok = False
        emit.emit(C.DUPLICATE_KEY, f"{rel}: key {shown(key)!r} appears {count} times in one "
                  "JSON object (Python keeps the last, other parsers the first or fail)",
                  file=rel, key=shown(key),
                  evidence={"key": shown(key), "occurrences": count,
                            "object_keys": [shown(k) for k in context]})
    if not isinstance(obj, dict):
        emit.emit(C.BAD_STRUCTURE, f"{rel}: header is a JSON {_jtype(obj)}, not an object",
                  file=rel, evidence={"found": _jtype(obj)})
        return None
    count = sum(1 for k in obj if k != METADATA_KEY)
    if count > limits.max_tensors:
        emit.emit(C.TOO_MANY_TENSORS, f"{rel}: {count} tensors, over the scanner's limit "
                  f"{limits.max_tensors}", file=rel,
                  evidence={"tensors": count, "limit": limits.max_tensors})
        emit.skip(rel, f"{count} tensors is over the limit {limits.max_tensors}")
        return None
    metadata, meta_ok = _metadata(obj.get(METADATA_KEY), rel, emit)
    ok = ok and meta_ok
    tensors: list[TensorInfo] = []
    max_name = int(emit.num(C.NAME_TOO_LONG, "max_bytes"))
    for name, entry in obj.items():
        if name == METADATA_KEY:
            continue
        _check_name(name, rel, emit, max_name)
        info = _entry(name, entry, rel, emit)
        if info is None:
            ok = False
        else:
            tensors.append(info)
    if count == 0:
        emit.emit(C.NO_TENSORS, f"{rel}: the header declares no tensors", file=rel,
                  evidence={"tensors": 0, "metadata_keys": len(metadata)})
    data_len = file_size - 8 - n
    if ok:
        ok = _layout(tensors, data_len, rel, emit, read_at, 8 + n)
    _oddities(text, obj, tensors, rel, emit, not dups.found)
    if not ok:
        return None
    ordered = tuple(sorted(tensors, key=lambda t: (t.begin, t.end)))
    return SafetensorsHeader(path=rel, file_size=file_size, header_len=n, metadata=metadata,
                             tensors=ordered)


def _has_surrogate(obj: Any) -> bool:
    stack = [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            if _SURROGATE.search(item):
                return True
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return False


def _invalid_json(rel: str, emit: Emitter, n: int, reason: str,
                  pos: int | None) -> None:
    offset = None if pos is None else 8 + pos
    emit.emit(C.HEADER_INVALID_JSON, f"{rel}: header is not valid JSON: {reason}", file=rel,
              offset=offset, evidence={"error": reason, "offset": offset, "header_len": n})


def _jtype(value: object) -> str:
    if isinstance(value, dict):
        return "object"
    if isinstance(value, list):
        return "array"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "null"


def _metadata(meta: Any, rel: str, emit: Emitter) -> tuple[dict[str, str], bool]:
    if meta is None:
        return {}, True
    if not isinstance(meta, dict):
        emit.emit(C.BAD_METADATA, f"{rel}: __metadata__ is a JSON {_jtype(meta)}, not an "
                  "object of strings", file=rel, key=METADATA_KEY,
                  evidence={"found": _jtype(meta)})
        return {}, False
    ok = True
    out: dict[str, str] = {}
    for key, value in meta.items():
        if isinstance(value, str):
            out[key] = value
        else:
            ok = False
            emit.emit(C.BAD_METADATA, f"{rel}: __metadata__[{shown(key)!r}] is a JSON "
                      f"{_jtype(value)}, not a string", file=rel, key=shown(key),
                      evidence={"key": shown(key), "found": _jtype(value)})
    _metadata_content(out, rel, emit)
    return out, ok


_NAME_BAD_CATEGORIES = frozenset({"Cc", "Cf", "Cs"})


def _check_name(name: str, rel: str, emit: Emitter, max_bytes: int) -> None:
    tensor = shown(name)
    found: list[JSONValue] = [s for s in ("/", "\\", "..") if s in name]
    if found:
        emit.emit(C.NAME_PATH, f"{rel}: tensor name {tensor!r} contains path syntax "
                  f"{' '.join(map(str, found))}", file=rel, tensor=tensor,
                  evidence={"found": found})
    odd = [] if name.isprintable() else [c for c in name
                                         if unicodedata.category(c) in _NAME_BAD_CATEGORIES]
    if odd:
        cps: list[JSONValue] = [f"U+{ord(c):04X}" for c in list(dict.fromkeys(odd))[:10]]
        emit.emit(C.NAME_CONTROL, f"{rel}: tensor name {tensor!r} contains {len(odd)} control, "
                  f"format or surrogate characters ({', '.join(map(str, cps))})", file=rel,
                  tensor=tensor, evidence={"count": len(odd), "code_points": cps})
    if not name.isascii():
        wide = [c for c in dict.fromkeys(name) if ord(c) > 127][:10]
        names: list[JSONValue] = [f"U+{ord(c):04X} {unicodedata.name(c, '?')}" for c in wide]
        emit.emit(C.NAME_NON_ASCII, f"{rel}: tensor name {tensor!r} contains non-ASCII "
                  f"characters ({', '.join(map(str, names))})", file=rel, tensor=tensor,
                  evidence={"code_points": names})
    length = len(name.encode("utf-8", "surrogatepass"))
    if length > max_bytes:
        emit.emit(C.NAME_TOO_LONG, f"{rel}: tensor name of {length} bytes (limit {max_bytes})",
                  file=rel, tensor=tensor, evidence={"length": length, "max_bytes": max_bytes})


def _is_uint(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= U64_MAX


def _entry(name: str, entry: Any, rel: str, emit: Emitter) -> TensorInfo | None:
    tensor = shown(name)
    if not isinstance(entry, dict):
        emit.emit(C.BAD_STRUCTURE, f"{rel}: entry for tensor {tensor!r} is a JSON "
                  f"{_jtype(entry)}, not an object", file=rel, tensor=tensor,
                  evidence={"found": _jtype(entry)})
        return None
    missing = sorted(ENTRY_FIELDS - entry.keys())
    extra = sorted(entry.keys() - ENTRY_FIELDS)
    if extra:
        emit.emit(C.UNKNOWN_FIELD, f"{rel}: tensor {tensor!r} has fields the format does not "
                  f"define: {', '.join(shown(e) for e in extra[:10])}", file=rel, tensor=tensor,
                  evidence={"fields": [shown(e) for e in extra[:20]], "count": len(extra)})
    if missing:
        emit.emit(C.BAD_STRUCTURE, f"{rel}: tensor {tensor!r} lacks {', '.join(missing)}",
                  file=rel, tensor=tensor, evidence={"missing": list[JSONValue](missing)})
        return None
    dtype, shape, offsets = entry["dtype"], entry["shape"], entry["data_offsets"]
    ok = True
    if not isinstance(dtype, str) or dtype not in DTYPE_BITS:
        ok = False
        shown_dtype = shown(dtype) if isinstance(dtype, str) else _jtype(dtype)
        emit.emit(C.UNKNOWN_DTYPE, f"{rel}: tensor {tensor!r} has unknown dtype "
                  f"{shown_dtype!r}", file=rel, tensor=tensor, evidence={"dtype": shown_dtype})
    if not isinstance(shape, list) or not all(_is_uint(d) for d in shape):
        ok = False
        emit.emit(C.BAD_SHAPE, f"{rel}: tensor {tensor!r} shape is not a list of non-negative "
                  "64-bit integers", file=rel, tensor=tensor,
                  evidence={"shape": _show_json(shape), "reason": _shape_reason(shape)})
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_is_uint, offsets))
            and offsets[0] <= offsets[1]):
        ok = False
        emit.emit(C.BAD_OFFSETS, f"{rel}: tensor {tensor!r} data_offsets is not [begin, end] "
                  "with 0 <= begin <= end < 2^64", file=rel, tensor=tensor,
                  evidence={"data_offsets": _show_json(offsets)})
    if not ok:
        return None
    numel = 1
    for dim in shape:
        numel *= dim
        if numel > U64_MAX:
            emit.emit(C.BAD_SHAPE, f"{rel}: tensor {tensor!r} element count overflows 64 bits",
                      file=rel, tensor=tensor,
                      evidence={"shape": _show_json(shape), "reason": "element count overflow"})
            return None
    bits = numel * DTYPE_BITS[dtype]
    begin, end = offsets
    if bits > U64_MAX or bits % 8 or bits // 8 != end - begin:
        reason = ("size overflows 64 bits" if bits > U64_MAX else
                  "not a whole number of bytes" if bits % 8 else "size differs from span")
        emit.emit(C.SIZE_MISMATCH, f"{rel}: tensor {tensor!r} {dtype}{shape} needs "
                  f"{bits / 8:g} bytes but data_offsets span {end - begin}", file=rel,
                  tensor=tensor, evidence={"dtype": dtype, "shape": _show_json(shape),
                                           "expected_bytes": bits // 8 if bits <= U64_MAX
                                           else str(bits // 8),
                                           "span_bytes": end - begin, "reason": reason})
        return None
    return TensorInfo(name=name, dtype=dtype, shape=tuple(shape), begin=begin, end=end)


def _shape_reason(shape: Any) -> str:
    if not isinstance(shape, list):
        return f"shape is a JSON {_jtype(shape)}"
    for d in shape:
        if isinstance(d, bool):
            return "boolean dimension"
        if isinstance(d, float):
            return "non-integer dimension"
        if not isinstance(d, int):
            return f"{_jtype(d)} dimension"
        if d < 0:
            return "negative dimension"
        if d > U64_MAX:
            return "dimension over 2^64-1"
    return "invalid"


def _show_json(value: Any) -> JSONValue:
    text = json.dumps(value) if not isinstance(value, str) else value
    return shown(text)


def _layout(tensors: list[TensorInfo], data_len: int, rel: str, emit: Emitter,
            read_at: ReadAt | None, data_start: int) -> bool:
    ok = True
    expected = 0
    past_end_reported = False
    for t in sorted(tensors, key=lambda t: (t.begin, t.end)):
        tensor = shown(t.name)
        if t.begin != expected:
            ok = False
            kind = ("not_starting_at_zero" if expected == 0 and t.begin > 0 else
                    "gap" if t.begin > expected else "overlap")
            emit.emit(C.OFFSETS_NOT_CONTIGUOUS, f"{rel}: tensor {tensor!r} begins at data "
                      f"offset {t.begin}, expected {expected} ({kind.replace('_', ' ')})",
                      file=rel, tensor=tensor, offset=data_start + min(t.begin, U64_MAX),
                      evidence={"kind": kind, "begin": t.begin, "expected_begin": expected,
                                "bytes": abs(t.begin - expected)})
        if t.end > data_len and not past_end_reported:
            ok, past_end_reported = False, True
            emit.emit(C.OFFSETS_PAST_END, f"{rel}: tensor {tensor!r} ends at data offset "
                      f"{t.end}, past the {data_len} data bytes", file=rel, tensor=tensor,
                      evidence={"begin": t.begin, "end": t.end, "data_len": data_len,
                                "beyond_bytes": t.end - data_len})
        expected = max(expected, t.end)
    if ok and expected < data_len:
        extra = data_len - expected
        trailer = read_at(data_start + expected, 64) if read_at else b""
        magic = sniff(trailer)
        emit.emit(C.TRAILING_BYTES, f"{rel}: {extra} bytes follow the last tensor"
                  + (f" and start like {magic}" if magic else ""), file=rel,
                  offset=data_start + expected,
                  evidence={"trailing_bytes": extra, "trailer_offset": data_start + expected,
                            "trailer_magic": magic, "trailer_head": trailer[:16].hex() or None})
        ok = False
    return ok


def _oddities(text: str, obj: dict[str, Any], tensors: list[TensorInfo], rel: str,
              emit: Emitter, canonical_check: bool) -> None:
    body = text.strip(" \t\n\r")
    lead = len(text) - len(text.lstrip(" \t\n\r"))
    trail = text[len(text.rstrip(" \t\n\r")):]
    if lead or len(trail) >= 8 or trail.strip(" "):
        emit.emit(C.HEADER_PADDING, f"{rel}: header has {lead} leading and {len(trail)} trailing "
                  "whitespace characters (the reference writer pads with at most 7 spaces)",
                  file=rel, evidence={"leading_whitespace": lead,
                                      "trailing_whitespace": len(trail),
                                      "non_space_whitespace": len(trail.replace(" ", ""))})
    if canonical_check:
        canonical = json.dumps(obj, separators=(",", ":"), ensure_ascii=False)
        if canonical != body:
            at = next((i for i, (a, b) in enumerate(zip(canonical, body, strict=False)) if a != b),
                      min(len(canonical), len(body)))
            emit.emit(C.NONCANONICAL_JSON, f"{rel}: header JSON is not in the reference writer's "
                      f"compact form (first difference at character {at})", file=rel,
                      evidence={"first_difference": at, "found": shown(body[at:at + 40]),
                                "canonical": shown(canonical[at:at + 40])})
    if len(tensors) > 1:
        by_offset = [t.name for t in sorted(tensors, key=lambda t: (t.begin, t.end))]
        by_name = sorted(by_offset)
        by_writer = [t.name for t in sorted(tensors, key=lambda t: (-_DTYPE_RANK[t.dtype],
                                                                     t.name))]
        if by_offset not in (by_name, by_writer):
            i = next(i for i, (a, b) in enumerate(zip(by_offset, by_name, strict=True)) if a != b)
            emit.emit(C.UNSORTED_OFFSETS, f"{rel}: tensor data is laid out in neither name order "
                      "nor the reference writer's order", file=rel, tensor=shown(by_offset[i]),
                      evidence={"position": i, "tensor_at_position": shown(by_offset[i]),
                                "name_order_expects": shown(by_name[i])})


_BINARY_OK = frozenset("\t\n\r")
_B64_RUN = re.compile(r"[A-Za-z0-9+/]+={0,2}")
_CONTENT_SCAN_CHARS = 1 << 20  # per key/value; more is already AS224 (large metadata)


def _non_printable(text: str) -> int:
    if text.isprintable():  # C speed; false for any Cc/Cf/Cs character
        return 0
    return sum(1 for c in text if (unicodedata.category(c) in _NAME_BAD_CATEGORIES
                                   and c not in _BINARY_OK) or c == "\ufffd")


def _metadata_content(meta: Mapping[str, str], rel: str, emit: Emitter) -> None:
    if not meta:
        return
    total = sum(len(k.encode("utf-8", "surrogatepass")) + len(v.encode("utf-8", "surrogatepass"))
                for k, v in meta.items())
    max_bytes = int(emit.num(C.METADATA_LARGE, "max_bytes"))
    if total > max_bytes:
        biggest = max(meta, key=lambda k: len(meta[k]))
        emit.emit(C.METADATA_LARGE, f"{rel}: __metadata__ holds {total} bytes (limit "
                  f"{max_bytes})", file=rel, key=shown(biggest),
                  evidence={"bytes": total, "max_bytes": max_bytes, "keys": len(meta),
                            "largest_key": shown(biggest), "largest_value_chars":
                            len(meta[biggest])})
    patterns = emit.param(C.METADATA_CODE, "patterns")
    regexes = [re.compile(p) for p in (patterns if isinstance(patterns, list) else [patterns])
               if isinstance(p, str)]
    b64_min = max(int(emit.num(C.METADATA_CODE, "base64_min_length")), 1)
    for key, value in meta.items():
        for part, full in (("key", key), ("value", value)):
            text = full[:_CONTENT_SCAN_CHARS]  # bounded: the patterns run in linear time on it
            bad = _non_printable(text)
            if bad:
                emit.emit(C.METADATA_BINARY, f"{rel}: __metadata__ {part} {shown(key)!r} has "
                          f"{bad} non-printable characters", file=rel, key=shown(key),
                          evidence={"key": shown(key), "part": part, "non_printable": bad,
                                    "chars": len(full)})
            hit = next((m for r in regexes if (m := r.search(text))), None)
            kind = "code"
            if hit is None:
                kind = "base64"
                hit = next((m for m in _B64_RUN.finditer(text) if len(m.group(0)) >= b64_min),
                           None)
            if hit is not None:
                start = max(hit.start() - 20, 0)
                emit.emit(C.METADATA_CODE, f"{rel}: __metadata__ {part} {shown(key)!r} looks like "
                          f"{kind}: {shown(hit.group(0))[:60]!r}", file=rel, key=shown(key),
                          evidence={"key": shown(key), "part": part, "kind": kind,
                                    "pattern": hit.re.pattern[:100], "match_offset": hit.start(),
                                    "match_chars": len(hit.group(0)),
                                    "excerpt": text[start:start + 120]})
