"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

NONFINITE: Final = "weights.nonfinite"
ZERO_LORA_B: Final = "weights.zero_lora_b"
SHAPE_MISMATCH: Final = "weights.lora_shape_mismatch"
FULL_RANK: Final = "weights.full_rank_update"
EXTREME_SCALE: Final = "weights.extreme_scale"
LAYER_CONCENTRATION: Final = "weights.layer_concentration"
VOCAB_CONCENTRATION: Final = "weights.vocab_row_concentration"
MODULE_OUTLIER: Final = "weights.module_outlier"
BASELINE_OUTLIER: Final = "weights.baseline_outlier"
SAFE_LORA: Final = "weights.safe_lora_low_alignment"
RELATIVE_UPDATE: Final = "weights.large_relative_update"
TRIGGER_TOKEN: Final = "weights.trigger_token_outlier"
DORA_NONPOSITIVE: Final = "weights.dora_nonpositive_magnitude"
DORA_GAIN: Final = "weights.dora_channel_gain"
LORA_BIAS: Final = "weights.lora_bias_dominant"
IA3_GAIN: Final = "weights.ia3_extreme_gain"
ROW_CONCENTRATION: Final = "weights.row_concentration"
SCALE_OUTLIER: Final = "weights.module_scale_outlier"

CHECKS: Final[frozenset[str]] = frozenset({
    NONFINITE, ZERO_LORA_B, SHAPE_MISMATCH, FULL_RANK, EXTREME_SCALE, LAYER_CONCENTRATION,
    VOCAB_CONCENTRATION, MODULE_OUTLIER, BASELINE_OUTLIER, SAFE_LORA, RELATIVE_UPDATE,
    TRIGGER_TOKEN, DORA_NONPOSITIVE, DORA_GAIN, LORA_BIAS, IA3_GAIN,
    ROW_CONCENTRATION,
    SCALE_OUTLIER,
})
