"""A RuleSet with just the probe's rules (AS6xx), so probe tests do not depend on other stages."""

from __future__ import annotations

import tomllib
from pathlib import Path

from adapterscan.rules.loader import _rule_from_table
from adapterscan.rules.model import RuleSet

SIGNATURES = Path(__file__).resolve().parents[2] / "signatures" / "rules"


def probe_ruleset() -> RuleSet:
    rules = [_rule_from_table(tomllib.loads(p.read_text("utf-8")))
             for p in sorted(SIGNATURES.glob("AS6*.toml"))]
    return RuleSet(rules=tuple(rules), digest="test")
