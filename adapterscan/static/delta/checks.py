"""Check names the delta scan of a full checkpoint emits; each has a rule in signatures/."""

from typing import Final

TENSOR_ADDED: Final = "delta.tensor_added"
TENSOR_REMOVED: Final = "delta.tensor_removed"
TENSOR_RESHAPED: Final = "delta.tensor_reshaped"
TENSOR_DTYPE: Final = "delta.tensor_dtype_changed"
TOKEN_ROWS: Final = "delta.token_rows_rewritten"
MERGED_LORA: Final = "delta.merged_lora"

CHECKS: Final[frozenset[str]] = frozenset({
    TENSOR_ADDED, TENSOR_REMOVED, TENSOR_RESHAPED, TENSOR_DTYPE, TOKEN_ROWS, MERGED_LORA,
})
