"""Pickle opcode analyzer (skeleton; being written)."""
from __future__ import annotations

from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.static.limits import StaticLimits


def analyze_pickle_file(path: Path, rel: str, emit: Emitter, limits: StaticLimits) -> None:
    raise NotImplementedError("pickle analyzer")
