"""Checks the pipeline itself emits (integrity of the bytes it analysed, probe applicability)."""

from typing import Final

NOT_APPLICABLE: Final = "probe.not_applicable"

CHECKS: Final[frozenset[str]] = frozenset({"integrity.sha256_mismatch", NOT_APPLICABLE})
