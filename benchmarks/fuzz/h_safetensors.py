"""The safetensors header parser and tensor-data scan; an accepted header round-trips through
the reference `safetensors` reader (same names, dtypes, shapes, metadata)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from safetensors import safe_open

from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.safetensors import data, header
from benchmarks.fuzz.common import LIMITS, check_report, emitter, write

ALLOWED: tuple[type[BaseException], ...] = ()
MAX_LEN = 16384
NAME = "adapter_model.safetensors"


def roundtrip(path: Path, h: SafetensorsHeader) -> None:
    """A header we accept without a single finding is read the same by the reference."""
    with safe_open(str(path), framework="numpy") as ref:
        assert sorted(ref.keys()) == sorted(t.name for t in h.tensors), "tensor names differ"
        assert (ref.metadata() or {}) == dict(h.metadata), "metadata differs"
        for t in h.tensors:
            s = ref.get_slice(t.name)
            assert tuple(s.get_shape()) == tuple(t.shape), f"{t.name}: shape differs"
            assert s.get_dtype() == t.dtype, f"{t.name}: dtype differs"


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    def target(raw: bytes) -> None:
        path = write(scratch, NAME, raw)
        emit = emitter()
        h = header.read_header_file(path, NAME, emit, LIMITS)
        if h is not None:
            clean = not emit.findings and not emit.skipped
            data.measure_tensor_data(path, h, LIMITS, False).replay(emit)
            if clean:
                roundtrip(path, h)
        check_report(emit)
    return target
