"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

ARCHIVE: Final = "inventory.archive"
CHAT_TEMPLATE: Final = "inventory.chat_template"
CHAT_TEMPLATE_LAYOUT: Final = "inventory.chat_template_layout"
CODE_FILE: Final = "inventory.code_file"
CONTENT_MISMATCH: Final = "inventory.content_mismatch"
EXECUTABLE: Final = "inventory.executable"
MANY_FILES: Final = "inventory.many_files"
OVERSIZED_FILE: Final = "inventory.oversized_file"
PICKLE_BESIDE_SAFETENSORS: Final = "inventory.pickle_beside_safetensors"
PICKLE_FILE: Final = "inventory.pickle_file"
PICKLE_ONLY_WEIGHTS: Final = "inventory.pickle_only_weights"
PICKLE_ONLY_WEIGHTS_PROVEN: Final = "inventory.pickle_only_weights_proven"
SPECIAL_FILE: Final = "inventory.special_file"
SYMLINK: Final = "inventory.symlink"
SYMLINK_ESCAPE: Final = "inventory.symlink_escape"
TOKENIZER_FILES: Final = "inventory.tokenizer_files"
UNKNOWN_FILE: Final = "inventory.unknown_file"
UNSAFE_PATH: Final = "inventory.unsafe_path"

CHECKS: Final[frozenset[str]] = frozenset({
    ARCHIVE, CHAT_TEMPLATE, CHAT_TEMPLATE_LAYOUT,
    CODE_FILE,
    CONTENT_MISMATCH, EXECUTABLE, MANY_FILES,
    OVERSIZED_FILE, PICKLE_BESIDE_SAFETENSORS, PICKLE_FILE,
    PICKLE_ONLY_WEIGHTS, PICKLE_ONLY_WEIGHTS_PROVEN,
    SPECIAL_FILE, SYMLINK, SYMLINK_ESCAPE,
    TOKENIZER_FILES, UNKNOWN_FILE,
    UNSAFE_PATH,
})
