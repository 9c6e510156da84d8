"""The bounded GGUF parser: agrees with gguf's own reader on real files, refuses hostile ones
with a reason and an offset, never raises anything else and never reads out of bounds."""

from __future__ import annotations

import contextlib
import io
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from adapterscan.static.formats.gguf import (
    GGML_TYPES,
    MAX_STRING,
    GgufArray,
    GgufError,
    GgufFile,
    parse_gguf,
)
from tests.static.factories_formats import llama_factors, write_gguf


def s(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def kv_str(key: str, value: str) -> bytes:
    return s(key) + struct.pack("<I", 8) + s(value)


def kv_u32(key: str, value: int) -> bytes:
    return s(key) + struct.pack("<II", 4, value)


def tinfo(name: str, ne: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return s(name) + struct.pack("<I", len(ne)) + b"".join(struct.pack("<Q", d) for d in ne) \
        + struct.pack("<IQ", ggml_type, offset)


def gguf(kvs: list[bytes], tensors: list[bytes], data: bytes = b"", *, version: int = 3,
         n_tensors: int | None = None, n_kv: int | None = None, align: int = 32) -> bytes:
    head = b"GGUF" + struct.pack("<IQQ", version, len(tensors) if n_tensors is None
                                 else n_tensors, len(kvs) if n_kv is None else n_kv)
    head += b"".join(kvs) + b"".join(tensors)
    head += b"\0" * (-len(head) % align)
    return head + data


def parse(raw: bytes) -> GgufFile:
    return parse_gguf(io.BytesIO(raw), len(raw), "x.gguf")


def refused(raw: bytes) -> GgufError:
    with pytest.raises(GgufError) as info:
        parse(raw)
    return info.value


VALID = gguf([kv_str("general.type", "adapter")], [tinfo("w", (8, 2))], b"\0" * 64)


def test_minimal_valid_file() -> None:
    g = parse(VALID)
    assert g.kv["general.type"] == "adapter" and g.data_start % 32 == 0
    assert g.tensor_infos()[0].shape == (2, 8) and g.trailing_bytes == 0


def test_agrees_with_the_gguf_reader(tmp_path: Path) -> None:
    import gguf as gguf_pkg

    path = write_gguf(tmp_path / "a.gguf", llama_factors(layers=2, hidden=32, r=4),
                      dtype=np.float16, tokenizer=True)
    with path.open("rb") as fh:
        ours = parse_gguf(fh, path.stat().st_size, "a.gguf")
    theirs = gguf_pkg.GGUFReader(str(path))
    assert [t.name for t in theirs.tensors] == [t.name for t in ours.tensors]
    for mine, ref in zip(ours.tensors, theirs.tensors, strict=True):
        assert ours.data_start + mine.offset == ref.data_offset
        assert mine.nbytes == ref.n_bytes and list(mine.ne) == [int(x) for x in ref.shape]
    assert ours.kv["adapter.lora.alpha"] == pytest.approx(8.0)
    tokens = ours.kv["tokenizer.ggml.tokens"]
    assert isinstance(tokens, GgufArray) and tokens.count == 3 and tokens.sample[2] == "hello"


def test_type_table_matches_gguf() -> None:
    import gguf as gguf_pkg

    for type_id, (name, block, width) in GGML_TYPES.items():
        qt = gguf_pkg.GGMLQuantizationType(type_id)
        assert qt.name == name and gguf_pkg.GGML_QUANT_SIZES[qt] == (block, width)


@pytest.mark.parametrize(("raw", "reason"), [
    (gguf([], [], n_tensors=2 ** 62), "tensor count 4611686018427387904"),
    (gguf([], [], n_kv=2 ** 63), "KV count"),
    (gguf([s("k") + struct.pack("<I", 8) + struct.pack("<Q", 2 ** 60)], []), "length of"),
    (gguf([struct.pack("<Q", 2 ** 60) + b"\0" * 16], []), "length of"),
    (gguf([s("k") + struct.pack("<IIQ", 9, 4, 2 ** 61)], []), "array 'k' of 2305843009213693952"),
    (gguf([s("k") + struct.pack("<IIQ", 9, 8, 2 ** 61)], []), "strings cannot fit"),
    (gguf([s("k") + struct.pack("<IIQ", 9, 9, 1)], []), "nests an array"),
    (gguf([s("k") + struct.pack("<I", 13)], []), "unknown value type 13"),
    (gguf([s("k") + struct.pack("<IB", 7, 2)], []), "not 0 or 1"),
    (gguf([kv_u32("a", 1), kv_u32("a", 2)], []), "duplicate key"),
    (gguf([s(b"\xff\xfe") + struct.pack("<II", 4, 1)], []), "not valid UTF-8"),
    (gguf([s("") + struct.pack("<II", 4, 1)], []), "empty key"),
    (gguf([kv_u32("general.alignment", 3)], []), "power of two"),
    (gguf([kv_u32("general.alignment", 0)], []), "power of two"),
    (gguf([], [tinfo("w", (8,)), tinfo("w", (8,), offset=32)], b"\0" * 64), "duplicate tensor"),
    (gguf([], [tinfo("w" * 64, (8,))], b"\0" * 32), "64 bytes or longer"),
    (gguf([], [tinfo("w", (1, 1, 1, 1, 1))], b"\0" * 32), "5 dimensions"),
    (gguf([], [tinfo("w", ())], b"\0" * 32), "0 dimensions"),
    (gguf([], [tinfo("w", (8,), ggml_type=4)], b"\0" * 32), "unknown ggml type 4"),
    (gguf([], [tinfo("w", (2 ** 40, 2 ** 40))], b""), "overflows"),
    (gguf([], [tinfo("w", (33,), ggml_type=8)], b"\0" * 64), "block size 32"),
    (gguf([], [tinfo("w", (8,), offset=32)], b"\0" * 64), "offset 32, expected 0"),
    (gguf([], [tinfo("a", (8,)), tinfo("b", (8,), offset=0)], b"\0" * 64), "expected 32"),
    (gguf([], [tinfo("w", (1024,))], b"\0" * 64), "the file has 64"),
    (gguf([], [], version=1), "v1"),
    (gguf([], [], version=7), "unknown GGUF version 7"),
    (b"GGUF" + struct.pack("<I", 3), "tensor count needs 8 bytes"),
    (b"GGML" + b"\0" * 28, "magic"),
])
def test_hostile_headers_are_refused_with_a_reason(raw: bytes, reason: str) -> None:
    err = refused(raw)
    assert reason in err.reason and 0 <= err.offset <= len(raw)
    assert not err.unsupported


def test_big_endian_is_unsupported_not_hostile() -> None:
    raw = b"GGUF" + struct.pack(">IQQ", 3, 0, 0)
    assert refused(raw).unsupported


def test_metadata_element_cap() -> None:
    raw = gguf([s(f"k{i}") + struct.pack("<IIQ", 9, 0, 1_500_000) + b"\0" * 1_500_000
                for i in range(3)], [])
    err = refused(raw)
    assert err.over_cap and "4000000" in err.reason


def test_trailing_bytes_are_counted() -> None:
    assert parse(VALID + b"PK\x03\x04" + b"\0" * 100).trailing_bytes == 104


def test_reads_are_bounded() -> None:
    """A string length of 2^60 is refused before any read: the file object sees small reads."""
    raw = gguf([s("k") + struct.pack("<I", 8) + struct.pack("<Q", 2 ** 60)], [])

    class Spy(io.BytesIO):
        largest = 0

        def read(self, n: int | None = -1) -> bytes:
            Spy.largest = max(Spy.largest, -1 if n is None else n)
            assert n is not None and 0 <= n <= 1 << 20
            return super().read(n)

    with pytest.raises(GgufError):
        parse_gguf(Spy(raw), len(raw), "x.gguf")
    assert Spy.largest <= len(raw) and MAX_STRING < 2 ** 60


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.integers(min_value=0, max_value=len(VALID)), st.binary(max_size=8),
       st.integers(min_value=0, max_value=len(VALID) - 1))
def test_truncated_or_corrupted_files_never_crash(cut: int, junk: bytes, at: int) -> None:
    """Every prefix and every overwrite of a valid file parses or raises GgufError."""
    for raw in (VALID[:cut], VALID[:at] + junk + VALID[at + len(junk):]):
        with contextlib.suppress(GgufError):
            parse(raw)
