"""The GGUF parser and its tensor-name reader; a file accepted without a finding is read the
same by the reference `gguf` package (same keys, tensor names, shapes, types)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gguf

from adapterscan.static.formats.gguf import GgufFile
from adapterscan.static.formats.gguf_scan import scan_gguf_file
from adapterscan.static.formats.readers import read_gguf
from benchmarks.fuzz.common import LIMITS, check_report, emitter, write

ALLOWED: tuple[type[BaseException], ...] = ()
MAX_LEN = 8192
NAME = "adapter.gguf"


def roundtrip(path: Path, ours: GgufFile) -> None:
    ref = gguf.GGUFReader(str(path))
    keys = [k for k in ref.fields if not k.startswith("GGUF.")]
    assert sorted(keys) == sorted(ours.kv), "metadata keys differ"
    theirs = {t.name: (tuple(int(d) for d in t.shape), t.tensor_type.name) for t in ref.tensors}
    mine = {t.name: (t.ne, t.ggml_type) for t in ours.tensors}
    assert theirs == mine, "tensor names, shapes or types differ"


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    def target(raw: bytes) -> None:
        path = write(scratch, NAME, raw)
        emit = emitter()
        parsed = scan_gguf_file(path, NAME, emit, LIMITS)
        if parsed is not None:
            read_gguf(scratch, NAME, parsed)
            if not emit.findings and not emit.skipped:
                roundtrip(path, parsed)
        check_report(emit)
    return target
