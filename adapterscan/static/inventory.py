"""Inventory analyzer (skeleton; being written)."""
from __future__ import annotations

from adapterscan.emit import Emitter
from adapterscan.fetch.interface import FetchedSource
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import FileClass, Inventory, InventoryItem


def build_inventory(src: FetchedSource, emit: Emitter, limits: StaticLimits) -> Inventory:
    items = []
    for e in src.entries:
        cls = FileClass.SAFETENSORS if e.path.endswith(".safetensors") else FileClass.OTHER_DATA
        items.append(InventoryItem(e.path, e.size, cls, "extension"))
        emit.skip(e.path, "inventory analyzer not implemented yet")
    return Inventory(tuple(items))
