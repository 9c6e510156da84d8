"""Helpers for the adapter_config analyzer tests: headers parsed by hand, inventory, one-call run.

Headers are parsed here (not with adapterscan.static.safetensors.header) so these tests depend
only on the analyzer under test; the files come from tests/factories.py and are well-formed.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.static.config.adapter_config import AdapterConfigResult, analyze_adapter_config
from adapterscan.static.config.checks import CHECKS
from adapterscan.static.layout import SafetensorsHeader, TensorInfo
from adapterscan.static.limits import StaticLimits
from adapterscan.static.model import FileClass, Inventory, InventoryItem
from tests.factories import rules_subset


def adapter_config_ruleset(root: Path) -> RuleSet:
    """Only the AS3xx rules (so these tests do not depend on other analyzers' rule files)."""
    return load_ruleset(rules_subset(root, "AS3*.toml", CHECKS), checks=CHECKS)


def header_of(path: Path, rel: str) -> SafetensorsHeader:
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    raw: dict[str, Any] = json.loads(data[8:8 + n])
    meta = raw.pop("__metadata__", {})
    tensors = tuple(sorted(
        (TensorInfo(name=k, dtype=v["dtype"], shape=tuple(v["shape"]),
                    begin=v["data_offsets"][0], end=v["data_offsets"][1])
         for k, v in raw.items()), key=lambda t: t.begin))
    return SafetensorsHeader(path=rel, file_size=len(data), header_len=n, metadata=meta,
                             tensors=tensors)


def inventory_of(root: Path) -> Inventory:
    items = []
    for p in sorted(root.rglob("*")):
        if p.is_file():
            rel = p.relative_to(root).as_posix()
            cls = FileClass.SAFETENSORS if rel.endswith(".safetensors") else FileClass.OTHER_DATA
            items.append(InventoryItem(rel, p.stat().st_size, cls, "test"))
    return Inventory(tuple(items))


def headers_of(root: Path) -> dict[str, SafetensorsHeader]:
    return {p.relative_to(root).as_posix(): header_of(p, p.relative_to(root).as_posix())
            for p in sorted(root.rglob("*.safetensors"))}


def run(root: Path, ruleset: RuleSet, limits: StaticLimits | None = None,
        headers: Mapping[str, SafetensorsHeader] | None = None,
        ) -> tuple[AdapterConfigResult | None, Emitter]:
    emit = Emitter(ruleset)
    result = analyze_adapter_config(root, inventory_of(root),
                                    headers_of(root) if headers is None else headers, emit,
                                    limits or StaticLimits())
    return result, emit


def ids(emit: Emitter) -> set[str]:
    return {f.rule_id for f in emit.findings}
