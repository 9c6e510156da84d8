"""Parser properties: hypothesis fuzzing, agreement with the real writer, bounded reads."""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapterscan.emit import Emitter
from adapterscan.findings import Severity
from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors.header import (
    DTYPE_BITS,
    header_length,
    parse_header_bytes,
    read_header_file,
)
from tests.factories import lora_tensors, safetensors_bytes
from tests.static.factories_safetensors import safetensors_ruleset, scan_bytes

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def parse(data: bytes, limits: StaticLimits | None = None) -> SafetensorsHeader | None:
    emit = Emitter(safetensors_ruleset())
    header = parse_header_bytes(data, len(data), "f.safetensors", emit,
                                limits or StaticLimits(max_header_bytes=1 << 16))
    for f in emit.findings:
        assert f.location.file == "f.safetensors"
        json.dumps(dict(f.evidence))  # evidence is always JSON-ready
    return header


def assert_invariants(h: SafetensorsHeader, file_size: int) -> None:
    expected = 0
    for t in h.tensors:
        assert t.begin == expected
        bits = DTYPE_BITS[t.dtype] * int(np.prod(t.shape, dtype=object))
        assert bits % 8 == 0 and bits // 8 == t.end - t.begin
        expected = t.end
    assert h.data_start + expected == file_size == h.file_size


@FUZZ
@given(st.binary(max_size=512))
def test_random_bytes(data: bytes) -> None:
    h = parse(data)
    if h is not None:
        assert_invariants(h, len(data))


json_leaf = st.one_of(st.none(), st.booleans(), st.integers(-5, 2**65), st.floats(),
                      st.text(max_size=8))
json_value = st.recursive(json_leaf, lambda kids: st.lists(kids, max_size=4)
                          | st.dictionaries(st.text(max_size=6), kids, max_size=4), max_leaves=12)
entries = st.fixed_dictionaries(
    {"dtype": st.sampled_from([*DTYPE_BITS, "X"]),
     "shape": st.lists(st.integers(-1, 5), max_size=3),
     "data_offsets": st.lists(st.integers(-1, 64), min_size=2, max_size=2)},
    optional={"extra": json_value})


@FUZZ
@given(st.dictionaries(st.text(max_size=6), st.one_of(entries, json_value), max_size=5),
       st.binary(max_size=64), st.integers(0, 8))
def test_json_ish_headers(header: dict[str, Any], data: bytes, pad: int) -> None:
    hb = json.dumps(header).encode() + b" " * pad
    blob = struct.pack("<Q", len(hb)) + hb + data
    h = parse(blob)
    if h is not None:
        assert_invariants(h, len(blob))


VALID = safetensors_bytes(lora_tensors(layers=1, hidden=4, r=2), metadata={"format": "pt"})


@FUZZ
@given(st.lists(st.tuples(st.integers(0, len(VALID) - 1), st.integers(0, 255)), max_size=6),
       st.integers(0, len(VALID)))
def test_mutated_valid_file(flips: list[tuple[int, int]], cut: int) -> None:
    data = bytearray(VALID)
    for at, value in flips:
        data[at] = value
    blob = bytes(data[:cut])
    h = parse(blob)
    if h is not None:
        assert_invariants(h, len(blob))


def test_real_writer_output_is_clean(tmp_path: Path) -> None:
    safetensors_numpy = pytest.importorskip("safetensors.numpy")
    tensors = lora_tensors(layers=3, hidden=64, r=8)
    tensors["scale"] = np.ones(3, np.float16)
    tensors["step"] = np.zeros(1, np.float64)
    data = safetensors_numpy.save(tensors, metadata={"format": "pt", "note": "é"})
    scan = scan_bytes(tmp_path, data)
    assert scan.header is not None
    assert [f for f in scan.findings if f.severity > Severity.INFO] == []
    assert {t.name for t in scan.header.tensors} == set(tensors)
    assert_invariants(scan.header, len(data))
    assert header_length(data[:8]) == scan.header.header_len


def _rchar() -> int | None:
    try:
        for line in Path("/proc/self/io").read_text().splitlines():
            if line.startswith("rchar:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def test_50gb_sparse_file_is_triaged_without_reading_the_body(tmp_path: Path) -> None:
    size = 50 * 1024**3
    hb = json.dumps({"w": {"dtype": "U8", "shape": [size],
                           "data_offsets": [0, size]}}).encode()
    hb += b" " * (-len(hb) % 8)
    path = tmp_path / "huge.safetensors"
    with open(path, "wb") as fh:
        fh.write(struct.pack("<Q", len(hb)) + hb)
        try:
            fh.truncate(8 + len(hb) + size)
        except OSError:
            pytest.skip("filesystem without sparse files")
    emit = Emitter(safetensors_ruleset())
    before = _rchar()
    header = read_header_file(path, "huge.safetensors", emit, StaticLimits())
    after = _rchar()
    path.unlink()
    assert header is not None and header.tensors[0].end == size
    if before is not None and after is not None:
        assert after - before < 1024 * 1024  # only the header was read
