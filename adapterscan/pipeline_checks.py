"""Checks the pipeline itself emits (probe applicability). Byte integrity (AS101) is the fetch
stage's check (fetch/checks.py), which the pipeline emits too when its own hash disagrees."""

from typing import Final

NOT_APPLICABLE: Final = "probe.not_applicable"

CHECKS: Final[frozenset[str]] = frozenset({NOT_APPLICABLE})
