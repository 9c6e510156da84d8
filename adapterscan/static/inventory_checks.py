"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

CHECKS: Final[frozenset[str]] = frozenset()
