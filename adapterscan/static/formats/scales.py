"""The scale each format's loader applies to ΔW, resolved once per module.

- PEFT: alpha/r (alpha/√r with use_rslora), r and alpha from rank_pattern/alpha_pattern when a
  pattern key matches the module name as `peft.utils.other.get_pattern_key` matches it
  (`(.*\\.)?(key)$`); LoRA reads `lora_alpha`, LoHa and LoKr read `alpha`. The config checks
  (config/tensors.py) read the same `peft_rank`, with PEFT's defaults for missing values.
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
from dataclasses import dataclass

import numpy as np

from adapterscan.findings import JSONValue
from adapterscan.static.config.peft_match import Matcher, PatternError
from adapterscan.static.formats.model import Scale, TensorRef
from adapterscan.static.formats.tensor_reader import FLOAT_DTYPES, TensorReadError

# Regex pattern keys longer than this, or with nested quantifiers, are not evaluated (ReDoS).
_MAX_PATTERN = 200
_NESTED_QUANTIFIER = re.compile(r"\([^)]*[+*}][^)]*\)[+*{]")
_PLAIN = re.compile(r"^[A-Za-z0-9_.\-]+$")
MLX_DEFAULT_SCALE = 20.0
PEFT_DEFAULT = 8.0  # LoraConfig r and lora_alpha, LoHaConfig / LoKrConfig r and alpha


def _num(v: JSONValue, default: float, finite: bool) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float):
        return default
    return default if finite and not math.isfinite(float(v)) else float(v)


def _pattern_matches(m: Matcher, key: str, target: str) -> bool | None:
    """PEFT's `re.match(rf"(.*\\.)?({key})$", target)`; None when the pattern is not evaluated."""
    # Literal keys (the common case) match as a suffix; dots stay wildcards below, as in PEFT.
    if _PLAIN.match(key) and (target == key or target.endswith("." + key)):
        return True
    if len(key) > _MAX_PATTERN or _NESTED_QUANTIFIER.search(key):
        return None
    try:
        return m.match(rf"(.*\.)?({key})$", target)
    except PatternError:
        return None


def _pattern_value(m: Matcher, pattern: JSONValue, target: str) -> tuple[JSONValue, bool]:
    """(value, skipped) of the first matching key, in dict order as PEFT iterates."""
    if not isinstance(pattern, dict):
        return None, False
    skipped = False
    for key, value in pattern.items():
        hit = _pattern_matches(m, str(key), target)
        if hit is None:
            skipped = True
        elif hit:
            return value, skipped
    return None, skipped


@dataclass(frozen=True)
class PeftRank:
    """The r and alpha PEFT takes for one module from its config (floats, as the JSON says)."""

    r: float
    alpha: float
    rslora: bool
    source: str

    @property
    def value(self) -> float:
        """PEFT's scaling: alpha / r, or alpha / sqrt(r) with rslora (0 for a rank PEFT
        rejects)."""
        if self.r <= 0:
            return 0.0
        return self.alpha / math.sqrt(self.r) if self.rslora else self.alpha / self.r


def peft_rank(config: Mapping[str, JSONValue], target: str | None, m: Matcher,
              alpha_key: str = "lora_alpha", *, r_default: float = PEFT_DEFAULT,
              alpha_default: float | None = PEFT_DEFAULT, finite: bool = False) -> PeftRank:
    """r and alpha for module `target` (None: the config's own, without patterns).

    A missing or non-numeric value takes PEFT's default (8 for r, lora_alpha and alpha) unless
    other defaults are given (alpha_default None: r). Infinite values (json reads 1e999 as inf)
    stay, as PEFT would apply them, unless `finite` asks for the defaults instead.
    """
    r = _num(config.get("r"), r_default, finite)
    alpha = _num(config.get(alpha_key), r if alpha_default is None else alpha_default, finite)
    source = "config"
    rslora = config.get("use_rslora") is True
    if target is None:
        return PeftRank(r, alpha, rslora, source)
    rv, skip_r = _pattern_value(m, config.get("rank_pattern"), target)
    if rv is not None:
        r, source = _num(rv, r, finite), "rank_pattern"
    av, skip_a = _pattern_value(m, config.get("alpha_pattern"), target)
    if av is not None:
        alpha, source = (_num(av, alpha, finite),
                         "alpha_pattern" if rv is None else "rank+alpha_pattern")
    if skip_r or skip_a:
        source += "+pattern-skipped"
    return PeftRank(r, alpha, rslora, source)


def peft_scale(config: Mapping[str, JSONValue] | None, target: str, tensor_rank: int,
               alpha_key: str = "lora_alpha", m: Matcher | None = None) -> Scale:
    """The scale PEFT applies to module `target`, for the weight analysis: 1 without a config;
    a missing or infinite r is the tensors' rank and a missing or infinite alpha is r (the
    statistics stay measurable; the config check reports such values, AS318)."""
    if config is None:
        return Scale(1.0, tensor_rank, float(tensor_rank), "default")
    found = peft_rank(config, target, m or Matcher(), alpha_key, r_default=float(tensor_rank),
                      alpha_default=None, finite=True)
    if found.r <= 0:
        return Scale(1.0, int(found.r), found.alpha, "invalid-r")
    return Scale(found.value, int(found.r), found.alpha,
                 found.source + ("+rslora" if found.rslora else ""))


def adalora_scale(config: Mapping[str, JSONValue], tensor_rank: int) -> Scale:
    """AdaLoRA's scale: lora_alpha (r when it is not positive) over the module's rank as loaded,
    which is the stored tensors' (PEFT saves them cut to the kept ranks and fills `ranknum` with
    r on load; adalora/layer.py divides by ranknum + 1e-5). rank_pattern holds masks here, not
    ranks, and rslora does not apply."""
    r = float(tensor_rank)
    alpha = _num(config.get("lora_alpha"), 8.0, True)
    scaling = alpha if alpha > 0 else r
    return Scale(scaling / (r + 1e-5), tensor_rank, alpha, "config (adalora)")


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
