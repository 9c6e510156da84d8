"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

HEADER_TRIAGE_REJECTED: Final = "hub.header_triage_rejected"
BASE_MODEL_MISMATCH: Final = "hub.base_model_mismatch"
SCAN_PENDING: Final = "hub.scan_pending"
SCAN_FLAGGED: Final = "hub.scan_flagged"
SCAN_CLEAN: Final = "hub.scan_clean"
LISTING_INCONSISTENT: Final = "hub.listing_inconsistent"
UNSAFE_PATH: Final = "hub.unsafe_path"
UNPINNED: Final = "base_model.unpinned"

# AS101: bytes that do not match the digest their origin announced (the Hub fetcher on download,
# the pipeline when its own hash of a file disagrees).
SHA256_MISMATCH: Final = "integrity.sha256_mismatch"

CHECKS: Final[frozenset[str]] = frozenset({
    SHA256_MISMATCH,
    HEADER_TRIAGE_REJECTED,
    BASE_MODEL_MISMATCH,
    SCAN_PENDING,
    SCAN_FLAGGED,
    SCAN_CLEAN,
    LISTING_INCONSISTENT,
    UNSAFE_PATH,
    # --base auto named the base without a commit sha (fetch/base_model.py)
    UNPINNED,
})
