"""Check names the format readers emit; each has a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

GGUF_MALFORMED: Final = "gguf.malformed"
GGUF_TOKENIZER: Final = "gguf.tokenizer_metadata"
GGUF_TRAILING: Final = "gguf.trailing_data"
KOHYA_TRAINING: Final = "kohya.training_metadata"

CHECKS: Final[frozenset[str]] = frozenset({
    GGUF_MALFORMED, GGUF_TOKENIZER, GGUF_TRAILING, KOHYA_TRAINING,
})
