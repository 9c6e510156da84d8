"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

SIGNATURE_INVALID: Final = "provenance.signature_invalid"
STATEMENT_INVALID: Final = "provenance.statement_invalid"
DIGEST_MISMATCH: Final = "provenance.digest_mismatch"
EXTRA_FILE: Final = "provenance.extra_file"
MISSING_FILE: Final = "provenance.missing_file"
VERDICT_FAIL: Final = "provenance.verdict_fail"
VERDICT_WARN: Final = "provenance.verdict_warn"
SCAN_INCOMPLETE: Final = "provenance.scan_incomplete"
STALE_RULESET: Final = "provenance.stale_ruleset"
EXPIRED: Final = "provenance.expired"
MODEL_SIG_INVALID: Final = "provenance.model_sig_invalid"
MODEL_SIG_UNVERIFIED: Final = "provenance.model_sig_unverified"
MODEL_SIG_VERIFIED: Final = "provenance.model_sig_verified"

CHECKS: Final[frozenset[str]] = frozenset({
    SIGNATURE_INVALID,
    STATEMENT_INVALID,
    DIGEST_MISMATCH,
    EXTRA_FILE,
    MISSING_FILE,
    VERDICT_FAIL,
    VERDICT_WARN,
    SCAN_INCOMPLETE,
    STALE_RULESET,
    EXPIRED,
    MODEL_SIG_INVALID,
    MODEL_SIG_UNVERIFIED,
    MODEL_SIG_VERIFIED,
})
