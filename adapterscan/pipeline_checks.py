"""Checks the pipeline itself emits (integrity of the bytes it analysed, probe applicability)."""

from typing import Final

NOT_APPLICABLE: Final = "probe.not_applicable"

SHA256_MISMATCH: Final = "integrity.sha256_mismatch"

CHECKS: Final[frozenset[str]] = frozenset({SHA256_MISMATCH, NOT_APPLICABLE})
