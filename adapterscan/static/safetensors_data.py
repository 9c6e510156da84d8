"""Safetensors tensor-data scan (skeleton; being written)."""
from __future__ import annotations

from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import SafetensorsHeader


def scan_tensor_data(path: Path, header: SafetensorsHeader, emit: Emitter,
                     limits: StaticLimits) -> None:
    raise NotImplementedError("tensor data scan")
