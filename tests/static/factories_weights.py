"""Builders for the weight-analysis tests: adapters, base models, a rule set of AS5xx only."""

from __future__ import annotations

import functools
import json
import shutil
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from adapterscan.emit import Emitter
from adapterscan.rules.loader import load_ruleset
from adapterscan.rules.model import RuleSet
from adapterscan.static.delta.checks import CHECKS as DELTA_CHECKS
from adapterscan.static.formats.tensor_reader import trusted_header
from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.weights.analysis import WeightOptions, analyze_weights
from adapterscan.static.weights.checks import CHECKS
from tests.factories import adapter_config

REPO = Path(__file__).resolve().parents[2]
_TAGS = {np.dtype(np.float32): "F32", np.dtype(np.float16): "F16", np.dtype(np.float64): "F64",
         np.dtype(np.int32): "I32"}


@functools.cache
def weight_rules() -> RuleSet:
    """The AS5xx rules alone (other analyzers' rules may be mid-edit in a shared tree): the
    weight statistics' and the checkpoint delta's."""
    d = Path(tempfile.mkdtemp(prefix="as5rules"))
    shutil.copytree(REPO / "signatures" / "schema", d / "schema")
    (d / "rules").mkdir()
    for f in (REPO / "signatures" / "rules").glob("AS5*.toml"):
        shutil.copy(f, d / "rules")
    return load_ruleset(d, checks=CHECKS | DELTA_CHECKS)


def emitter() -> Emitter:
    return Emitter(weight_rules())


def bf16_bytes(x: np.ndarray) -> bytes:
    """Round-to-nearest-even float32 → bfloat16 bit patterns."""
    u = np.ascontiguousarray(x, dtype=np.float32).view(np.uint32).astype(np.uint64)
    rounded = (u + 0x7FFF + ((u >> 16) & 1)) >> 16
    return rounded.astype("<u2").tobytes()


def st_bytes(tensors: Mapping[str, np.ndarray], bf16: frozenset[str] = frozenset()) -> bytes:
    """A well-formed safetensors file; names in `bf16` are stored as BF16."""
    header: dict[str, Any] = {}
    blobs: list[bytes] = []
    offset = 0
    for name in sorted(tensors):
        arr = np.ascontiguousarray(tensors[name])
        if name in bf16:
            blob, tag = bf16_bytes(arr), "BF16"
        else:
            blob, tag = arr.astype(arr.dtype.newbyteorder("<")).tobytes(), _TAGS[arr.dtype]
        header[name] = {"dtype": tag, "shape": list(arr.shape),
                        "data_offsets": [offset, offset + len(blob)]}
        blobs.append(blob)
        offset += len(blob)
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + b"".join(blobs)


def key(layer: int, module: str, factor: str) -> str:
    kind = "self_attn" if module in ("q_proj", "k_proj", "v_proj", "o_proj") else "mlp"
    return f"base_model.model.model.layers.{layer}.{kind}.{module}.lora_{factor}.weight"


def lora(layers: int = 4, hidden: int = 32, r: int = 4, modules: tuple[str, ...] = ("q_proj",),
         seed: int = 0, gains: Mapping[int, float] | None = None) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for i in range(layers):
        g = (gains or {}).get(i, 1.0)
        for m in modules:
            out[key(i, m, "A")] = rng.normal(0, 0.05, (r, hidden)).astype(np.float32)
            out[key(i, m, "B")] = (g * rng.normal(0, 0.05, (hidden, r))).astype(np.float32)
    return out


def write(folder: Path, tensors: Mapping[str, np.ndarray], config: Mapping[str, Any] | None = None,
          bf16: frozenset[str] = frozenset(), name: str = "adapter_model.safetensors") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    cfg = dict(config) if config is not None else adapter_config(r=4, lora_alpha=8,
                                                                  target_modules=["q_proj"])
    (folder / "adapter_config.json").write_text(json.dumps(cfg))
    (folder / name).write_bytes(st_bytes(tensors, bf16))
    return folder


def headers(folder: Path) -> dict[str, SafetensorsHeader]:
    return {f.name: trusted_header(f, f.name) for f in sorted(folder.glob("*.safetensors"))}


def scan(folder: Path, options: WeightOptions | None = None,
         config: Mapping[str, Any] | None = None) -> tuple[Emitter, Any]:
    emit = emitter()
    cfg = config if config is not None else json.loads(
        (folder / "adapter_config.json").read_text())
    result = analyze_weights(folder, headers(folder), cfg, emit,
                             options or WeightOptions(use_default_baseline=False))
    return emit, result


def rule_ids(emit: Emitter) -> set[str]:
    return {f.rule_id for f in emit.findings}


def write_base(folder: Path, layers: int, w: dict[int, np.ndarray], embed: np.ndarray) -> Path:
    """A trusted base model folder: q_proj weights, embeddings, norms and a tokenizer.json."""
    folder.mkdir(parents=True)
    hidden = embed.shape[1]
    t = {f"model.layers.{i}.self_attn.q_proj.weight": w[i].astype(np.float32)
         for i in range(layers)}
    t["model.embed_tokens.weight"] = embed.astype(np.float32)
    for i in range(layers):
        t[f"model.layers.{i}.input_layernorm.weight"] = np.ones(hidden, np.float32)
    (folder / "model.safetensors").write_bytes(st_bytes(t))
    vocab = {f"tok{i}": i for i in range(embed.shape[0])}
    (folder / "tokenizer.json").write_text(json.dumps({"model": {"vocab": vocab},
                                                       "added_tokens": []}))
    return folder
