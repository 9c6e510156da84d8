"""What every harness shares: the real rule set, an emitter, a scratch file, findings checked."""

from __future__ import annotations

import functools
import json
from pathlib import Path

from adapterscan.emit import Emitter
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.static.limits import StaticLimits

# The scanner's own defaults: the fuzzer must meet the bounds a real scan runs under.
LIMITS = StaticLimits()


@functools.cache
def ruleset() -> RuleSet:
    return load_ruleset()


def emitter() -> Emitter:
    return Emitter(ruleset())


def write(folder: Path, rel: str, data: bytes) -> Path:
    path = folder / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def check_report(emit: Emitter) -> None:
    """What an analyzer reports must be renderable: JSON-ready evidence, text messages."""
    for f in emit.findings:
        assert isinstance(f.message, str), f.rule_id
        json.dumps(dict(f.evidence), allow_nan=True)
    for e in emit.errors:
        raise AssertionError(f"stage error {e.stage}: {e.message}")
