"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

CHECKS: Final[frozenset[str]] = frozenset({
    "pickle.dangerous_global", "pickle.limit_exceeded", "pickle.malformed",
    "pickle.nested_pickle", "pickle.summary", "pickle.unknown_global",
    "pickle.unresolved_global", "pickle.unscannable_member", "pickle.zip_bomb",
    "pickle.zip_crc_mismatch", "pickle.zip_duplicate_member", "pickle.zip_encrypted",
    "pickle.zip_extra_data", "pickle.zip_header_mismatch", "pickle.zip_malformed",
    "pickle.zip_unsafe_member_name", "pickle.unlisted_call", "pickle.data_container",
    "pickle.npy_malformed",
})
