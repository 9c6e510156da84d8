"""Pair PEFT LoRA tensors into modules and resolve each module's real scale from the config.

Tensor keys look like `base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight` (an
adapter name may sit before `.weight`); embeddings use `lora_embedding_A`/`lora_embedding_B`
(A: r×vocab, B: dim×r, ΔW_emb = (s·B·A)ᵀ). The scale is PEFT's: alpha/r, alpha/√r with
use_rslora, with r and alpha taken from rank_pattern/alpha_pattern when a pattern key matches the
module name the way `peft.utils.other.get_pattern_key` matches it (`(.*\\.)?(key)$`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapterscan.findings import JSONValue
from adapterscan.static.model import SafetensorsHeader, TensorInfo
from adapterscan.static.peft_names import PREFIX, parse_lora_key
from adapterscan.static.tensor_reader import RawTensor, read_tensor

_LAYER = re.compile(r"\.(?:layers|h|layer|blocks|block)\.(\d+)\.")
# Regex pattern keys longer than this, or with nested quantifiers, are not evaluated (ReDoS).
_MAX_PATTERN = 200
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*}][^)]*\)[+*{]")
_PLAIN = re.compile(r"^[A-Za-z0-9_.\-]+$")


@dataclass(frozen=True)
class TensorRef:
    file: str  # relative to the scanned root
    path: Path
    header: SafetensorsHeader
    info: TensorInfo

    def read(self) -> RawTensor:
        return read_tensor(self.path, self.header, self.info)


@dataclass(frozen=True)
class LoraModule:
    name: str  # as in the adapter file, without the lora_A/lora_B suffix
    a: TensorRef | None
    b: TensorRef | None
    embedding: bool
    bias: TensorRef | None = None  # lora_B.bias (PEFT lora_bias): s·b is added to every output

    @property
    def target(self) -> str:
        """The module name inside the base model (`model.layers.0.self_attn.q_proj`)."""
        return self.name[len(PREFIX):] if self.name.startswith(PREFIX) else self.name

    @property
    def module_type(self) -> str:
        return self.name.rsplit(".", 1)[-1]

    @property
    def layer(self) -> int | None:
        m = _LAYER.search("." + self.name + ".")
        return int(m.group(1)) if m else None


def collect_modules(headers: Mapping[str, SafetensorsHeader],
                    root: Path) -> tuple[list[LoraModule], list[TensorRef]]:
    """LoRA modules by name, plus every tensor that is not a LoRA factor (other tensors)."""
    found: dict[str, dict[str, TensorRef]] = {}
    others: list[TensorRef] = []
    for file in sorted(headers):
        header = headers[file]
        for info in header.tensors:
            parsed = parse_lora_key(info.name)
            ref = TensorRef(file, root / file, header, info)
            # DoRA magnitudes and any bias but lora_B's (PEFT's lora_bias) are not factors.
            if parsed is None or parsed[1] == "lora_magnitude_vector" or (
                    parsed[2] == "bias" and parsed[1] != "lora_B"):
                others.append(ref)
                continue
            module, kind, param = parsed
            if param == "bias":
                kind += ".bias"
            slot = found.setdefault(module, {})
            if kind in slot:  # the same module twice (two adapter names or two files)
                others.append(ref)
                continue
            slot[kind] = ref
    modules = []
    for name in sorted(found):
        slot = found[name]
        emb = "lora_embedding_A" in slot or "lora_embedding_B" in slot
        a = slot.get("lora_embedding_A" if emb else "lora_A")
        b = slot.get("lora_embedding_B" if emb else "lora_B")
        modules.append(LoraModule(name=name, a=a, b=b, embedding=emb,
                                  bias=slot.get("lora_B.bias")))
    return modules, others


@dataclass(frozen=True)
class Scale:
    value: float
    r: int
    alpha: float
    source: str  # "config", "rank_pattern", "alpha_pattern", "default", "pattern-skipped"


def _num(v: JSONValue, default: float) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(float(v)):
        return default
    return float(v)


def _pattern_matches(key: str, target: str) -> bool | None:
    """PEFT's `re.match(rf"(.*\\.)?({key})$", target)`; None when the pattern is not evaluated."""
    # Literal keys (the common case) match as a suffix; dots stay wildcards below, as in PEFT.
    if _PLAIN.match(key) and (target == key or target.endswith("." + key)):
        return True
    if len(key) > _MAX_PATTERN or _NESTED_QUANTIFIER.search(key):
        return None
    try:
        return re.match(rf"(.*\.)?({key})$", target) is not None
    except re.error:
        return None


def _pattern_value(pattern: JSONValue, target: str) -> tuple[JSONValue, bool]:
    """(value, skipped) of the first matching key, in dict order as PEFT iterates."""
    if not isinstance(pattern, dict):
        return None, False
    skipped = False
    for key, value in pattern.items():
        hit = _pattern_matches(str(key), target)
        if hit is None:
            skipped = True
        elif hit:
            return value, skipped
    return None, skipped


def resolve_scale(config: Mapping[str, JSONValue] | None, module: LoraModule,
                  tensor_rank: int) -> Scale:
    if config is None:
        return Scale(1.0, tensor_rank, float(tensor_rank), "default")
    r = _num(config.get("r"), float(tensor_rank))
    alpha = _num(config.get("lora_alpha"), r)
    source = "config"
    rv, skip_r = _pattern_value(config.get("rank_pattern"), module.target)
    if rv is not None:
        r, source = _num(rv, r), "rank_pattern"
    av, skip_a = _pattern_value(config.get("alpha_pattern"), module.target)
    if av is not None:
        alpha, source = _num(av, alpha), "alpha_pattern" if rv is None else "rank+alpha_pattern"
    if skip_r or skip_a:
        source += "+pattern-skipped"
    if r <= 0:
        return Scale(1.0, int(r), alpha, "invalid-r")
    rslora = config.get("use_rslora") is True
    value = alpha / math.sqrt(r) if rslora else alpha / r
    return Scale(value, int(r), alpha, source + ("+rslora" if rslora else ""))
