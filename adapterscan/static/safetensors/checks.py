"""Check names the safetensors analyzer emits; each has a rule in signatures/rules/AS2xx.toml."""

from typing import Final

# Header framing (AS201-AS205, AS229).
TRUNCATED: Final = "safetensors.truncated"
HEADER_TOO_LARGE: Final = "safetensors.header_too_large"
HEADER_PAST_EOF: Final = "safetensors.header_past_eof"
HEADER_NOT_UTF8: Final = "safetensors.header_not_utf8"
HEADER_INVALID_JSON: Final = "safetensors.header_invalid_json"
HEADER_OVER_CAP: Final = "safetensors.header_over_cap"
# Header structure (AS206-AS216, AS227, AS228).
DUPLICATE_KEY: Final = "safetensors.duplicate_key"
BAD_STRUCTURE: Final = "safetensors.bad_structure"
UNKNOWN_FIELD: Final = "safetensors.unknown_field"
BAD_METADATA: Final = "safetensors.bad_metadata"
UNKNOWN_DTYPE: Final = "safetensors.unknown_dtype"
BAD_SHAPE: Final = "safetensors.bad_shape"
BAD_OFFSETS: Final = "safetensors.bad_offsets"
OFFSETS_NOT_CONTIGUOUS: Final = "safetensors.offsets_not_contiguous"
OFFSETS_PAST_END: Final = "safetensors.offsets_past_end"
SIZE_MISMATCH: Final = "safetensors.size_mismatch"
TRAILING_BYTES: Final = "safetensors.trailing_bytes"
NO_TENSORS: Final = "safetensors.no_tensors"
TOO_MANY_TENSORS: Final = "safetensors.too_many_tensors"
# Writer oddities, informational (AS217-AS219).
UNSORTED_OFFSETS: Final = "safetensors.unsorted_offsets"
HEADER_PADDING: Final = "safetensors.header_padding"
NONCANONICAL_JSON: Final = "safetensors.noncanonical_json"
# Tensor names (AS220-AS223).
NAME_PATH: Final = "safetensors.name_path"
NAME_CONTROL: Final = "safetensors.name_control"
NAME_NON_ASCII: Final = "safetensors.name_non_ascii"
NAME_TOO_LONG: Final = "safetensors.name_too_long"
# __metadata__ content (AS224-AS226).
METADATA_LARGE: Final = "safetensors.metadata_large"
METADATA_BINARY: Final = "safetensors.metadata_binary"
METADATA_CODE: Final = "safetensors.metadata_code"
# Tensor data (AS230-AS233).
NONFINITE: Final = "safetensors.nonfinite"
INTEGER_TENSOR: Final = "safetensors.integer_tensor"
MAGIC_AT_TENSOR_START: Final = "safetensors.magic_at_tensor_start"
EMBEDDED_MAGIC: Final = "safetensors.embedded_magic"

CHECKS: Final[frozenset[str]] = frozenset({
    TRUNCATED, HEADER_TOO_LARGE, HEADER_PAST_EOF, HEADER_NOT_UTF8, HEADER_INVALID_JSON,
    HEADER_OVER_CAP, DUPLICATE_KEY, BAD_STRUCTURE, UNKNOWN_FIELD, BAD_METADATA, UNKNOWN_DTYPE,
    BAD_SHAPE, BAD_OFFSETS, OFFSETS_NOT_CONTIGUOUS, OFFSETS_PAST_END, SIZE_MISMATCH,
    TRAILING_BYTES, NO_TENSORS, TOO_MANY_TENSORS, UNSORTED_OFFSETS, HEADER_PADDING,
    NONCANONICAL_JSON, NAME_PATH, NAME_CONTROL, NAME_NON_ASCII, NAME_TOO_LONG, METADATA_LARGE,
    METADATA_BINARY, METADATA_CODE, NONFINITE, INTEGER_TENSOR, MAGIC_AT_TENSOR_START,
    EMBEDDED_MAGIC,
})
