"""Which modules of one adapter are compared with each other, and the depth trend among them.

A family is a module type and shape (`q_proj:4096x4096`), split further by layer stack when the
adapter has several (a vision tower's `layers.3.q_proj` is not a language model's), by MoE
expert (`experts.5`), by algorithm in a LyCORIS file that mixes them, and by role where one type
sits under several parents (a UNet's
self-attention `attn1.to_q` and cross-attention `attn2.to_q` share a shape but not a role: on
real adapters their updates differ ×10 in size, which made one look like an outlier of the
other). Statistics drift with depth in honest adapters (later layers train
larger updates), so a within-family comparison first removes a Theil–Sen line over the layer
index: the median of the pairwise slopes, which a few planted modules cannot tilt (breakdown
point 29%).
"""

from __future__ import annotations

import re
import statistics
from collections.abc import Mapping, Sequence

from adapterscan.static.weights.baseline import module_key
from adapterscan.static.weights.stats import ModuleResult

_LAYER = re.compile(r"\.(?:layers|h|layer|blocks|block|blk)\.\d+\.")
_EXPERT = re.compile(r"\.experts?\.(\d+)\.")
_PEFT_PREFIX = "base_model.model."
MIN_TREND_LAYERS = 3


def _stack(r: ModuleResult) -> str:
    """The module path before its layer index (`model.vision_tower.encoder.layers`), or ""."""
    name = "." + r.module.target + "."
    m = _LAYER.search(name)
    return name[1:m.start()].removeprefix(_PEFT_PREFIX) if m else ""


def _parent(r: ModuleResult) -> str:
    """The module's parent path segment (`attn1` of `...attn1.to_q`; `to_out` of `to_out.0`),
    "" when it is a number or absent."""
    parts = r.module.target.split(".")
    parent = parts[-2] if len(parts) > 1 else ""
    return "" if parent.isdigit() else parent


def _algorithm_tags(results: Sequence[ModuleResult]) -> list[str]:
    """"loha " etc. per module when the adapter mixes algorithms, else "": a LyCORIS file may
    mix them, and a LoKr and a LoHa update of one layer are sized by their parameterisation,
    not by what they learned, so they are never compared with each other."""
    if len({r.module.algorithm for r in results}) < 2:
        return [""] * len(results)
    return [f"{r.module.algorithm.value} " for r in results]


def shape_keys(results: Sequence[ModuleResult]) -> list[str]:
    """Each module's fallback group when its family is too small: its shape (and algorithm)."""
    return [f"{tag}{r.pair.out_features}x{r.pair.in_features}"
            for r, tag in zip(results, _algorithm_tags(results), strict=True)]


def layer_keys(results: Sequence[ModuleResult]) -> list[str | None]:
    """Each module's last-resort group: its layer (and algorithm); None without a layer."""
    return [None if r.module.layer is None else f"{tag}layer {r.module.layer}"
            for r, tag in zip(results, _algorithm_tags(results), strict=True)]


def family_keys(results: Sequence[ModuleResult]) -> list[str]:
    """Each module's family key: type and shape, plus its parent where modules of that type sit
    under several parents, plus its stack when the adapter has several, plus its expert index in
    MoE layers."""
    stacks = [_stack(r) for r in results]
    several = len({s for s in stacks if s}) > 1
    tags = _algorithm_tags(results)
    parents: dict[str, set[str]] = {}
    for r in results:
        parents.setdefault(r.module.module_type, set()).add(_parent(r))
    keys = []
    for r, stack, tag in zip(results, stacks, tags, strict=True):
        key = module_key(r.module.module_type, r.pair.out_features, r.pair.in_features)
        if len(parents[r.module.module_type]) > 1 and _parent(r):
            key = f"{_parent(r)}.{key}"
        key = tag + key
        if several and stack:
            key += f" in {stack}"
        expert = _EXPERT.search("." + r.module.target + ".")
        if expert:
            key += f" expert {expert.group(1)}"
        keys.append(key)
    return keys


def detrended(values: Mapping[int, float | None], layers: Mapping[int, int | None]
              ) -> dict[int, float | None]:
    """`values` minus their Theil–Sen line over the layer index (centred on the median layer);
    unchanged when a module has no layer or fewer than MIN_TREND_LAYERS layers are present."""
    pts = [(layers[i], v) for i, v in values.items() if v is not None]
    if any(layer is None for layer, _ in pts) or \
            len({layer for layer, _ in pts}) < MIN_TREND_LAYERS:
        return dict(values)
    xy = [(float(x), v) for x, v in pts if x is not None]
    slopes = [(yj - yi) / (xj - xi) for k, (xi, yi) in enumerate(xy) for xj, yj in xy[k + 1:]
              if xj != xi]
    slope = statistics.median(slopes)
    mid = statistics.median(x for x, _ in xy)
    out: dict[int, float | None] = {}
    for i, v in values.items():
        layer = layers[i]
        out[i] = None if v is None or layer is None else v - slope * (layer - mid)
    return out
