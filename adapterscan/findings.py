"""Findings: what a check saw, where, how sure, with the measured evidence."""

from __future__ import annotations

import enum
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Self, Union

# A JSON value; evidence must serialise without a custom encoder.
JSONValue = Union[str, int, float, bool, None, list["JSONValue"], dict[str, "JSONValue"]]  # noqa: UP007 (recursive alias needs Union)


def json_safe(value: JSONValue) -> JSONValue:
    """`value` with every non-finite float written as a string ("inf", "nan"): JSON has no NaN,
    and a hostile config (`"lora_alpha": 1e999`) must not stop a report from being written."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_safe(v) for v in value]
    if isinstance(value, dict):
        return {str(k): json_safe(v) for k, v in value.items()}
    return value
Evidence = Mapping[str, JSONValue]


class _Ordered(enum.Enum):
    """An enum whose members compare by declaration order."""

    @property
    def rank(self) -> int:
        return list(type(self)).index(self)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank < other.rank

    def __le__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank <= other.rank

    def __gt__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank > other.rank

    def __ge__(self, other: object) -> bool:
        if not isinstance(other, type(self)):
            return NotImplemented
        return self.rank >= other.rank

    @classmethod
    def parse(cls, text: str) -> Self:
        try:
            return cls[text.strip().upper()]
        except KeyError:
            names = ", ".join(m.name.lower() for m in cls)
            raise ValueError(
                f"unknown {cls.__name__.lower()} {text!r}; expected one of {names}") from None


class Severity(_Ordered):
    INFO = "info"
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"


class Confidence(_Ordered):
    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"


@dataclass(frozen=True)
class Location:
    """Where a finding points: a file relative to the scanned root, optionally a tensor or key."""

    file: str | None = None
    tensor: str | None = None
    key: str | None = None
    offset: int | None = None

    def describe(self) -> str:
        parts = [self.file or "<source>"]
        if self.tensor is not None:
            parts.append(f"tensor {self.tensor!r}")
        if self.key is not None:
            parts.append(f"key {self.key!r}")
        if self.offset is not None:
            parts.append(f"offset {self.offset}")
        return ", ".join(parts)


@dataclass(frozen=True)
class Finding:
    rule_id: str
    rule_name: str
    severity: Severity
    confidence: Confidence
    message: str
    location: Location = field(default_factory=Location)
    evidence: Evidence = field(default_factory=dict)
