"""Trigger-candidate tokens: vocabulary tokens the first adapted layers respond to most.

For each vocabulary token v with base embedding e_v (times the first layer's input RMSNorm weight
γ when the base has one), x̂_v = (e_v∘γ)/‖e_v∘γ‖ and each adapted module m of the first adapted
layer responds with ‖ΔW_m x̂_v‖ = |s|·((A x̂_v)ᵀ BᵀB (A x̂_v))^½. Responses are divided by the
module's median over the vocabulary and combined as a root mean square over modules; a token's
robust z-score is (score − median)/(1.4826·MAD) over the vocabulary. A backdoor trained on a
trigger word tends to make its few tokens stand out. Everything streams the embedding matrix in
row blocks; the adapter contributes only r×in factors.
"""

from __future__ import annotations

import functools
import json
import math
import posixpath
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from adapterscan.findings import JSONValue
from adapterscan.static.formats.model import AdapterModule, Algorithm
from adapterscan.static.formats.readers import read_adapters
from adapterscan.static.formats.tensor_reader import F64, RawTensor
from adapterscan.static.layout import SafetensorsHeader
from adapterscan.static.weights.alignment import BASE_BLOCK_ELEMS, BaseWeights
from adapterscan.static.weights.lowrank import KurtosisPlan, summarize

MAX_TOKENIZER_BYTES = 64 * 1024 * 1024
EMBED_NAMES = ("model.embed_tokens.weight", "embed_tokens.weight",
               "transformer.wte.weight", "model.embed_tokens")
_NO_KURT = KurtosisPlan("none")


@dataclass(frozen=True)
class TokenCandidate:
    token_id: int
    token: str | None
    score: float
    z: float
    source: str  # "first-layer-response" | "embedding-lora-rows" | "lm_head-lora-rows"

    def to_json(self) -> dict[str, JSONValue]:
        return {"token_id": self.token_id, "token": self.token, "score": self.score,
                "z": self.z, "source": self.source}


