"""adapter_config.json analyzer (skeleton; being written)."""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import Inventory, SafetensorsHeader


@dataclass(frozen=True)
class AdapterConfigResult:
    config: Mapping[str, JSONValue]
    summary: JSONValue


def analyze_adapter_config(root: Path, inventory: Inventory,
                           headers: Mapping[str, SafetensorsHeader], emit: Emitter,
                           limits: StaticLimits) -> AdapterConfigResult | None:
    raise NotImplementedError("adapter_config analyzer")
