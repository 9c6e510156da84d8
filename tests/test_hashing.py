"""sha256 over memory-mapped windows: the same digest as hashlib on the bytes, bounded spans,
and a file that changes while it is hashed is an error (the scan then skips it)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from adapterscan import hashing
from adapterscan.mapped import SpanError, map_span


@pytest.mark.parametrize("size", [0, 1, 4095, 4096, 4097, 3 * 4096 + 5])
def test_digest_matches_hashlib_across_windows(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    p = tmp_path / "f.bin"
    p.write_bytes(data)
    assert hashing.sha256_file(p, window=4096) == hashlib.sha256(data).hexdigest()


def test_file_that_grows_while_hashed_is_an_error(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(b"x" * 10_000)
    real = hashing.map_span

    def growing(fd: int, start: int, length: int) -> memoryview:
        if start > 0:
            with p.open("ab") as fh:
                fh.write(b"y")
        return real(fd, start, length)

    monkeypatch.setattr(hashing, "map_span", growing)
    with pytest.raises(OSError, match="changed while it was hashed"):
        hashing.sha256_file(p, window=4096)


def test_spans_are_checked_against_the_file(tmp_path: Path) -> None:
    p = tmp_path / "f.bin"
    p.write_bytes(bytes(range(256)) * 40)
    fd = os.open(p, os.O_RDONLY)
    try:
        assert bytes(map_span(fd, 5000, 10)) == (bytes(range(256)) * 40)[5000:5010]
        assert bytes(map_span(fd, 10240, 0)) == b""
        with pytest.raises(SpanError, match="past the"):
            map_span(fd, 10000, 241)
        with pytest.raises(SpanError, match="negative"):
            map_span(fd, -1, 4)
    finally:
        os.close(fd)
