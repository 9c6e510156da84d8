"""Typed rule records loaded from signatures/."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace

from adapterscan.findings import Confidence, Severity

ParamValue = float | int | str | bool | list[float | int | str]


@dataclass(frozen=True)
class RuleDocs:
    what: str
    why: str
    example: str
    references: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    name: str
    stage: str
    check: str
    severity: Severity
    confidence: Confidence
    summary: str
    docs: RuleDocs
    params: Mapping[str, ParamValue] = field(default_factory=dict)

    @property
    def help_uri(self) -> str:
        return f"https://github.com/adapterscan/adapterscan/blob/main/docs/rules/{self.id}.md"

    def with_params(self, overrides: Mapping[str, ParamValue]) -> Rule:
        merged = dict(self.params)
        merged.update(overrides)
        return replace(self, params=merged)


@dataclass(frozen=True)
class RuleSet:
    """All rules, indexed by id and by check; `digest` is the sha256 of the rule files' bytes."""

    rules: tuple[Rule, ...]
    digest: str
    _ids: Mapping[str, Rule] = field(init=False, repr=False, compare=False)
    _checks: Mapping[str, Rule] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # Derived indexes; set through object.__setattr__ because the dataclass is frozen.
        object.__setattr__(self, "_ids", {r.id: r for r in self.rules})
        object.__setattr__(self, "_checks", {r.check: r for r in self.rules})

    def by_id(self, rule_id: str) -> Rule:
        return self._ids[rule_id]

    def by_check(self, check: str) -> Rule:
        return self._checks[check]

    def has_id(self, rule_id: str) -> bool:
        return rule_id in self._ids

    def with_params(self, overrides: Mapping[str, Mapping[str, ParamValue]]) -> RuleSet:
        rules = tuple(r.with_params(overrides[r.id]) if r.id in overrides else r
                      for r in self.rules)
        return RuleSet(rules=rules, digest=self.digest)
