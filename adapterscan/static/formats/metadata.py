"""Format metadata checks: kohya `ss_*` training metadata and mlx-lm adapter configs.

GGUF key/values are checked where the header is parsed (gguf_scan); PEFT configs by
adapter_config. kohya sd-scripts writes its training settings into the safetensors
`__metadata__` as `ss_*` strings: the dataset folders, tag frequencies (the captions' words and
how often each occurred), sometimes captions or a training comment. Their size and code-like
content are checked for every file (AS224, AS226); here they are evidence of what the adapter
was trained on. mlx-lm writes its training arguments as adapter_config.json.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import Any

from adapterscan.emit import Emitter
from adapterscan.findings import JSONValue
from adapterscan.static.config import peft_match
from adapterscan.static.config.checks import (
    BAD_VALUE,
    EXTREME_SCALE,
    RANK_MISMATCH,
    SENSITIVE_TARGET,
)
from adapterscan.static.config.fields import MAX_LISTED, Reporter, jlist, local_paths
from adapterscan.static.formats import checks as C
from adapterscan.static.formats.model import AdapterFile, AdapterModel, Algorithm, Format

MAX_JSON_VALUE = 4 * 1024 * 1024  # ss_* JSON values parsed for evidence
_TOP_TAGS = 20
_URL = re.compile(r"\b(?:https?|ftp|file)://[^\s\"'<>]{3,200}", re.IGNORECASE)
_DATA_KEYS = ("ss_tag_frequency", "ss_dataset_dirs", "ss_datasets", "ss_training_comment",
              "ss_caption", "ss_captions")
_SETTINGS = ("ss_sd_model_name", "ss_base_model_version", "ss_network_module", "ss_network_dim",
             "ss_network_alpha", "ss_network_args", "ss_output_name", "ss_num_train_images",
             "ss_training_started_at", "modelspec.architecture", "modelspec.title")
MLX_TYPES = frozenset({"lora", "dora", "full"})

Config = Mapping[str, JSONValue]


def check_metadata(model: AdapterModel, configs: Mapping[str, Config], emit: Emitter) -> None:
    for f in model.files:
        if f.format is Format.KOHYA or any(k.startswith("ss_") for k in f.metadata):
            _kohya(f, emit)
        if f.format is Format.MLX and f.config is not None and f.config in configs:
            _mlx(f, configs[f.config], emit)


def _json(text: str) -> Any:
    if len(text) > MAX_JSON_VALUE:
        return None
    try:
        return json.loads(text)
    except (ValueError, RecursionError):
        return None


def _tags(meta: Mapping[str, str]) -> tuple[list[JSONValue], int]:
    """The most frequent caption tags over all dataset folders, and how many distinct."""
    freq = _json(meta.get("ss_tag_frequency", ""))
    counts: dict[str, int] = {}
    if isinstance(freq, dict):
        for folder in freq.values():
            if isinstance(folder, dict):
                for tag, n in folder.items():
                    if isinstance(n, int) and not isinstance(n, bool):
                        counts[str(tag)[:100]] = counts.get(str(tag)[:100], 0) + n
    top = sorted(counts.items(), key=lambda kv: -kv[1])[:_TOP_TAGS]
    return [{"tag": t, "count": n} for t, n in top], len(counts)


def _kohya(f: AdapterFile, emit: Emitter) -> None:
    meta = f.metadata
    present = [k for k in _DATA_KEYS if meta.get(k)]
    if not present:
        return
    tags, distinct = _tags(meta)
    dirs = _json(meta.get("ss_dataset_dirs", ""))
    urls = sorted({u for k, v in meta.items() if k.startswith(("ss_", "modelspec."))
                   for u in _URL.findall(v[:MAX_JSON_VALUE])})
    evidence: dict[str, JSONValue] = {
        "keys": jlist(present), "top_tags": tags, "distinct_tags": distinct,
        "dataset_dirs": jlist(sorted(str(d)[:200] for d in dirs)[:MAX_LISTED])
        if isinstance(dirs, dict) else None,
        "urls": jlist(urls[:MAX_LISTED]),
        "settings": {k: meta[k][:200] for k in _SETTINGS if k in meta},
    }
    comment = meta.get("ss_training_comment")
    if comment:
        evidence["training_comment"] = comment[:500]
    shown = ", ".join(str(t["tag"]) for t in tags[:5] if isinstance(t, dict))
    emit.emit(C.KOHYA_TRAINING, f"{f.path}: kohya training metadata describes the training data "
              f"({', '.join(present)}" + (f"; top tags: {shown}" if shown else "")
              + (f"; {len(urls)} URL(s)" if urls else "") + ")", file=f.path,
              key=present[0], evidence=evidence)


def _mlx(f: AdapterFile, cfg: Config, emit: Emitter) -> None:
    assert f.config is not None
    rep = Reporter(emit, f.config)
    ftype = cfg.get("fine_tune_type", "lora")
    if ftype not in MLX_TYPES:
        rep(BAD_VALUE, f"fine_tune_type {str(ftype)[:80]!r} is not an mlx-lm "
            f"type ({', '.join(sorted(MLX_TYPES))})", key="fine_tune_type",
            evidence={"key": "fine_tune_type", "value": str(ftype)[:200]})
    params = cfg.get("lora_parameters")
    if params is not None and not isinstance(params, dict):
        rep(BAD_VALUE, "lora_parameters must be an object", key="lora_parameters",
            evidence={"key": "lora_parameters", "value": str(params)[:200]})
        params = None
    p = params or {}
    _mlx_values(p, rep)
    local_paths(cfg, rep)
    keys = p.get("keys")
    if isinstance(keys, list):
        hits = {str(k): kind for k in keys if isinstance(k, str)
                and (kind := peft_match.module_kind(k)) is not None}
        if hits:
            rep(SENSITIVE_TARGET, "lora_parameters.keys adapts "
                + ", ".join(f"{k} ({v})" for k, v in list(hits.items())[:10]),
                key="lora_parameters.keys", evidence={"modules": dict(list(hits.items())[:50])})
    rank = p.get("rank")
    if isinstance(rank, int) and not isinstance(rank, bool):
        off: list[JSONValue] = [
            {"module": m.name, "config_r": rank, "tensor_r": m.scale.r} for m in f.modules
               if m.algorithm is Algorithm.LORA and m.problem is None and m.scale.r != rank]
        if off:
            first = off[0]["module"] if isinstance(off[0], dict) else None
            rep(RANK_MISMATCH, f"{len(off)} module(s) whose tensor rank differs "
                f"from lora_parameters.rank {rank} (first: {first})",
                evidence={"modules": off[:MAX_LISTED], "count": len(off)})
    scale = p.get("scale")
    limit = emit.num(EXTREME_SCALE, "max_scale")
    if isinstance(scale, int | float) and not isinstance(scale, bool) and abs(scale) >= limit:
        rep(EXTREME_SCALE, f"lora_parameters.scale {scale:g} ≥ {limit:g}",
            key="lora_parameters.scale", evidence={"scale": scale, "limit": limit})


def _mlx_values(p: Mapping[str, JSONValue], rep: Reporter) -> None:
    def bad(key: str, expected: str) -> None:
        rep(BAD_VALUE, f"lora_parameters.{key} must be {expected}, got "
            f"{str(p[key])[:80]}", key=f"lora_parameters.{key}",
            evidence={"key": f"lora_parameters.{key}", "expected": expected,
                      "value": str(p[key])[:200]})

    def num(v: JSONValue) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)

    if "rank" in p and not (isinstance(p["rank"], int) and not isinstance(p["rank"], bool)
                            and p["rank"] > 0):
        bad("rank", "a positive integer")
    if "scale" in p and not num(p["scale"]):
        bad("scale", "a finite number")
    if "dropout" in p and not (num(p["dropout"]) and 0 <= float(p["dropout"]) <= 1):  # type: ignore[arg-type]
        bad("dropout", "a number in [0, 1]")
    if "keys" in p and not (isinstance(p["keys"], list)
                            and all(isinstance(k, str) for k in p["keys"])):
        bad("keys", "a list of module names")
