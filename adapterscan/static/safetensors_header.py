"""Safetensors header parser (skeleton; being written)."""
from __future__ import annotations

from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import SafetensorsHeader


def read_header_file(path: Path, rel: str, emit: Emitter,
                     limits: StaticLimits) -> SafetensorsHeader | None:
    raise NotImplementedError("safetensors header parser")
