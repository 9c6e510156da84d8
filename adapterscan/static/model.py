"""Typed results the static analyzers hand to each other."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from adapterscan.findings import JSONValue
from adapterscan.static.layout import SafetensorsHeader

if TYPE_CHECKING:  # formats.model loads numpy: the pipeline imports this module first
    from adapterscan.static.formats.model import AdapterModel
    from adapterscan.static.weights.trigger_tokens import TokenCandidate


class FileClass(enum.Enum):
    SAFETENSORS = "safetensors"
    GGUF = "gguf"
    ADAPTER_CONFIG = "adapter_config"
    CONFIG_JSON = "config_json"
    PICKLE = "pickle"
    ZIP = "zip"
    CODE = "code"
    TOKENIZER = "tokenizer"
    CHAT_TEMPLATE = "chat_template"
    DOCUMENT = "document"
    ARCHIVE = "archive"
    EXECUTABLE = "executable"
    SYMLINK = "symlink"
    OTHER_DATA = "other_data"
    SPECIAL = "special"


@dataclass(frozen=True)
class InventoryItem:
    path: str
    size: int
    file_class: FileClass
    # Why the class was chosen, e.g. "extension .bin and pickle magic 0x80".
    reason: str


@dataclass(frozen=True)
class Inventory:
    items: tuple[InventoryItem, ...]

    def of_class(self, *classes: FileClass) -> tuple[InventoryItem, ...]:
        return tuple(i for i in self.items if i.file_class in classes)

    def get(self, path: str) -> InventoryItem | None:
        for i in self.items:
            if i.path == path:
                return i
        return None


@dataclass(frozen=True)
class StaticResult:
    """What the static stage learned beyond findings, for later stages and the report."""

    inventory: Inventory
    headers: Mapping[str, SafetensorsHeader] = field(default_factory=dict)
    adapter_config: Mapping[str, JSONValue] | None = None
    # JSON-ready summaries keyed by analyzer name (weight statistics, config summary...).
    results: Mapping[str, JSONValue] = field(default_factory=dict)
    # Every adapter file described in one model (format, modules, scales): for the probe.
    adapter: AdapterModel | None = None
    # Tokens the weight comparison with a base singled out, strongest first: for the probe's
    # trigger search (the report carries them too, in results["weights"]).
    trigger_candidates: tuple[TokenCandidate, ...] = ()
