"""The scale each format's loader applies to ΔW, resolved once per module.

- PEFT: alpha/r (alpha/√r with use_rslora), r and alpha from rank_pattern/alpha_pattern when a
  pattern key matches the module name as `peft.utils.other.get_pattern_key` matches it
  (`(.*\\.)?(key)$`); LoRA reads `lora_alpha`, LoHa and LoKr read `alpha`.
- kohya / LyCORIS / diffusers: the module's `.alpha` tensor over the rank (LoRA: lora_down's
  rows; LoHa: hada_w1_b's rows; LoKr: the rank of its decomposed side, and 1 when both sides are
  full, as ComfyUI and sd-webui apply it). Without an alpha tensor the scale is 1.
- MLX-LM: `lora_parameters.scale` from its adapter_config.json (mlx-lm's default 20).
- GGUF (llama.cpp): `adapter.lora.alpha` / r, or 1 when alpha is 0 or absent.

A NaN or infinite alpha gives a NaN/Inf scale here; the weight analysis reports it (AS501).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping

import numpy as np

from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import Scale, TensorRef
from adapterscan.static.formats.tensor_reader import FLOAT_DTYPES, TensorReadError

# Regex pattern keys longer than this, or with nested quantifiers, are not evaluated (ReDoS).
_MAX_PATTERN = 200
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*}][^)]*\)[+*{]")
_PLAIN = re.compile(r"^[A-Za-z0-9_.\-]+$")
MLX_DEFAULT_SCALE = 20.0


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


def peft_scale(config: Mapping[str, JSONValue] | None, target: str, tensor_rank: int,
               alpha_key: str = "lora_alpha") -> Scale:
    if config is None:
        return Scale(1.0, tensor_rank, float(tensor_rank), "default")
    r = _num(config.get("r"), float(tensor_rank))
    alpha = _num(config.get(alpha_key), r)
    source = "config"
    rv, skip_r = _pattern_value(config.get("rank_pattern"), target)
    if rv is not None:
        r, source = _num(rv, r), "rank_pattern"
    av, skip_a = _pattern_value(config.get("alpha_pattern"), target)
    if av is not None:
        alpha, source = _num(av, alpha), "alpha_pattern" if rv is None else "rank+alpha_pattern"
    if skip_r or skip_a:
        source += "+pattern-skipped"
    if r <= 0:
        return Scale(1.0, int(r), alpha, "invalid-r")
    rslora = config.get("use_rslora") is True
    value = alpha / math.sqrt(r) if rslora else alpha / r
    return Scale(value, int(r), alpha, source + ("+rslora" if rslora else ""))


class AlphaError(Exception):
    """An alpha tensor that is not one float."""


_INTS = {"I8": "<i1", "U8": "<u1", "I16": "<i2", "I32": "<i4", "I64": "<i8", "BOOL": "<u1"}


def read_alpha(ref: TensorRef) -> float:
    """The value of a scalar alpha (or flag) tensor: a bounded read of one element."""
    if ref.info.dtype in _INTS and math.prod(ref.info.shape) == 1 \
            and ref.info.end - ref.info.begin == np.dtype(_INTS[ref.info.dtype]).itemsize:
        with ref.path.open("rb") as fh:
            fh.seek(ref.header.data_start + ref.info.begin)
            data = fh.read(ref.info.end - ref.info.begin)
        if len(data) != ref.info.end - ref.info.begin:
            raise AlphaError(f"alpha tensor {ref.info.name}: short read")
        return float(np.frombuffer(data, dtype=_INTS[ref.info.dtype])[0])
    if ref.info.dtype not in FLOAT_DTYPES or ref.info.dtype == "Q8_0":
        raise AlphaError(f"alpha tensor {ref.info.name} has dtype {ref.info.dtype}")
    if math.prod(ref.info.shape) != 1:
        raise AlphaError(f"alpha tensor {ref.info.name} has shape {list(ref.info.shape)}, "
                         "not a scalar")
    try:
        raw = ref.read()
    except (OSError, TensorReadError) as exc:
        raise AlphaError(f"alpha tensor {ref.info.name}: {exc}") from exc
    with np.errstate(all="ignore"):
        return float(raw.dense().ravel()[0])


def alpha_scale(alpha: float | None, rank: int | None, ref: TensorRef | None) -> Scale:
    """kohya / LyCORIS / diffusers: alpha / rank; 1 without alpha or without a rank."""
    if rank is None or rank <= 0:
        return Scale(1.0, rank or 0, alpha if alpha is not None else 0.0,
                     "no decomposed rank: scale 1", ref)
    if alpha is None:
        return Scale(1.0, rank, float(rank), "no alpha tensor: scale 1")
    if not math.isfinite(alpha):
        return Scale(alpha, rank, alpha, "alpha tensor", ref)
    return Scale(alpha / rank, rank, alpha, "alpha tensor", ref)


def mlx_scale(config: Mapping[str, JSONValue] | None, rank: int) -> Scale:
    params = config.get("lora_parameters") if config is not None else None
    if not isinstance(params, dict):
        return Scale(MLX_DEFAULT_SCALE, rank, MLX_DEFAULT_SCALE * rank,
                     "mlx-lm default (no lora_parameters)")
    for key in ("scale", "alpha"):
        v = params.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            return Scale(float(v), rank, float(v) * rank, f"mlx lora_parameters.{key}")
    return Scale(MLX_DEFAULT_SCALE, rank, MLX_DEFAULT_SCALE * rank, "mlx-lm default")


def gguf_scale(alpha: float | None, rank: int) -> Scale:
    """llama.cpp: scale = alpha / rank when alpha != 0, else 1 (times the user's --lora-scaled)."""
    if alpha is None or alpha == 0.0 or rank <= 0:
        return Scale(1.0, rank, 0.0 if alpha is None else alpha, "gguf: no adapter.lora.alpha")
    return Scale(alpha / rank, rank, alpha, "gguf adapter.lora.alpha")
