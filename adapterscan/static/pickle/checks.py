"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

DANGEROUS_GLOBAL: Final = "pickle.dangerous_global"
LIMIT_EXCEEDED: Final = "pickle.limit_exceeded"
MALFORMED: Final = "pickle.malformed"
NESTED_PICKLE: Final = "pickle.nested_pickle"
SUMMARY: Final = "pickle.summary"
UNKNOWN_GLOBAL: Final = "pickle.unknown_global"
UNRESOLVED_GLOBAL: Final = "pickle.unresolved_global"
UNSCANNABLE_MEMBER: Final = "pickle.unscannable_member"
ZIP_BOMB: Final = "pickle.zip_bomb"
ZIP_CRC_MISMATCH: Final = "pickle.zip_crc_mismatch"
ZIP_DUPLICATE_MEMBER: Final = "pickle.zip_duplicate_member"
ZIP_ENCRYPTED: Final = "pickle.zip_encrypted"
ZIP_EXTRA_DATA: Final = "pickle.zip_extra_data"
ZIP_HEADER_MISMATCH: Final = "pickle.zip_header_mismatch"
ZIP_MALFORMED: Final = "pickle.zip_malformed"
ZIP_UNSAFE_MEMBER_NAME: Final = "pickle.zip_unsafe_member_name"
UNLISTED_CALL: Final = "pickle.unlisted_call"
DATA_CONTAINER: Final = "pickle.data_container"
NPY_MALFORMED: Final = "pickle.npy_malformed"

CHECKS: Final[frozenset[str]] = frozenset({
    DANGEROUS_GLOBAL, LIMIT_EXCEEDED, MALFORMED,
    NESTED_PICKLE, SUMMARY, UNKNOWN_GLOBAL,
    UNRESOLVED_GLOBAL, UNSCANNABLE_MEMBER, ZIP_BOMB,
    ZIP_CRC_MISMATCH, ZIP_DUPLICATE_MEMBER, ZIP_ENCRYPTED,
    ZIP_EXTRA_DATA, ZIP_HEADER_MISMATCH, ZIP_MALFORMED,
    ZIP_UNSAFE_MEMBER_NAME, UNLISTED_CALL, DATA_CONTAINER,
    NPY_MALFORMED,
})
