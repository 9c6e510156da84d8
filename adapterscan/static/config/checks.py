"""Check names this analyzer emits; each must have a rule in signatures/ (see rules/catalog.py)."""

from typing import Final

MISSING: Final = "adapter_config.missing"
INVALID: Final = "adapter_config.invalid"
DUPLICATE_KEY: Final = "adapter_config.duplicate_key"
BAD_VALUE: Final = "adapter_config.bad_value"
IMPORT_PARENT_LIBRARY: Final = "adapter_config.import_parent_library"
IMPORT_MEGATRON_CORE: Final = "adapter_config.import_megatron_core"
IMPORT_ALLOWLISTED: Final = "adapter_config.import_allowlisted"
UNKNOWN_KEY: Final = "adapter_config.unknown_key"
UNKNOWN_PEFT_TYPE: Final = "adapter_config.unknown_peft_type"
UNUSUAL_TASK_TYPE: Final = "adapter_config.unusual_task_type"
MODULES_TO_SAVE: Final = "adapter_config.modules_to_save"
MODULES_TO_SAVE_OUTPUT: Final = "adapter_config.modules_to_save_output"
SAVE_EMBEDDING_LAYERS: Final = "adapter_config.save_embedding_layers"
FULL_WEIGHT_TENSOR: Final = "adapter_config.full_weight_tensor"
TASK_HEAD: Final = "adapter_config.task_head"
SENSITIVE_TARGET: Final = "adapter_config.sensitive_target"
TRAINABLE_TOKEN_INDICES: Final = "adapter_config.trainable_token_indices"
LAYER_REPLICATION: Final = "adapter_config.layer_replication"
EXTREME_SCALE: Final = "adapter_config.extreme_scale"
RANK_MISMATCH: Final = "adapter_config.rank_mismatch"
FULL_RANK: Final = "adapter_config.full_rank"
INIT_MODIFIES_BASE: Final = "adapter_config.init_modifies_base"
LOCAL_PATH: Final = "adapter_config.local_path"
ORPHAN_TENSOR: Final = "adapter_config.orphan_tensor"
ZERO_LORA_B: Final = "adapter_config.zero_lora_b"
NESTED_PREFIX: Final = "adapter_config.nested_prefix"
TARGET_WITHOUT_TENSORS: Final = "adapter_config.target_without_tensors"
INCOMPLETE_PAIR: Final = "adapter_config.incomplete_pair"
SHAPE_MISMATCH: Final = "adapter_config.shape_mismatch"
DTYPE_MIXTURE: Final = "adapter_config.dtype_mixture"
NO_BASE_MODEL: Final = "adapter_config.no_base_model"
UNPINNED_REVISION: Final = "adapter_config.unpinned_revision"
TRAINING_MODE: Final = "adapter_config.training_mode"
DORA: Final = "adapter_config.dora"
BIAS_TRAINED: Final = "adapter_config.bias_trained"
FAN_IN_FAN_OUT: Final = "adapter_config.fan_in_fan_out"

CHECKS: Final[frozenset[str]] = frozenset({
    MISSING,
    INVALID,
    DUPLICATE_KEY,
    BAD_VALUE,
    IMPORT_PARENT_LIBRARY,
    IMPORT_MEGATRON_CORE,
    IMPORT_ALLOWLISTED,
    UNKNOWN_KEY,
    UNKNOWN_PEFT_TYPE,
    UNUSUAL_TASK_TYPE,
    MODULES_TO_SAVE,
    MODULES_TO_SAVE_OUTPUT,
    SAVE_EMBEDDING_LAYERS,
    FULL_WEIGHT_TENSOR,
    TASK_HEAD,
    SENSITIVE_TARGET,
    TRAINABLE_TOKEN_INDICES,
    LAYER_REPLICATION,
    EXTREME_SCALE,
    RANK_MISMATCH,
    FULL_RANK,
    INIT_MODIFIES_BASE,
    LOCAL_PATH,
    ORPHAN_TENSOR,
    ZERO_LORA_B,
    NESTED_PREFIX,
    TARGET_WITHOUT_TENSORS,
    INCOMPLETE_PAIR,
    SHAPE_MISMATCH,
    DTYPE_MIXTURE,
    NO_BASE_MODEL,
    UNPINNED_REVISION,
    TRAINING_MODE,
    DORA,
    BIAS_TRAINED,
    FAN_IN_FAN_OUT,
})
