"""Prompt-learning adapters (prompt tuning, P-tuning, prefix tuning): their one tensor, checked.

Such an adapter changes no base weight: PEFT prepends `num_virtual_tokens` learned embeddings to
every input (prefix tuning: learned keys and values for every layer). What it ships is one tensor,
`prompt_embeddings`, whose shape the config fixes, and, for a classification or QA task type, the
task head PEFT keeps trainable (`base_model.classifier.weight`, ...: a layer the task model
creates at random on the base, not a base weight; reported as AS336 like a LoRA's). When the
tensors are exactly that, with the shape PEFT would load, the file is read (its values are
checked by the data scan like any tensor's, and the probe measures what it does); anything else
leaves it unread, with the reason.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.config.checks import TASK_HEAD
from adapterscan.static.config.peft_match import task_heads
from adapterscan.static.layout import TensorInfo, TensorTable

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


def is_head_tensor(name: str, heads: frozenset[str]) -> bool:
    """A weight or bias of one of the task's head modules, as PEFT saves it
    (`base_model.classifier.weight`, `base_model.classifier.out_proj.bias`, ...)."""
    parts = name.split(".")
    return (len(parts) >= 3 and parts[0] == "base_model" and parts[-1] in ("weight", "bias")
            and any(p in heads for p in parts[1:-1]))


def check_prompt_tensors(cfg: Mapping[str, JSONValue], tables: Sequence[TensorTable], rel: str,
                         emit: Emitter) -> PromptCheck:
    """Account for the tensors beside a prompt-learning config; a skip for what is not."""
    want = expected_shape(cfg)
    heads = task_heads(cfg)
    read: set[str] = set()
    for table in tables:
        head = [t for t in table.tensors if is_head_tensor(t.name, heads)]
        names = sorted(t.name for t in table.tensors if not is_head_tensor(t.name, heads))
        problem = None
        if isinstance(want, str):
            problem = f"{rel}: {want}"
        elif names != [TENSOR]:
            what = f" and the {cfg.get('task_type')} head" if heads else ""
            problem = (f"a {cfg.get('peft_type')} adapter holds one tensor, {TENSOR}{what}; "
                       f"this file holds {len(names)} other tensor(s): "
                       f"{', '.join(n[:60] for n in names[:3])}")
        else:
            info = next(t for t in table.tensors if t.name == TENSOR)
            odd = [t.name for t in head if t.dtype not in FLOAT_DTYPES]
            if info.dtype not in FLOAT_DTYPES:
                problem = f"{TENSOR} has dtype {info.dtype}, not a float type"
            elif tuple(info.shape) != want:
                problem = (f"{TENSOR} has shape {list(info.shape)}, the config makes PEFT "
                           f"expect {list(want)}: it would not load")
            elif odd:
                problem = f"task-head tensor {odd[0][:80]} is not a float type"
        if problem is None:
            read.add(table.path)
            if head:
                _report_head(cfg, table.path, head, heads, emit)
        else:
            emit.skip(table.path, f"prompt-learning tensors not read: {problem}")
    shape: JSONValue = list[JSONValue](want) if isinstance(want, tuple) else None
    summary: dict[str, JSONValue] = {
        "prompt_learning": {"expected_shape": shape, "read": list[JSONValue](sorted(read))}}
    return PromptCheck(summary=summary, read=frozenset(read))


def _report_head(cfg: Mapping[str, JSONValue], path: str, head: Sequence[TensorInfo],
                 heads: frozenset[str], emit: Emitter) -> None:
    rows: list[JSONValue] = [{"tensor": t.name, "shape": list[JSONValue](t.shape)}
                             for t in head[:20]]
    emit.emit(TASK_HEAD, f"{len(head)} tensor(s) of the {cfg.get('task_type')} task head "
              f"({', '.join(sorted(heads))}), which PEFT's task type keeps trainable beside the "
              "prompt: loading replaces the head the task model creates at random on the base, "
              "not a pretrained base weight", file=path, tensor=head[0].name,
              evidence={"tensors": rows, "count": len(head), "task_type": cfg.get("task_type"),
                        "heads": list[JSONValue](sorted(heads))})
