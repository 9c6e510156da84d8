"""Which tensors of a full checkpoint correspond to which of its base, and whether the base is
the checkpoint's base at all.

Tensors are matched by name, then by shape and dtype. The base is refused (the scan then ends
incomplete, never clean) when the configs name another architecture or another size, when
fewer than half of the checkpoint's tensors have a namesake in the base, when most matched
tensors changed shape, or when the two tokenizers disagree on most token ids.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from adapterscan.static.layout import SafetensorsHeader, TensorInfo
from adapterscan.static.weights.alignment import BaseWeights
from adapterscan.static.weights.trigger_tokens import load_vocab

INDEX = "model.safetensors.index.json"
MAX_JSON_BYTES = 16 * 1024 * 1024
# Config keys that fix the architecture and every shape but the vocabulary's.
STRUCTURE_KEYS = ("model_type", "architectures", "hidden_size", "num_hidden_layers",
                  "num_attention_heads", "num_key_value_heads", "intermediate_size", "head_dim",
                  "n_embd", "n_layer", "n_head", "d_model", "num_layers", "n_inner")
VOCAB_KEYS = frozenset({"embed_tokens", "wte", "embed_in", "word_embeddings", "tok_embeddings",
                        "lm_head", "embed_out", "output"})
EMBEDDINGS = frozenset({"embed_tokens", "wte", "embed_in", "word_embeddings", "tok_embeddings"})
MIN_MATCHED = 0.5
MIN_TOKENS_AGREE = 0.9


class BaseMismatch(Exception):
    """The named base is not the model this checkpoint was made from."""


@dataclass(frozen=True)
class Side:
    file: str  # relative to its root
    path: Path
    header: SafetensorsHeader
    info: TensorInfo


@dataclass(frozen=True)
class Pair:
    name: str
    ft: Side
    base: Side
    rows: int  # rows compared (fewer than stored when the vocabulary was resized)

    @property
    def module(self) -> str:
        return self.name.removesuffix(".weight")

    @property
    def kind(self) -> str:
        return self.module.rsplit(".", 1)[-1]

    @property
    def embedding(self) -> bool:
        return self.kind in EMBEDDINGS


@dataclass(frozen=True)
class Pairing:
    pairs: tuple[Pair, ...]
    added: tuple[TensorInfo, ...]
    removed: tuple[str, ...]
    reshaped: tuple[tuple[str, tuple[int, ...], tuple[int, ...]], ...]
    dtype_changed: tuple[tuple[str, str, str], ...]
    vocab: tuple[int | None, int | None]  # (checkpoint, base) vocab_size from the configs


def read_json(path: Path) -> object:
    if not path.is_file() or path.is_symlink() or path.stat().st_size > MAX_JSON_BYTES:
        return None
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError, RecursionError):
        return None


def checkpoint_tensors(root: Path, headers: Mapping[str, SafetensorsHeader]) -> dict[str, Side]:
    """The tensors a loader takes from the top-level safetensors files: the index's weight_map
    when there is one (a tensor it names but its shard lacks is a BaseMismatch: the loader
    fails), else every tensor of every file."""
    top = {rel: h for rel, h in headers.items() if "/" not in rel}
    index = read_json(root / INDEX)
    out: dict[str, Side] = {}
    if isinstance(index, dict) and isinstance(index.get("weight_map"), dict):
        for name, shard in sorted(index["weight_map"].items()):
            header = top.get(str(shard))
            info = header.tensor(str(name)) if header is not None else None
            if header is None or info is None:
                raise BaseMismatch(f"{INDEX} names {name!r} in {shard!r}, which does not hold "
                                   "it: the checkpoint does not load")
            out[str(name)] = Side(str(shard), root / str(shard), header, info)
        return out
    for rel, header in sorted(top.items()):
        for info in header.tensors:
            out.setdefault(info.name, Side(rel, root / rel, header, info))
    return out


def _config(root: Path) -> dict[str, object]:
    doc = read_json(root / "config.json")
    return doc if isinstance(doc, dict) else {}


def _structure(ft: dict[str, object], base: dict[str, object]) -> str | None:
    diffs = [f"{k}: {ft[k]!r:.60} vs {base[k]!r:.60}" for k in STRUCTURE_KEYS
             if k in ft and k in base and ft[k] != base[k]]
    return "config.json differs from the base's (" + "; ".join(diffs) + ")" if diffs else None


def _tokens_agree(ft_root: Path, base_root: Path) -> str | None:
    ft, base = load_vocab(ft_root), load_vocab(base_root)
    common = set(ft) & set(base)
    if not ft or not base:
        return None  # nothing to compare: the shapes decide
    same = sum(1 for i in common if ft[i] == base[i])
    if not common or same < MIN_TOKENS_AGREE * len(common):
        return (f"the tokenizers disagree: {same} of {len(common)} shared token ids map to the "
                "same string (another vocabulary)")
    return None


def _base_side(base: BaseWeights, name: str) -> Side:
    path, header, info = base.index[name]
    return Side(path.name, path, header, info)


def pair_tensors(root: Path, headers: Mapping[str, SafetensorsHeader],
                 base: BaseWeights) -> Pairing:
    """Match the checkpoint's tensors with the base's; raises BaseMismatch with the reason."""
    ft_cfg, base_cfg = _config(root), _config(base.root)
    reason = _structure(ft_cfg, base_cfg) or _tokens_agree(root, base.root)
    if reason:
        raise BaseMismatch(reason)
    tensors = checkpoint_tensors(root, headers)
    if not tensors:
        raise BaseMismatch("the checkpoint holds no tensors")
    matched = [n for n in tensors if n in base.index]
    if len(matched) < MIN_MATCHED * len(tensors):
        first = next((n for n in tensors if n not in base.index), "")
        raise BaseMismatch(f"only {len(matched)} of the checkpoint's {len(tensors)} tensor names "
                           f"are in the base (first missing: {first!r:.120})")
    pairs: list[Pair] = []
    reshaped: list[tuple[str, tuple[int, ...], tuple[int, ...]]] = []
    dtypes: list[tuple[str, str, str]] = []
    for name in matched:
        ft, bs = tensors[name], _base_side(base, name)
        if ft.info.dtype != bs.info.dtype:
            dtypes.append((name, ft.info.dtype, bs.info.dtype))
        fs, bshape = ft.info.shape, bs.info.shape
        if fs == bshape:
            pairs.append(Pair(name, ft, bs, fs[0] if fs else 1))
            continue
        reshaped.append((name, fs, bshape))
        kind = name.removesuffix(".weight").rsplit(".", 1)[-1]
        if kind in VOCAB_KEYS and len(fs) == 2 == len(bshape) and fs[1] == bshape[1]:
            pairs.append(Pair(name, ft, bs, min(fs[0], bshape[0])))  # the rows both have
    if len(reshaped) > MIN_MATCHED * len(matched):
        raise BaseMismatch(f"{len(reshaped)} of {len(matched)} matched tensors have another "
                           f"shape in the base (first: {reshaped[0][0]} {list(reshaped[0][1])} "
                           f"vs {list(reshaped[0][2])})")
    added = tuple(tensors[n].info for n in tensors if n not in base.index)
    removed = tuple(sorted(n for n in base.index if n not in tensors
                           and not _tied_head(n, ft_cfg)))
    return Pairing(tuple(pairs), added, removed, tuple(reshaped), tuple(dtypes),
                   (_int(ft_cfg.get("vocab_size")), _int(base_cfg.get("vocab_size"))))


def _tied_head(name: str, cfg: Mapping[str, object]) -> bool:
    """lm_head.weight absent from a checkpoint with tied embeddings is the embedding itself."""
    return name == "lm_head.weight" and cfg.get("tie_word_embeddings") is True


def _int(v: object) -> int | None:
    return v if isinstance(v, int) and not isinstance(v, bool) else None
