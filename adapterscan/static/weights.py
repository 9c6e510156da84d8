"""Weight-delta statistics (skeleton; being written)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.model import SafetensorsHeader


@dataclass(frozen=True)
class WeightOptions:
    pass


def analyze_weights(root: Path, headers: Mapping[str, SafetensorsHeader],
                    config: Mapping[str, JSONValue] | None, emit: Emitter,
                    options: WeightOptions) -> JSONValue:
    return None
