"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

CHECKS: Final[frozenset[str]] = frozenset({
    "provenance.signature_invalid",
    "provenance.statement_invalid",
    "provenance.digest_mismatch",
    "provenance.extra_file",
    "provenance.missing_file",
    "provenance.verdict_fail",
    "provenance.verdict_warn",
    "provenance.scan_incomplete",
    "provenance.stale_ruleset",
    "provenance.expired",
    "provenance.model_sig_invalid",
    "provenance.model_sig_unverified",
    "provenance.model_sig_verified",
})
