"""Helpers for the safetensors analyzer tests: a rule set of AS2xx only, and one-call scans.

The rule set is built from signatures/rules/AS2*.toml alone so these tests do not depend on the
state of other analyzers' rules.
"""

from __future__ import annotations

import functools
import json
import struct
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.findings import Finding
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import ParamValue, RuleSet
from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.limits import StaticLimits
from adapterscan.static.safetensors import data as safetensors_data
from adapterscan.static.safetensors import header as safetensors_header
from adapterscan.static.safetensors.checks import CHECKS
from tests.factories import rules_subset


@functools.cache
def safetensors_ruleset() -> RuleSet:
    root = Path(tempfile.mkdtemp(prefix="as2rules-"))
    return load_ruleset(rules_subset(root, "AS2*.toml", CHECKS), checks=CHECKS)


@dataclass(frozen=True)
class Scan:
    header: SafetensorsHeader | None
    findings: tuple[Finding, ...]
    skipped: tuple[str, ...]

    def ids(self) -> set[str]:
        return {f.rule_id for f in self.findings}

    def of(self, rule_id: str) -> list[Finding]:
        return [f for f in self.findings if f.rule_id == rule_id]


def scan_bytes(folder: Path, data: bytes, *, limits: StaticLimits | None = None,
               params: Mapping[str, Mapping[str, ParamValue]] | None = None,
               name: str = "adapter_model.safetensors") -> Scan:
    """Write `data` and run the header parser then (if it passed) the data scan."""
    lim = limits or StaticLimits(chunk_bytes=4096)
    rules = safetensors_ruleset()
    if params:
        rules = rules.with_params(params)
    emit = Emitter(rules)
    path = folder / name
    path.write_bytes(data)
    header = safetensors_header.read_header_file(path, name, emit, lim)
    if header is not None:
        safetensors_data.scan_tensor_data(path, header, emit, lim)
    return Scan(header, emit.findings, tuple(s.reason for s in emit.skipped))


def entry(dtype: str, shape: list[Any], begin: int, end: int, **extra: Any) -> dict[str, Any]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [begin, end], **extra}


def compact(header: Mapping[str, Any] | list[Any], pad: bool = True) -> bytes:
    """Header bytes as the reference writer makes them (compact JSON, <= 7 spaces of padding)."""
    hb = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    return hb + b" " * (-len(hb) % 8 if pad else 0)


def framed(header: bytes, data: bytes = b"", *, header_len: int | None = None) -> bytes:
    n = len(header) if header_len is None else header_len
    return struct.pack("<Q", n) + header + data
