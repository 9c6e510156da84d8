"""Both AS233 search engines find exactly the signature occurrences a byte-by-byte search finds,
whatever the chunk boundaries."""

from __future__ import annotations

import numpy as np
import pytest

from adapterscan.static.safetensors.signatures import ANYWHERE, new_search


def _brute(data: bytes) -> list[tuple[str, int]]:
    found = []
    for kind, magic in ANYWHERE:
        at = data.find(magic)
        while at >= 0:
            found.append((kind, at))
            at = data.find(magic, at + 1)
    return sorted(found, key=lambda h: h[1])


def _planted(seed: int, size: int) -> bytes:
    rng = np.random.default_rng(seed)
    data = bytearray(rng.normal(0, 0.02, size // 4).astype(np.float32).tobytes())
    for pos in rng.integers(0, size - 4, 60):
        _, magic = ANYWHERE[int(rng.integers(len(ANYWHERE)))]
        data[pos:pos + len(magic)] = magic
    data[0:4] = b"PK\x03\x04"  # at the very start and the very end too
    data[-4:] = b"\x7fELF"
    data[100:107] = b"PE\x00\x00PE\x00"  # overlapping candidates
    return bytes(data)


@pytest.mark.parametrize("engine", ["numpy", "hyperscan"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_engines_find_every_occurrence_across_chunks(engine: str, seed: int) -> None:
    if engine == "hyperscan":
        pytest.importorskip("hyperscan")
    data = _planted(seed, 1 << 16)
    rng = np.random.default_rng(seed + 10)
    cuts = sorted({*rng.integers(1, len(data), 40).tolist(), 4097, 4098})
    pieces, start = [], 0
    for cut in cuts:  # the data scan never feeds a piece under 4 bytes except the last
        if cut - start >= 4:
            pieces.append((start, cut))
            start = cut
    pieces.append((start, len(data)))
    u8 = np.frombuffer(data, np.uint8)
    got = []
    with new_search(4096, engine) as search:  # numpy: blocks of 4096 bytes inside each piece
        for a, b in pieces:
            got += list(search.feed(u8[a:b], a))
    assert got == _brute(data)
    assert len(pieces) > 30
