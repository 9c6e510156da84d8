"""Prompt-learning adapters (prompt tuning, P-tuning, prefix tuning): their one tensor, checked.

Such an adapter changes no base weight: PEFT prepends `num_virtual_tokens` learned embeddings to
every input (prefix tuning: learned keys and values for every layer). What it ships is one tensor,
`prompt_embeddings`, whose shape the config fixes. When the tensors are exactly that, with the
shape PEFT would load, the file is read (its values are checked by the data scan like any
tensor's, and the probe measures what it does); anything else leaves it unread, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.layout import TensorTable

PROMPT_TYPES = frozenset({"PROMPT_TUNING", "P_TUNING", "PREFIX_TUNING"})
TENSOR = "prompt_embeddings"
FLOAT_DTYPES = frozenset({"F16", "BF16", "F32", "F64"})
MAX_DIM = 1 << 24


@dataclass(frozen=True)
class PromptCheck:
    summary: dict[str, JSONValue]
    read: frozenset[str]  # weights files whose every tensor was accounted for


def _int(cfg: Mapping[str, JSONValue], key: str, default: int | None = None) -> int | None:
    value = cfg.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value <= MAX_DIM:
        return None
    return value


def expected_shape(cfg: Mapping[str, JSONValue]) -> tuple[int, int] | str:
    """The shape PEFT gives `prompt_embeddings` for this config, or why it cannot be known."""
    tokens, dim = _int(cfg, "num_virtual_tokens"), _int(cfg, "token_dim")
    if tokens is None or dim is None:
        return "num_virtual_tokens and token_dim must be positive integers"
    if cfg.get("peft_type") == "PREFIX_TUNING":
        layers = _int(cfg, "num_layers")
        if layers is None:
            return "num_layers must be a positive integer"
        return tokens, layers * 2 * dim
    subs = _int(cfg, "num_transformer_submodules", 1)
    if subs is None:
        return "num_transformer_submodules must be a positive integer"
    return tokens * subs, dim


def check_prompt_tensors(cfg: Mapping[str, JSONValue], tables: Sequence[TensorTable], rel: str,
                         emit: Emitter) -> PromptCheck:
    """Account for the tensors beside a prompt-learning config; a skip for what is not."""
    want = expected_shape(cfg)
    read: set[str] = set()
    for table in tables:
        names = sorted(t.name for t in table.tensors)
        problem = None
        if isinstance(want, str):
            problem = f"{rel}: {want}"
        elif names != [TENSOR]:
            problem = (f"a {cfg.get('peft_type')} adapter holds one tensor, {TENSOR}; this file "
                       f"holds {len(names)}: {', '.join(n[:60] for n in names[:3])}")
        else:
            (info,) = table.tensors
            if info.dtype not in FLOAT_DTYPES:
                problem = f"{TENSOR} has dtype {info.dtype}, not a float type"
            elif tuple(info.shape) != want:
                problem = (f"{TENSOR} has shape {list(info.shape)}, the config makes PEFT "
                           f"expect {list(want)}: it would not load")
        if problem is None:
            read.add(table.path)
        else:
            emit.skip(table.path, f"prompt-learning tensors not read: {problem}")
    shape: JSONValue = list[JSONValue](want) if isinstance(want, tuple) else None
    summary: dict[str, JSONValue] = {
        "prompt_learning": {"expected_shape": shape, "read": list[JSONValue](sorted(read))}}
    return PromptCheck(summary=summary, read=frozenset(read))
