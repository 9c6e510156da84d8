"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

CHECKS: Final[frozenset[str]] = frozenset({
    "inventory.archive", "inventory.chat_template", "inventory.chat_template_layout",
    "inventory.code_file",
    "inventory.content_mismatch", "inventory.executable", "inventory.many_files",
    "inventory.oversized_file", "inventory.pickle_beside_safetensors", "inventory.pickle_file",
    "inventory.pickle_only_weights", "inventory.pickle_only_weights_proven",
    "inventory.special_file", "inventory.symlink", "inventory.symlink_escape",
    "inventory.tokenizer_files", "inventory.unknown_file",
    "inventory.unsafe_path",
})
