"""The tensor-name readers (PEFT, kohya / sd-scripts, LyCORIS, diffusers, MLX) and the
metadata checks that follow them, on a safetensors file whose header the parser accepted.
The first byte picks the adapter_config.json beside it (none, PEFT or MLX); the rest is the
file."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

from adapterscan.static.formats.metadata import check_metadata
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.safetensors.header import read_header_file
from benchmarks.fuzz.common import LIMITS, check_report, emitter, write

ALLOWED: tuple[type[BaseException], ...] = ()
MAX_LEN = 16384
NAME = "adapter_model.safetensors"
CONFIGS = "configs"  # adapter_config.json variants, written by seeds.py


def prepare(scratch: Path, assets: Path) -> Callable[[bytes], None]:
    configs = [None] + [json.loads(p.read_bytes())
                        for p in sorted((assets / CONFIGS).glob("*.json"))]

    def target(raw: bytes) -> None:
        if not raw:
            return
        cfg = configs[raw[0] % len(configs)]
        path = write(scratch, NAME, raw[1:])
        emit = emitter()
        header = read_header_file(path, NAME, emit, LIMITS)
        if header is None:
            return
        by_path = {"adapter_config.json": cfg} if cfg is not None else {}
        model = read_adapters(scratch, {NAME: header}, {}, by_path)
        check_metadata(model, by_path, emit)
        for f in model.files:
            json.dumps(f.summary())
        check_report(emit)
    return target
