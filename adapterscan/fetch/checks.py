"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

# The Hub fetcher also emits "integrity.sha256_mismatch" (AS101, declared by pipeline_checks) when
# a download does not match the digest the Hub announced.
CHECKS: Final[frozenset[str]] = frozenset({
    "hub.header_triage_rejected",
    "hub.base_model_mismatch",
    "hub.scan_pending",
    "hub.scan_flagged",
    "hub.scan_clean",
    "hub.listing_inconsistent",
    "hub.unsafe_path",
    # --base auto named the base without a commit sha (fetch/base_model.py)
    "base_model.unpinned",
})
