"""Checks the pipeline itself emits (integrity of the bytes it analysed)."""

from typing import Final

CHECKS: Final[frozenset[str]] = frozenset({"integrity.sha256_mismatch"})