def _byte_level_table() -> dict[str, int]:
    """The inverse of GPT-2's bytes_to_unicode: printable stand-in character -> byte."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1),
            *range(ord("®"), ord("ÿ") + 1)]
    table = {chr(b): b for b in keep}
    extra = 0
    for b in range(256):
        if b not in keep:
            table[chr(256 + extra)] = b
            extra += 1
    return table


def _byte_level_text(token: str, table: dict[str, int]) -> str:
    """'ĠThanks' -> ' Thanks': the text a prompt must contain to produce this token."""
    if not all(c in table for c in token):
        return token
    return bytes(table[c] for c in token).decode("utf-8", errors="replace")


def load_vocab(base_dir: Path) -> dict[int, str]:
    """id → token string from base_dir/tokenizer.json (read as JSON, never executed).

    A scan with a base reads the same tokenizer several times (trainable tokens, trigger
    candidates, a checkpoint's token rows): parsed once per file version (path, size, mtime),
    each caller gets its own copy."""
    path = base_dir / "tokenizer.json"
    try:
        if not path.is_file():
            return {}
        st = path.stat()
    except OSError:
        return {}
    if st.st_size > MAX_TOKENIZER_BYTES:
        return {}
    return dict(_parsed_vocab(str(path.resolve()), st.st_size, st.st_mtime_ns))


@functools.lru_cache(maxsize=4)
def _parsed_vocab(path: str, size: int, mtime_ns: int) -> dict[int, str]:
    del size, mtime_ns  # the cache key: another version of the file is parsed again
    try:
        data = json.loads(Path(path).read_text("utf-8"))
    except (OSError, ValueError, RecursionError):  # a base named by a hostile adapter: any bytes
        return {}
    out: dict[int, str] = {}
    model = data.get("model") if isinstance(data, dict) else None
    vocab = model.get("vocab") if isinstance(model, dict) else None
    if isinstance(vocab, dict):
        out.update({int(i): str(t) for t, i in vocab.items() if isinstance(i, int)})
    elif isinstance(vocab, list):  # Unigram: [[token, score], ...]
        out.update({i: str(e[0]) for i, e in enumerate(vocab) if isinstance(e, list) and e})
    decoder = data.get("decoder") if isinstance(data, dict) else None
    if isinstance(decoder, dict) and decoder.get("type") == "ByteLevel":
        table = _byte_level_table()
        out = {i: _byte_level_text(t, table) for i, t in out.items()}
    added = data.get("added_tokens") if isinstance(data, dict) else None
    if isinstance(added, list):
        for t in added:
            if isinstance(t, dict) and isinstance(t.get("id"), int):
                out[int(t["id"])] = str(t.get("content"))
    return out


def robust_top(scores: F64, top_k: int) -> list[tuple[int, float, float]]:
    """(index, score, robust z) of the top_k scores."""
    if scores.size == 0:
        return []
    med = float(np.median(scores))
    scale = max(1.4826 * float(np.median(np.abs(scores - med))), 1e-12 * max(1.0, abs(med)))
    k = min(top_k, scores.size)
    idx = np.argpartition(-scores, k - 1)[:k]
    idx = idx[np.argsort(-scores[idx], kind="stable")]
    return [(int(i), float(scores[i]), (float(scores[i]) - med) / scale) for i in idx]


@dataclass(frozen=True)
class ModuleResponse:
    name: str
    a: RawTensor  # r×in
    gram_b: F64
    scale: float


def response_scores(embed: RawTensor, modules: Sequence[ModuleResponse],
                    gamma: F64 | None) -> F64:
    """RMS over modules of each token's median-normalised response (see module docstring)."""
    dense_a = [m.a.dense() for m in modules]
    stacked = np.concatenate(dense_a, axis=0).T  # in × Σr
    bounds = np.cumsum([0] + [a.shape[0] for a in dense_a])
    per_module: list[list[F64]] = [[] for _ in modules]
    for _, blk in embed.blocks(BASE_BLOCK_ELEMS):
        x = blk * gamma if gamma is not None else blk
        norms = np.linalg.norm(x, axis=1)
        x = x / np.where(norms > 0, norms, 1.0)[:, None]
        y = x @ stacked
        for k, m in enumerate(modules):
            yk = y[:, bounds[k]:bounds[k + 1]]
            resp = np.sqrt(np.clip(np.einsum("ij,jk,ik->i", yk, m.gram_b, yk), 0.0, None))
            per_module[k].append(resp * abs(m.scale))
    total = np.zeros(embed.rows)
    for parts in per_module:
        resp = np.concatenate(parts)
        med = float(np.median(resp))
        total += (resp / med) ** 2 if med > 0 else np.zeros_like(resp)
    return np.asarray(np.sqrt(total / max(1, len(modules))), dtype=np.float64)


def first_layer_modules(modules: Sequence[AdapterModule], hidden: int,
                        first_layers: int) -> list[ModuleResponse]:
    """Modules of the first adapted layers whose input is the residual stream (in == hidden)."""
    layered = [m for m in modules if m.layer is not None and m.algorithm is Algorithm.LORA
               and m.a is not None and m.b is not None and "mid" not in m.factors
               and not m.embedding and len(m.a_shape()) == 2 and m.a_shape()[1] == hidden]
    if not layered:
        return []
    layers = sorted({m.layer for m in layered if m.layer is not None})[:max(1, first_layers)]
    out: list[ModuleResponse] = []
    for m in layered:
        if m.layer not in layers or m.a is None or m.b is None:
            continue
        a = m.read_a()
        gram_b = summarize(m.read_b(), True, _NO_KURT).gram
        out.append(ModuleResponse(m.name, a, gram_b, m.scale.value))
    return out


def input_norm_weight(base: BaseWeights, layer: int) -> F64 | None:
    name = base.find(f"model.layers.{layer}.input_layernorm")
    if name is None:
        return None
    t = base.read(name)
    return t.dense().reshape(-1)


def trigger_candidates(adapter_root: Path, headers: Mapping[str, SafetensorsHeader],
                       config: Mapping[str, JSONValue] | None, base_dir: Path, *,
                       top_k: int = 20, first_layers: int = 1,
                       base: BaseWeights | None = None) -> list[TokenCandidate]:
    """Top-k vocabulary tokens the adapter's first adapted layers respond to most.

    `headers` are validated adapter headers keyed by path relative to `adapter_root`; the base
    folder must hold the embedding matrix. Returns [] when the base has no embedding matrix or
    no adapted module reads the residual stream.
    """
    base = base or BaseWeights.open(base_dir)
    configs = {posixpath.join(posixpath.dirname(p), "adapter_config.json"): config
               for p in headers} if config is not None else {}
    modules = read_adapters(adapter_root, headers, {}, configs).modules
    return candidates_for(base, base_dir, modules, top_k=top_k, first_layers=first_layers)


def candidates_for(base: BaseWeights, base_dir: Path, modules: Sequence[AdapterModule], *,
                   top_k: int, first_layers: int) -> list[TokenCandidate]:
    embed_name = next((n for n in EMBED_NAMES if n in base.index), None)
    if embed_name is None:
        return []
    embed = base.read(embed_name)
    chosen = first_layer_modules(modules, embed.cols, first_layers)
    if not chosen:
        return []
    names = {c.name for c in chosen}
    layer = min(m.layer for m in modules if m.name in names and m.layer is not None)
    gamma = input_norm_weight(base, layer)
    if gamma is not None and gamma.size != embed.cols:
        gamma = None
    scores = response_scores(embed, chosen, gamma)
    vocab = load_vocab(base_dir)
    return [TokenCandidate(i, vocab.get(i), s, z, "first-layer-response")
            for i, s, z in robust_top(scores, top_k) if math.isfinite(s)]
